"""The MikroTik simulator against RouterOS API clients written by others: librouteros (PyPI)
and node-routeros (npm).

routeros-api (the product's client) and the simulator were written side by side, so a
shared misunderstanding would pass every other test. librouteros speaks the protocol its
own way: it spells equality queries `?=name=value` (RouterOS treats them like
`?name=value`), builds `!=` and `In` from the stack operators, and sends `.proplist`.
node-routeros tags every sentence (`.tag`) and sends the words it is given as they are.
The node peer is skipped when node or its package is missing, unless HOTSPOTD_REQUIRE_NODE=1
(the README's test command sets it, and installs the package with `npm ci`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from librouteros import connect
from librouteros.exceptions import TrapError
from librouteros.query import Key

from hotspotd.simulators.mikrotik import MikrotikSimulator

USER, PASSWORD = "admin", "peer-test-password"
HOSTS = {"AA:BB:CC:31:00:01": "10.5.50.11", "AA:BB:CC:31:00:02": "10.5.50.12",
         "AA:BB:CC:31:00:03": "10.5.50.13"}


@pytest.fixture
def router() -> Iterator[MikrotikSimulator]:
    sim = MikrotikSimulator(api_user=USER, api_password=PASSWORD, radius_host="127.0.0.1",
                            radius_auth_port=9, radius_acct_port=9, radius_secret="unused")
    sim.start("127.0.0.1", 0)
    for mac, ip in HOSTS.items():
        sim.add_host(mac, ip)
    try:
        yield sim
    finally:
        sim.stop()


def api_of(router: MikrotikSimulator, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    host, port = router.api_address
    return connect(username=USER, password=password, host=host, port=port, timeout=5)


def test_login_with_the_right_password_only(router: MikrotikSimulator) -> None:
    api = api_of(router)
    assert list(api("/system/identity/print")) == [{"name": router.identity}]
    api.close()
    with pytest.raises(TrapError):
        api_of(router, password="wrong")


def test_equality_queries_in_librouteros_spelling_find_the_host(
        router: MikrotikSimulator) -> None:
    hosts = api_of(router).path("ip", "hotspot", "host")
    found = list(hosts.select(Key("mac-address"), Key("address"))
                 .where(Key("address") == "10.5.50.12"))
    assert found == [{"mac-address": "AA:BB:CC:31:00:02", "address": "10.5.50.12"}]


def test_not_equal_and_in_use_the_stack_operators(router: MikrotikSimulator) -> None:
    hosts = api_of(router).path("ip", "hotspot", "host")
    others = list(hosts.select(Key("address")).where(Key("address") != "10.5.50.12"))
    assert sorted(row["address"] for row in others) == ["10.5.50.11", "10.5.50.13"]
    some = list(hosts.select(Key("mac-address"))
                .where(Key("address").In("10.5.50.11", "10.5.50.13")))
    assert sorted(row["mac-address"] for row in some) == ["AA:BB:CC:31:00:01",
                                                          "AA:BB:CC:31:00:03"]


def test_proplist_returns_only_the_named_properties(router: MikrotikSimulator) -> None:
    rows = list(api_of(router).path("ip", "hotspot", "host").select(Key("mac-address")))
    assert len(rows) == 3 and all(set(row) == {"mac-address"} for row in rows)


def test_count_only_and_a_trap_for_a_missing_item(router: MikrotikSimulator) -> None:
    api = api_of(router)
    assert list(api("/ip/hotspot/host/print", **{"count-only": ""})) == [{"ret": 3}]
    with pytest.raises(TrapError) as trapped:
        list(api("/ip/hotspot/active/remove", **{".id": "*99"}))
    assert "no such item" in str(trapped.value)
    with pytest.raises(TrapError) as unknown:
        list(api("/ip/hotspot/nonsense/print"))
    assert "no such command" in str(unknown.value)
    assert unknown.value.category == 0  # "missing item or command"
    with pytest.raises(TrapError) as missing:
        list(api("/ip/hotspot/active/login", user="AA:BB:CC:31:00:01"))  # no ip=
    assert missing.value.category == 1  # "argument value failure"


def test_greater_and_less_than_queries(router: MikrotikSimulator) -> None:
    router.add_host("AA:BB:CC:31:00:04", "10.5.50.14")
    hosts = api_of(router).path("ip", "hotspot", "host")
    later = list(hosts.select(Key("mac-address")).where(Key(".id") > "*2"))
    assert sorted(row["mac-address"] for row in later) == ["AA:BB:CC:31:00:03",
                                                           "AA:BB:CC:31:00:04"]
    earlier = list(hosts.select(Key("mac-address")).where(Key(".id") < "*2"))
    assert [row["mac-address"] for row in earlier] == ["AA:BB:CC:31:00:01"]


def test_the_products_router_calls_through_librouteros(router: MikrotikSimulator) -> None:
    """What the appliance asks of the router, asked by another client: who is at an
    address (placement), the active list's MACs (reconcile), kicking a session."""
    api = api_of(router)
    at = list(api.path("ip", "hotspot", "host").select(Key("mac-address"))
              .where(Key("address") == "10.5.50.13"))
    assert at == [{"mac-address": "AA:BB:CC:31:00:03"}]
    active = list(api("/ip/hotspot/active/print", **{".proplist": "mac-address"}))
    assert active == []


NODE_PEER = Path(__file__).parent / "support" / "node_routeros"
REQUIRE_NODE = "HOTSPOTD_REQUIRE_NODE"


def node_routeros(router: MikrotikSimulator, *commands: list[str],
                  password: str = PASSWORD) -> dict[str, Any]:
    """Run `commands` (path, then words) through node-routeros; its JSON answer."""
    node = shutil.which("node")
    if node is None or not (NODE_PEER / "node_modules" / "node-routeros").is_dir():
        reason = "node or tests/support/node_routeros/node_modules missing (npm ci there)"
        if os.environ.get(REQUIRE_NODE) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_NODE}=1 requires it")
        pytest.skip(reason)
    host, port = router.api_address
    spec = {"host": host, "port": port, "user": USER, "password": password,
            "commands": [list(command) for command in commands]}
    done = subprocess.run([node, str(NODE_PEER / "client.js"), json.dumps(spec)],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_node_routeros_logs_in_only_with_the_right_password(router: MikrotikSimulator) -> None:
    assert node_routeros(router, ["/system/identity/print"])["answers"] == [
        {"rows": [{"name": router.identity}]}]
    refused = node_routeros(router, password="wrong")
    assert "error" in refused["login"] and "answers" not in refused


def test_node_routeros_queries_proplist_count_and_traps(router: MikrotikSimulator) -> None:
    answers = node_routeros(
        router,
        ["/ip/hotspot/host/print", "?address=10.5.50.12", "=.proplist=mac-address,address"],
        ["/ip/hotspot/host/print", "?address=10.5.50.11", "?address=10.5.50.13", "?#|"],
        ["/ip/hotspot/host/print", "?-nonexistent", "=.proplist=address"],
        ["/ip/hotspot/host/print", "=count-only="],
        ["/ip/hotspot/active/remove", "=.id=*99"],
        ["/ip/nonsense/print"])["answers"]
    assert answers[0] == {"rows": [{"mac-address": "AA:BB:CC:31:00:02",
                                    "address": "10.5.50.12"}]}
    assert sorted(row["mac-address"] for row in answers[1]["rows"]) == [
        "AA:BB:CC:31:00:01", "AA:BB:CC:31:00:03"]
    assert sorted(row["address"] for row in answers[2]["rows"]) == sorted(HOSTS.values())
    assert answers[3] == {"rows": [{"ret": "3"}]}
    assert answers[4]["trap"]["message"] == "no such item"
    assert answers[5]["trap"]["message"] == "no such command prefix"
