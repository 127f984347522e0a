"""The router side of "trust nothing the WiFi says" (issue 12, 2 and 8), over real sockets.

A router that masquerades its customers' traffic to the appliance makes every phone arrive
from the router's own address: nobody can be placed, nobody can buy. `hotspotd
routeros-script` keeps that traffic out of masquerade; `hotspotd check` reads the router's
`/ip/firewall/nat` over the API and FAILs without the exception; the running daemon's
self-test FAILs when portal requests did arrive from the router's address. `hotspotd
check` also FAILs a configuration with a simulator backend: it judges what a venue goes
live with.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
import requests
import routeros_api
from support.admin_http import owner_session
from support.appliance import running_appliance
from support.phones import phone_for
from support.venue_config import free_udp_port, venue_config

from hotspotd.admin.accounts import create_account
from hotspotd.app import Appliance
from hotspotd.cli import main
from hotspotd.config import load_config
from hotspotd.router.nat import judge_nat, nat_exception_command
from hotspotd.router.script import inputs_from, render_script
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.web import create_app
from hotspotd.web.callbacks import MissingCallbackSettings

APPLIANCE = "192.168.88.2"  # [router] appliance_address's default
API_USER, API_PASSWORD = "hotspotd", "router-pass-1"
OWNER, OWNER_PASSWORD = "owner", "router side owner password"
AUTO_APPROVE = "254700000000"


@pytest.fixture
def natting_router() -> Iterator[MikrotikSimulator]:
    """A hotspot router whose owner never ran the script: it masquerades everything."""
    router = MikrotikSimulator(api_user=API_USER, api_password=API_PASSWORD,
                               radius_host="127.0.0.1", radius_auth_port=free_udp_port(),
                               radius_acct_port=free_udp_port(), radius_secret="radius-s3cret",
                               appliance_address=APPLIANCE, nat_exception=False)
    router.start("127.0.0.1", 0)
    yield router
    router.stop()


@pytest.fixture
def daraja() -> Iterator[DarajaSimulator]:
    sim = DarajaSimulator(consumer_key="ck", consumer_secret="cs", passkey="pk")
    sim.start("127.0.0.1", 0)
    yield sim
    sim.stop()


def production_config(tmp_path: Path, daraja: DarajaSimulator, router: MikrotikSimulator,
                      backends: dict[str, str] | None = None) -> Path:
    """A venue's configuration, its links pointed at the simulators as at the real thing."""
    backends = backends or {}
    return venue_config(
        tmp_path, daraja, router, daraja={"backend": backends.get("daraja", "daraja")},
        router={"backend": backends.get("router", "routeros"), "user": API_USER,
                "password": API_PASSWORD, "appliance_address": APPLIANCE})


def check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    """Run `hotspotd check`; its exit code and each line by check name."""
    capsys.readouterr()
    code = main(["check", "--config", str(config)])
    lines = capsys.readouterr().out.splitlines()[:-1]
    return code, {line[5:].split(":", 1)[0]: line for line in lines}


def add_rule_over_the_api(router: MikrotikSimulator, rule: dict[str, str]) -> None:
    """What the script's line does, sent with the routeros-api library as an owner's tool
    would: add the rule before the first static rule."""
    host, port = router.api_address
    pool = routeros_api.RouterOsApiPool(host, username=API_USER, password=API_PASSWORD,
                                        port=port, plaintext_login=True)
    try:
        nat = pool.get_api().get_resource("/ip/firewall/nat")
        first_static = next(row["id"] for row in nat.get() if row["dynamic"] == "false")
        nat.add(**rule, place_before=first_static)
    finally:
        pool.disconnect()


def script_rule(script: str, appliance: str) -> dict[str, str]:
    """The srcnat rule the script adds, as attributes (asserting its shape on the way)."""
    line = next(line for line in script.splitlines() if "/ip firewall nat add" in line)
    assert line == nat_exception_command(appliance)
    assert "place-before=[:pick [/ip firewall nat find dynamic=no] 0]" in line
    body = re.search(r"do=\{/ip firewall nat add ([^}]+)\}", line)
    assert body, line
    return dict(word.split("=", 1) for word in body[1].split())


# -- routeros-script ---------------------------------------------------------------------------


def test_routeros_script_keeps_customer_traffic_to_the_appliance_out_of_masquerade(
        tmp_path: Path, natting_router: MikrotikSimulator) -> None:
    path = tmp_path / "hotspotd.toml"
    path.write_text('[radius]\nsecret = "s3cret"\nmac_password = "m4c"\n'
                    '[router]\npassword = "p4ss"\nappliance_address = "10.0.0.2"\n')
    script = render_script(inputs_from(load_config(path, env={})))
    rule = script_rule(script, "10.0.0.2")
    assert rule == {"chain": "srcnat", "action": "accept", "dst-address": "10.0.0.2",
                    "comment": "hotspotd"}
    lines = script.splitlines()
    assert lines.index(nat_exception_command("10.0.0.2")) > lines.index(
        "/ip hotspot walled-garden ip")
    # On a router that masquerades its hotspot network, the rule placed before the first
    # static rule is what keeps the appliance's traffic un-NATed.
    assert not judge_nat(natting_router.nat.rows(), APPLIANCE).ok
    add_rule_over_the_api(natting_router, script_rule(render_script(inputs_from(
        load_config(None, env={}))), APPLIANCE))
    rows = natting_router.nat.rows()
    assert [row["action"] for row in rows if row["chain"] == "srcnat"] == [
        "accept", "masquerade", "masquerade"]
    assert judge_nat(rows, APPLIANCE).ok


# -- hotspotd check ----------------------------------------------------------------------------


def test_check_fails_on_a_natting_router_and_passes_once_the_script_rule_is_there(
        tmp_path: Path, daraja: DarajaSimulator, natting_router: MikrotikSimulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = production_config(tmp_path, daraja, natting_router)
    code, lines = check(config, capsys)
    assert code == 1
    assert lines["router"].startswith("OK   router: 'hotspotd-sim' RouterOS")
    nat = lines["router nat"]
    assert nat.startswith('FAIL router nat: rule *4 "masquerade hotspot network" (masquerade'
                          " src-address=10.5.50.0/24) NATs customer traffic to 192.168.88.2")
    assert "-- fix: on the router, keep customer traffic to this appliance out of" in nat
    assert nat.endswith(nat_exception_command(APPLIANCE))

    natting_router.nat.set("*3", {"disabled": "yes"})  # the default WAN masquerade: no help
    add_rule_over_the_api(natting_router, {"chain": "srcnat", "action": "accept",
                                           "dst-address": "192.168.88.0/24",
                                           "disabled": "yes", "comment": "off"})
    assert not check(config, capsys)[1]["router nat"].startswith("OK")  # a disabled one

    add_rule_over_the_api(natting_router, script_rule(render_script(inputs_from(
        load_config(config, env={}))), APPLIANCE))
    _, lines = check(config, capsys)
    assert lines["router nat"].startswith("OK   router nat: rule *")
    assert "accepts traffic to 192.168.88.2 before any masquerade" in lines["router nat"]


@pytest.mark.parametrize("backend", [{"daraja": "simulator"}, {"router": "simulator"},
                                     {"daraja": "simulator", "router": "simulator"}])
def test_check_fails_on_simulator_backends_in_a_production_config(
        tmp_path: Path, daraja: DarajaSimulator, natting_router: MikrotikSimulator,
        capsys: pytest.CaptureFixture[str], backend: dict[str, str]) -> None:
    """`hotspotd check` judges the configuration a venue goes live with: a simulated
    Daraja lets anyone "pay" and get online, a simulated router guards nothing."""
    natting_router.nat.add({"chain": "srcnat", "action": "accept", "dst-address": APPLIANCE,
                            "place-before": "*3"})  # the router itself is in order
    code, lines = check(production_config(tmp_path, daraja, natting_router, backend), capsys)
    assert code == 1
    line = lines["backends"]
    assert line.startswith("FAIL backends: ")
    for section in backend:
        assert f'[{section}] backend = "simulator"' in line
    assert "-- fix: set [daraja] backend = \"daraja\"" in line and "hotspotd demo" in line
    code, lines = check(production_config(tmp_path, daraja, natting_router), capsys)
    assert lines["backends"].startswith("OK   backends")


# -- the running daemon's self-test ------------------------------------------------------------


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[Appliance]:
    with running_appliance(tmp_path, simulators={"approve_delay_seconds": 0.3}) as running:
        create_account(running.db, username=OWNER, password=OWNER_PASSWORD, now=time.time())
        yield running


def self_test_row(appliance: Appliance, session: requests.Session, name: str) -> str:
    html = session.get(appliance.addresses["admin_url"] + "settings/self-test", timeout=60).text
    match = re.search(rf"<tr><td>{re.escape(name)}</td>(.*?)</tr>", html, re.S)
    assert match, html[:2000]
    return unescape(re.sub(r"<[^>]+>", " ", match[1])).strip()


def test_portal_requests_arriving_natted_fail_the_self_test_with_the_fix(
        appliance: Appliance) -> None:
    """Requests from the router's own address (the simulator's API host, 127.0.0.1, which
    is no hotspot host) are what a masquerading router delivers: refused, counted, and the
    owner's self-test says how to fix the router. A phone at its own address still buys."""
    session = owner_session(appliance.addresses["admin_url"], OWNER, OWNER_PASSWORD)
    name = "devices placed (no NAT)"
    assert self_test_row(appliance, session, name).startswith("OK: no portal request")
    portal = appliance.addresses["portal_url"]
    natted = requests.get(portal, timeout=10)  # from 127.0.0.1: the router's address
    assert natted.status_code == 403 and "Open this page on the WiFi" in natted.text
    assert appliance.locator.stats.from_router >= 1
    row = self_test_row(appliance, session, name)
    assert row.startswith("PROBLEM: ") and "came from the router's own address" in row, row
    assert nat_exception_command(APPLIANCE) in row and "routeros-script" in row

    honest = phone_for(appliance, "AA:BB:CC:12:02:01")
    bought = honest.post(portal + "api/purchases", json={"plan_id": 1, "phone": AUTO_APPROVE})
    assert bought.status_code == 202, bought.text
    deadline = time.monotonic() + 20
    while not any(row["mac-address"] == "AA:BB:CC:12:02:01"
                  for row in appliance.router_simulator.active_hosts()):
        assert time.monotonic() < deadline, "the honest phone never got online"
        time.sleep(0.1)


# -- no fail-open paths ------------------------------------------------------------------------


def test_callbacks_without_their_source_check_refuse_to_start(appliance: Appliance) -> None:
    """Built without the callback settings (source policy, intake, C2B verifier), the web
    app does not start: the callbacks never fall back to "trust every source". The
    appliance's own wiring gives them, and a forged STK success from an address outside
    any allow-list still only asks STK Query (nothing is granted on its word)."""
    bare = dataclasses.replace(appliance.web_context, mpesa=None)
    with pytest.raises(MissingCallbackSettings, match="WebContext.mpesa"):
        create_app(bare)
    token = appliance.config.web.callback_token
    forged = {"Body": {"stkCallback": {
        "MerchantRequestID": "m", "CheckoutRequestID": "ws_CO_forged_0001", "ResultCode": 0,
        "ResultDesc": "ok", "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 10}, {"Name": "MpesaReceiptNumber", "Value": "F0RGED"},
            {"Name": "PhoneNumber", "Value": 254700000000}]}}}}
    answer = requests.post(appliance.addresses["portal_url"] + f"callbacks/{token}/stk",
                           json=forged, timeout=10)
    assert answer.status_code == 200
    deadline = time.monotonic() + 15
    while not appliance.db.query_one("SELECT reason FROM callback_rejections WHERE"
                                     " reference = 'ws_CO_forged_0001'"):
        assert time.monotonic() < deadline, "the forged callback was never judged"
        time.sleep(0.1)
    assert appliance.db.query_one("SELECT COUNT(*) FROM grants")[0] == 0
