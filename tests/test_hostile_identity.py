"""Attacks on device identity from the venue WiFi, against the real appliance over HTTP.

Every customer and every attacker is a phone at its own loopback address, registered in the
MikroTik simulator's host table as a real phone is in `/ip/hotspot/host`. Each test shows the
attack fails (nothing created, nobody else's state read or moved) AND an honest customer
beside it still buys and gets online.

Each test has an appliance of its own (the `appliance` fixture, behind a trusted proxy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from support.mpesa import buy, honest_customer_gets_online, portal
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.router.placement import DeviceLocator, NotPlaced, neighbour_mac
from hotspotd.simulators.phones import SimulatedPhone, join_wifi, next_phone_address

APPROVES = "254700000000"  # the Daraja simulator approves it by itself


@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    return {"web": {"trusted_proxies": ["127.99.0.1"]}}


def counts(appliance: Appliance) -> tuple[int, ...]:
    return tuple(appliance.db.query_one(f"SELECT COUNT(*) FROM {table}")[0]
                 for table in ("payments", "grants", "devices", "account_codes"))


def paid_victim(appliance: Appliance, mac: str, plan_id: int = 3) -> tuple[SimulatedPhone, str]:
    """A device that bought `plan_id` (a long plan) and is online; returns it and its id."""
    victim = join_wifi(appliance.router_simulator, mac)
    created = buy(appliance, APPROVES, victim, plan_id=plan_id)
    assert created.status_code == 202, created.text
    public_id = created.json()["id"]
    wait_until(lambda: victim.get(f"{portal(appliance)}api/purchases/{public_id}").json()[
        "status"] == "completed", timeout=20, message="the victim's purchase")
    return victim, public_id


def seconds_left(appliance: Appliance, phone: SimulatedPhone) -> int:
    return int(phone.get(portal(appliance) + "api/device").json()["seconds_remaining"])


def test_time_theft_by_naming_a_paid_device_then_recovering_fails(appliance: Appliance) -> None:
    victim, _ = paid_victim(appliance, "AA:BB:CC:21:00:01")
    victim_left = seconds_left(appliance, victim)
    attacker = join_wifi(appliance.router_simulator, "AA:BB:CC:21:00:02")
    before = counts(appliance)
    named = buy(appliance, APPROVES, attacker, plan_id=1, mac=victim.mac)
    assert named.status_code == 409 and named.json()["error"]["code"] == "device_mismatch"
    assert counts(appliance) == before, "a refused purchase creates nothing"
    # The attacker's own purchase is the attacker's: its receipt moves nothing of anyone else.
    own = buy(appliance, APPROVES, attacker, plan_id=1)
    assert own.status_code == 202
    assert appliance.db.query_one("SELECT mac FROM payments WHERE public_id = ?",
                                  (own.json()["id"],))["mac"] == attacker.mac
    wait_until(lambda: appliance.db.query_one(
        "SELECT receipt FROM payments WHERE public_id = ?", (own.json()["id"],))["receipt"],
        timeout=20, message="the attacker's receipt")
    assert seconds_left(appliance, victim) >= victim_left - 5
    assert any(row["mac-address"] == victim.mac
               for row in appliance.router_simulator.active_hosts()), "the victim stays on"
    honest_customer_gets_online(appliance, "AA:BB:CC:21:00:03")


def test_recovery_cannot_target_another_device_by_its_form(appliance: Appliance) -> None:
    victim, _ = paid_victim(appliance, "AA:BB:CC:21:00:11", plan_id=1)
    attacker = join_wifi(appliance.router_simulator, "AA:BB:CC:21:00:12")
    page = attacker.get(portal(appliance))
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    form = {"receipt": "SIM0000000", "phone": APPROVES, "csrf": token, "mac": victim.mac}
    posted = attacker.post(portal(appliance) + "recover", data=form)
    assert posted.status_code == 409
    assert "another device" in posted.text
    assert appliance.db.query_one("SELECT COUNT(*) FROM recoveries")[0] == 0
    honest_customer_gets_online(appliance, "AA:BB:CC:21:00:13")


def test_reading_another_devices_purchase_and_time_is_refused(appliance: Appliance) -> None:
    victim, public_id = paid_victim(appliance, "AA:BB:CC:21:00:21", plan_id=1)
    attacker = join_wifi(appliance.router_simulator, "AA:BB:CC:21:00:22")
    url = portal(appliance)
    for path in (f"api/purchases/{public_id}", f"api/devices/{victim.mac}",
                 f"live/purchase/{public_id}?wait=0", f"live/device/{victim.mac}?wait=0",
                 f"status/{public_id}"):
        seen = attacker.get(url + path)
        assert seen.status_code == 404, (path, seen.status_code)
        assert victim.mac not in seen.text or path.startswith(("api/devices", "live/device"))
        assert "receipt" not in seen.text.lower() or path.startswith("status")
    assert victim.get(url + f"api/purchases/{public_id}").json()["status"] == "completed"
    assert attacker.get(url + "api/device").json()["seconds_remaining"] == 0
    honest_customer_gets_online(appliance, "AA:BB:CC:21:00:23")


def test_captive_portal_api_cannot_be_steered_by_a_claimed_ip(appliance: Appliance) -> None:
    victim = join_wifi(appliance.router_simulator, "AA:BB:CC:21:00:31")
    attacker, _ = paid_victim(appliance, "AA:BB:CC:21:00:32", plan_id=1)
    before = counts(appliance)
    steered = buy(appliance, APPROVES, attacker, ip=victim.address)
    assert steered.status_code == 409 and counts(appliance) == before
    api = portal(appliance) + "captive-portal/api"
    assert victim.get(api).json()["captive"] is True, "the victim's address is the victim's"
    assert attacker.get(api).json()["captive"] is False
    last_ips = dict(appliance.db.query("SELECT mac, last_ip FROM devices"))
    assert last_ips[attacker.mac] == attacker.address
    honest_customer_gets_online(appliance, "AA:BB:CC:21:00:33")


def test_forged_forwarded_for_is_ignored_unless_from_a_trusted_proxy(
        appliance: Appliance) -> None:
    victim, _ = paid_victim(appliance, "AA:BB:CC:21:00:41", plan_id=1)
    attacker = join_wifi(appliance.router_simulator, "AA:BB:CC:21:00:42")
    forged = attacker.get(portal(appliance) + "api/device",
                          headers={"X-Forwarded-For": victim.address})
    assert forged.json()["mac"] == attacker.mac, "X-Forwarded-For from a phone is a claim"
    proxy = SimulatedPhone("AA:BB:CC:21:00:4F", "127.99.0.1")  # the configured proxy
    through = proxy.get(portal(appliance) + "api/device",
                        headers={"X-Forwarded-For": victim.address})
    assert through.json()["mac"] == victim.mac
    honest_customer_gets_online(appliance, "AA:BB:CC:21:00:43")


@pytest.mark.parametrize("lang, words", [("en", "Open this page on the WiFi"),
                                         ("sw", "Fungua ukurasa huu ukiwa kwenye WiFi")])
def test_a_request_the_network_cannot_place_gets_a_clear_page_and_creates_nothing(
        appliance: Appliance, lang: str, words: str) -> None:
    stranger = SimulatedPhone("AA:BB:CC:21:00:51", next_phone_address())  # never joined
    before = counts(appliance)
    page = stranger.get(portal(appliance) + f"?lang={lang}&mac=AA:BB:CC:21:00:51")
    assert page.status_code == 403 and words in page.text
    api = buy(appliance, APPROVES, stranger, mac=stranger.mac)
    assert api.status_code == 403 and api.json()["error"]["code"] == "device_not_on_wifi"
    assert counts(appliance) == before
    honest_customer_gets_online(appliance, "AA:BB:CC:21:00:52")


def test_a_device_that_left_the_wifi_is_no_longer_placed(appliance: Appliance) -> None:
    phone = join_wifi(appliance.router_simulator, "AA:BB:CC:21:00:61")
    assert phone.get(portal(appliance) + "api/device").json()["mac"] == phone.mac
    appliance.router_simulator.remove_host(phone.mac)
    appliance.locator.forget(phone.address)
    assert buy(appliance, APPROVES, phone).status_code == 403
    newcomer = join_wifi(appliance.router_simulator, "AA:BB:CC:21:00:62", phone.address)
    appliance.locator.forget(phone.address)
    assert newcomer.get(portal(appliance) + "api/device").json()["mac"] == newcomer.mac


def test_natted_requests_are_refused_and_counted_for_the_self_test(
        appliance: Appliance) -> None:
    router_address = appliance.addresses["router"]["api_host"]
    assert router_address in appliance.locator.router_addresses
    before = appliance.locator.stats.from_router
    natted = requests.post(portal(appliance) + "api/purchases", timeout=10,
                           json={"plan_id": 1, "phone": APPROVES})
    assert natted.status_code == 403 and "NAT" in natted.json()["error"]["message"]
    assert appliance.locator.stats.from_router == before + 1


def test_reads_use_a_brief_cache_and_purchases_ask_the_router_afresh() -> None:
    asked: list[str] = []
    table = {"10.5.50.7": "AA:BB:CC:21:00:71"}

    def lookup(ip: str) -> str | None:
        asked.append(ip)
        return table.get(ip)

    clock = [0.0]
    locator = DeviceLocator(lookup, neighbours=lambda ip: None, router_addresses=set(),
                            ttl=10.0, clock=lambda: clock[0])
    assert locator.place("10.5.50.7").mac == "AA:BB:CC:21:00:71"
    assert locator.place("10.5.50.7").mac == "AA:BB:CC:21:00:71" and len(asked) == 1
    table["10.5.50.7"] = "AA:BB:CC:21:00:72"  # the lease went to another device
    assert locator.place("10.5.50.7", fresh=True).mac == "AA:BB:CC:21:00:72"
    clock[0] = 11.0
    del table["10.5.50.7"]
    with pytest.raises(NotPlaced) as refused:
        locator.place("10.5.50.7")
    assert refused.value.reason == "unknown" and len(asked) == 3


def test_neighbour_table_places_a_device_the_router_does_not_list(tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.5.50.9        0x1         0x2         aa:bb:cc:21:00:81     *        eth1\n"
        "10.5.50.10       0x1         0x0         00:00:00:00:00:00     *        eth1\n")
    assert neighbour_mac("10.5.50.9", arp) == "AA:BB:CC:21:00:81"
    assert neighbour_mac("10.5.50.10", arp) is None, "an incomplete entry vouches for nobody"
    locator = DeviceLocator(lambda ip: None, neighbours=lambda ip: neighbour_mac(ip, arp),
                            router_addresses=set())
    assert locator.place("10.5.50.9").mac == "AA:BB:CC:21:00:81"
    with pytest.raises(NotPlaced):
        locator.place("10.5.50.10")
