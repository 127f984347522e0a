"""The MikroTik simulator against a RouterOS API client written by others: librouteros (PyPI).

routeros-api (the product's client) and the simulator were written side by side, so a
shared misunderstanding would pass every other test. librouteros speaks the protocol its
own way: it spells equality queries `?=name=value` (RouterOS treats them like
`?name=value`), builds `!=` and `In` from the stack operators, and sends `.proplist`.
"""

from __future__ import annotations

from collections.abc import Iterator

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
