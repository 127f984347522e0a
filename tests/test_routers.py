"""Several routers per appliance (issue 16 point 1): [routers.<name>] tables checked like the
rest of the configuration; two simulated routers at one venue, each its own RADIUS client
and CoA port; a device that walks from one router's WiFi to the other's keeps its time and
is logged in where it is; the self-test and `hotspotd check` look at every router."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.commands.demo import demo_config
from hotspotd.config import ConfigError, load_config
from hotspotd.ledger.plans import seed_demo_plans
from hotspotd.simulators.phones import join_wifi

WALKER = "AA:BB:CC:0D:00:01"
PAYS = "254700000000"  # the Daraja simulator approves it by itself


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotspotd.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_more_routers_are_tables_checked_like_the_rest(tmp_path: Path) -> None:
    secret = tmp_path / "annex.pass"
    secret.write_text("annex-password\n")
    secret.chmod(0o600)
    config = load_config(write(tmp_path, f"""
[router]
host = "10.0.0.1"
password = "main-password"
[routers.annex]
host = "10.0.1.1"
password_file = "{secret}"
radius_secret = "annex-radius"
coa_port = 1700
"""))
    first, annex = config.routers()
    assert (first.name, first.host) == ("main", "10.0.0.1")
    assert (annex.name, annex.host, annex.password, annex.coa_port, annex.api_port) == (
        "annex", "10.0.1.1", "annex-password", 1700, 8728)  # unset: [router]'s defaults
    assert config.masked()["routers.annex"]["radius_secret"] == "***"
    assert [r.name for r in config.replace("web", port=81).routers()] == ["main", "annex"]

    for text, words in (
            ('[routers.annex]\nhots = "1"\n', "[routers.annex] hots: unknown key (did you"
                                             " mean 'host'?)"),
            ('[routers.Annex]\nhost = "1"\n', "a router name is 1-32 lower-case"),
            ('[routers.annex]\ncoa_port = "x"\n', "expected an integer 0-65535"),
            ('[routers.main]\nhost = "10.0.2.1"\n', "named 'main' already"),
            ("[routers]\nannex = 1\n", "expected a table")):
        with pytest.raises(ConfigError, match="hotspotd.toml") as refused:
            load_config(write(tmp_path, text))
        assert words in str(refused.value)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Appliance]:
    """The demo appliance with two simulated routers; the outbox compares each router's
    lists with the ledger every second."""
    config = demo_config(tmp_path, "127.0.0.1", 0, routers=2)
    config = config.replace("router", reconcile_interval_seconds=1)
    config = config.replace("simulators", approve_delay_seconds=0.3)
    appliance = Appliance(config).start()
    with appliance.db.write() as conn:
        seed_demo_plans(conn, appliance.now())
    yield appliance
    appliance.stop()


def test_a_device_walks_to_the_other_routers_wifi_and_keeps_its_time(venue: Appliance) -> None:
    lobby, annex = (site.simulator for site in venue.routers)
    portal = venue.addresses["portal_url"]
    phone = join_wifi(lobby, WALKER)
    bought = phone.post(portal + "api/purchases", json={"plan_id": 2, "phone": PAYS},
                        timeout=30)
    assert bought.status_code == 202, bought.text
    wait_until(lambda: lobby.session_timeout_of(WALKER), timeout=20,
               message="online at the first router")
    paid_until = venue.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?",
                                    (WALKER,))["expires_at"]

    lobby.remove_host(WALKER)  # it walks across the venue: the other router's network
    there = join_wifi(annex, WALKER, "127.65.0.9")
    timeout = wait_until(lambda: annex.session_timeout_of(WALKER), timeout=20,
                         message="logged in at the second router by the outbox")
    left = paid_until - time.time()
    assert abs(timeout - left) < 5, (timeout, left)  # the time it had, not a new hour
    active = [row for row in annex.active_hosts() if row["mac-address"] == WALKER]
    assert [row["address"] for row in active] == ["127.65.0.9"]  # its address there
    session = wait_until(lambda: venue.db.query_one(
        "SELECT nas_address FROM radius_sessions WHERE mac = ? AND status = 'online'"
        " AND nas_address = '127.10.1.1'", (WALKER,)), timeout=10,
        message="accounting from the second router")
    assert session["nas_address"] == "127.10.1.1"
    device = there.get(portal + "api/device", timeout=5).json()  # placed by router two
    assert device["mac"] == WALKER and device["seconds_remaining"] > 3000

    topped = there.post(portal + "api/purchases", json={"plan_id": 1, "phone": PAYS},
                        timeout=30)
    assert topped.status_code == 202, topped.text
    wait_until(lambda: (annex.session_timeout_of(WALKER) or 0) > timeout + 1000, timeout=20,
               message="the top-up's CoA reaching the second router")


def test_the_self_test_looks_at_every_router(venue: Appliance) -> None:
    names = [check.name for check in venue.web_context.self_test()]
    assert "router" in names and "r2: router" in names and "r2: coa" in names


def test_a_router_with_no_device_on_it_is_not_asked_to_log_one_in(venue: Appliance) -> None:
    """A login goes to the router whose hotspot sees the device; none sees it: an error the
    outbox retries, never a login on the wrong router."""
    from hotspotd.router.gateway import RouterError

    with pytest.raises(RouterError, match="on no router's WiFi"):
        venue.outbox_router.login_host(mac="AA:BB:CC:0D:00:99", ip="10.9.9.9",
                                       user="AA:BB:CC:0D:00:99", password="x")
    assert requests.get(venue.addresses["portal_url"] + "healthz", timeout=5).ok


def test_routeros_script_for_each_router(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    from hotspotd.cli import main

    config = write(tmp_path, """
[router]
host = "10.0.0.1"
password = "main-password"
appliance_address = "10.0.0.2"
[radius]
secret = "main-radius"
mac_password = "mac-password"
[routers.annex]
host = "10.0.1.1"
password = "annex-password"
radius_secret = "annex-radius"
coa_port = 1700
appliance_address = "10.0.1.2"
hotspot_interface = "bridge-annex"
""")
    assert main(["routeros-script", "--config", str(config), "--router", "annex"]) == 0
    annex = capsys.readouterr().out
    assert 'secret="annex-radius"' in annex and "port=1700" in annex
    assert "interface=bridge-annex" in annex and "address=10.0.1.2/32" in annex
    assert "main-radius" not in annex and "main-password" not in annex
    assert main(["routeros-script", "--config", str(config)]) == 0  # the first router
    first = capsys.readouterr().out
    assert 'secret="main-radius"' in first and "annex" not in first
    assert main(["routeros-script", "--config", str(config), "--router", "nope"]) == 1
    assert "no router named 'nope'; the configuration has annex, main" in \
        capsys.readouterr().err
