"""Router drift check (issue 15, deliverable 3): `hotspotd check` and the owner UI's self-test
read the router's set-up over the RouterOS API (the MikroTik simulator, as a router left by
`hotspotd routeros-script`, or drifted from it) and list each difference with the command
that fixes it."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
import routeros_api

from hotspotd.app import Appliance
from hotspotd.cli import main
from hotspotd.ops.checks import CheckResult, run_checks
from hotspotd.router.nat import nat_exception_command
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.simulators.mikrotik.setup import RouterSetup

APPLIANCE = "192.168.88.2"
USER, PASSWORD = "hotspotd", "router-pass-1"
AREAS = ["router radius", "router coa", "router hotspot profile", "router walled garden",
         "router nat", "router dhcp option 114"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daraja() -> Iterator[DarajaSimulator]:
    sim = DarajaSimulator(consumer_key="ck", consumer_secret="cs", passkey="pk")
    sim.start("127.0.0.1", 0)
    yield sim
    sim.stop()


class Venue:
    """A router (simulator) and the configuration of the appliance it serves."""

    def __init__(self, tmp_path: Path, daraja: DarajaSimulator, **router: Any) -> None:
        self.auth_port, self.acct_port = free_udp_port(), free_udp_port()
        self.router = MikrotikSimulator(
            api_user=USER, api_password=PASSWORD, radius_host="127.0.0.1",
            radius_auth_port=router.pop("auth_port", self.auth_port),
            radius_acct_port=self.acct_port, radius_secret="radius-s3cret",
            appliance_address=APPLIANCE, **router)
        self.router.start("127.0.0.1", 0)
        api_host, api_port = self.router.api_address
        self.config = tmp_path / "hotspotd.toml"
        (tmp_path / "var").mkdir(exist_ok=True)
        self.config.write_text(f"""
[database]
path = "{tmp_path / 'var' / 'hotspotd.sqlite3'}"
[daraja]
backend = "daraja"
base_url = "{daraja.url}"
consumer_key = "ck"
consumer_secret = "cs"
passkey = "pk"
[radius]
host = "127.0.0.1"
auth_port = {self.auth_port}
acct_port = {self.acct_port}
secret = "radius-s3cret"
mac_password = "mac-pass"
[router]
backend = "routeros"
host = "{api_host}"
api_port = {api_port}
user = "{USER}"
password = "{PASSWORD}"
coa_port = {self.router.coa_address[1]}
appliance_address = "{APPLIANCE}"
""")
        self.config.chmod(0o600)

    def router_results(self) -> list[CheckResult]:
        return [r for r in run_checks(self.config, env={}) if r.name.startswith("router ")]


@pytest.fixture
def venue_factory(tmp_path: Path, daraja: DarajaSimulator) -> Iterator[Any]:
    made: list[Venue] = []

    def make(**router: Any) -> Venue:
        made.append(Venue(tmp_path, daraja, **router))
        return made[-1]
    yield make
    for venue in made:
        venue.router.stop()


def test_a_router_left_by_the_script_passes_every_area(venue_factory: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    venue = venue_factory()
    results = venue.router_results()
    assert [r.name for r in results] == AREAS
    assert all(r.ok for r in results), [r.line() for r in results if not r.ok]
    capsys.readouterr()
    main(["check", "--config", str(venue.config)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line[5:11] == "router"]
    assert [line[:4] for line in lines] == ["OK  "] * (len(AREAS) + 1), lines


COA = "/radius incoming set accept=yes port={coa}"
DRIFTS: dict[str, tuple[dict[str, Any], str, str, str]] = {
    # drift: (simulator options, area, found, the fixing command)
    "radius address": ({"setup": RouterSetup(radius_address="192.168.88.9")}, "router radius",
                       "asks RADIUS at 192.168.88.9, not this appliance",
                       "/radius set [find address=192.168.88.9] address=192.168.88.2"),
    "radius auth port": ({"auth_port": 1812}, "router radius", "authentication-port=1812, not",
                         "/radius set [find address=192.168.88.2] authentication-port={auth}"),
    "require-message-auth": ({"require_message_auth": False}, "router radius",
                             "require-message-auth=no",
                             "/radius set [find address=192.168.88.2]"
                             " require-message-auth=yes-for-request-resp"),
    "coa accept": ({"setup": RouterSetup(coa_accept=False)}, "router coa",
                   "accept=no: CoA and Disconnect are ignored", COA),
    "coa port": ({"setup": RouterSetup(coa_port=1700)}, "router coa",
                 "port=1700, not [router] coa_port", COA),
    "use-radius": ({"setup": RouterSetup(use_radius=False)}, "router hotspot profile",
                   "use-radius=no", "/ip hotspot profile set [find name=hotspotd] use-radius=yes"),
    "mac login": ({"setup": RouterSetup(login_by="cookie,http-chap")}, "router hotspot profile",
                  "no MAC login", "/ip hotspot profile set [find name=hotspotd]"
                  " login-by=mac,http-chap,http-pap"),
    "server profile": ({"setup": RouterSetup(server_profile="hsprof1")},
                       "router hotspot profile", "uses profile hsprof1, not hotspotd",
                       "/ip hotspot set [find name=hotspot1] profile=hotspotd"),
    "walled garden": ({"setup": RouterSetup(walled_garden=False)}, "router walled garden",
                      "not in the walled garden", "/ip hotspot walled-garden ip add"
                      " dst-address=192.168.88.2 action=accept comment=hotspotd"),
    "nat exception": ({"nat_exception": False}, "router nat", "NATs customer traffic",
                      nat_exception_command(APPLIANCE)),
    "dhcp option missing": ({"setup": RouterSetup(capport_url=None)}, "router dhcp option 114",
                            "no DHCP option 114", "/ip dhcp-server option add code=114"
                            " name=capport value=\"'http://192.168.88.2:8080/captive-portal"
                            "/api'\""),
    "dhcp option wrong": ({"setup": RouterSetup(capport_url="http://10.0.0.9/api")},
                          "router dhcp option 114", "is 'http://10.0.0.9/api', not",
                          "/ip dhcp-server option set [find code=114] value=\"'http://"
                          "192.168.88.2:8080/captive-portal/api'\""),
}


@pytest.mark.parametrize("drift", DRIFTS)
def test_each_drift_fails_its_area_with_the_fixing_command(venue_factory: Any,
                                                           drift: str) -> None:
    options, area, found, command = DRIFTS[drift]
    venue = venue_factory(**options)
    command = command.replace("{auth}", str(venue.auth_port)).replace(
        "{coa}", str(venue.router.coa_address[1]))
    results = venue.router_results()
    failed = [r for r in results if not r.ok]
    assert [r.name for r in failed] == [area], [r.line() for r in failed]
    assert found in failed[0].detail, failed[0].line()
    assert command in failed[0].fix, failed[0].fix
    assert "-- fix: " in failed[0].line() and all(r.ok for r in results if r.name != area)


def test_every_difference_is_listed_and_fixing_them_over_the_api_clears_them(
        venue_factory: Any) -> None:
    venue = venue_factory(setup=RouterSetup(coa_accept=False, coa_port=1700, use_radius=False,
                                            login_by="http-chap", interim_update="disabled"))
    failed = [r for r in venue.router_results() if not r.ok]
    assert [r.name for r in failed] == ["router coa"] * 2 + ["router hotspot profile"] * 3
    host, port = venue.router.api_address
    pool = routeros_api.RouterOsApiPool(host, username=USER, password=PASSWORD, port=port,
                                        plaintext_login=True)
    try:  # what the printed commands say, sent as an owner's API tool would
        api = pool.get_api()
        api.get_resource("/radius/incoming").call(
            "set", {"accept": "yes", "port": str(venue.router.coa_address[1])})
        profiles = api.get_resource("/ip/hotspot/profile")
        mine = next(row["id"] for row in profiles.get() if row["name"] == "hotspotd")
        profiles.set(id=mine, **{"use-radius": "yes", "login-by": "mac,http-chap,http-pap",
                                 "radius-interim-update": "received"})
    finally:
        pool.disconnect()
    assert all(r.ok for r in venue.router_results())


# -- the owner UI's self-test, over HTTP ----------------------------------------------------
def self_test_rows(owner: requests.Session, portal: str) -> list[tuple[str, str]]:
    html = owner.get(portal + "admin/settings/self-test", timeout=30).text
    rows = re.findall(r"<tr><td>(router [^<]*)</td>(.*?)</tr>", html, re.S)
    rows = [(name, text) for name, text in rows if name in AREAS]
    return [(name, unescape(re.sub(r"<[^>]+>", " ", text)).strip()) for name, text in rows]


def test_self_test_lists_the_embedded_routers_drift_with_the_fix(
        appliance: Appliance, owner: requests.Session, portal: str) -> None:
    clean = self_test_rows(owner, portal)
    assert [name for name, _ in clean] == AREAS
    assert all(text.startswith("OK") for _, text in clean), clean
    setup = appliance.router_simulator.setup  # type: ignore[union-attr]
    mine = next(row[".id"] for row in setup.profiles.rows() if row["name"] == "hotspotd")
    garden = setup.walled_garden.rows()[0][".id"]
    setup.profiles.set(mine, {"use-radius": "no"})
    setup.walled_garden.set(garden, {"disabled": "yes"})
    try:
        drifted = dict(self_test_rows(owner, portal))
    finally:
        setup.profiles.set(mine, {"use-radius": "yes"})
        setup.walled_garden.set(garden, {"disabled": "no"})
    profile, walled = drifted["router hotspot profile"], drifted["router walled garden"]
    assert profile.startswith("PROBLEM: use-radius=no"), profile
    assert "/ip hotspot profile set [find name=hotspotd] use-radius=yes" in profile
    assert walled.startswith("PROBLEM: the appliance"), walled
    assert "/ip hotspot walled-garden ip add dst-address=192.168.88.2 action=accept" in walled
    assert drifted["router coa"].startswith("OK"), drifted
