"""One plan, several devices (issue 16): the payer adds a laptop to a plan for two devices
with the receipt and the paying phone, from the laptop itself (placed by the network); the
laptop is online until the plan's time ends; a third device is refused; a stranger learns
nothing; the owner sets how many devices a plan allows."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import requests
from support.admin_http import csrf_of
from support.mpesa import accepted, buy, wait_final
from support.radclient import run_radclient

from hotspotd.app import Appliance
from hotspotd.ledger.plans import change_plan
from hotspotd.simulators.phones import SimulatedPhone

PAYER_NUMBER = "254700000000"  # the Daraja simulator approves it by itself
TWO_DEVICES = 2  # demo plan 2 ("1 hour") made a plan for two devices


def two_device_plan(appliance: Appliance) -> None:
    with appliance.db.write() as conn:
        change_plan(conn, TWO_DEVICES, {"devices": 2})


def share(device: SimulatedPhone, portal: str, receipt: str, number: str,
          lang: str = "en") -> requests.Response:
    """The portal's "Add this device to your plan" form, sent from `device`."""
    page = device.get(portal, params={"lang": lang}, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return device.post(portal + "share", timeout=10, allow_redirects=False, data={
        "csrf": token.group(1), "receipt": receipt, "phone": number, "lang": lang})


def paid_receipt(appliance: Appliance, payer: SimulatedPhone) -> str:
    public_id = accepted(buy(appliance, PAYER_NUMBER, payer, plan_id=TWO_DEVICES))
    assert wait_final(appliance, public_id)["status"] == "completed"
    row = appliance.db.query_one("SELECT receipt FROM payments WHERE public_id = ?",
                                 (public_id,))
    return str(row["receipt"])


def seconds_left(device: SimulatedPhone, portal: str) -> int:
    return int(device.get(portal + "api/device", timeout=5).json()["seconds_remaining"])


def test_a_second_device_shares_the_plans_time_and_a_third_is_refused(
        appliance: Appliance, portal: str, phone: Callable[..., SimulatedPhone]) -> None:
    two_device_plan(appliance)
    payer, laptop, third = phone(), phone(), phone()
    assert 'id="share"' in payer.get(portal, timeout=5).text  # offered: a plan allows 2
    receipt = paid_receipt(appliance, payer)
    paid_until = appliance.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?",
                                        (payer.mac,))["expires_at"]

    added = share(laptop, portal, receipt.lower(), "0700 000000")
    assert added.status_code == 200, added.text
    assert "added to your plan" in added.text and "2 of 2 devices" in added.text
    laptop_until = appliance.db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?",
                                          (laptop.mac,))["expires_at"]
    assert laptop_until == paid_until  # shared: the same end, never more time
    assert abs(seconds_left(laptop, portal) - seconds_left(payer, portal)) <= 1

    again = share(laptop, portal, receipt, PAYER_NUMBER)  # twice: nothing changes
    assert again.status_code == 200
    full = share(third, portal, receipt, PAYER_NUMBER)
    assert full.status_code == 400 and "allows 2 devices and all 2 are in use" in full.text
    assert seconds_left(third, portal) == 0
    rows = appliance.db.query("SELECT mac FROM shared_devices")
    assert [row["mac"] for row in rows] == [laptop.mac]


def test_the_added_device_logs_in_over_radius_until_the_plans_end(
        appliance: Appliance, portal: str, phone: Callable[..., SimulatedPhone]) -> None:
    two_device_plan(appliance)
    payer, laptop = phone(), phone()
    receipt = paid_receipt(appliance, payer)
    assert share(laptop, portal, receipt, PAYER_NUMBER).status_code == 200
    radius = appliance.addresses["radius"]
    reply = run_radclient(radius["auth_port"], "auth", radius["secret"], {
        "User-Name": laptop.mac, "User-Password": radius["mac_password"],
        "Calling-Station-Id": laptop.mac}, host=radius["host"])
    assert reply.code == "Access-Accept", reply.output
    timeout = int(reply.attributes["Session-Timeout"])
    assert abs(timeout - seconds_left(payer, portal)) <= 2


def test_strangers_learn_nothing_and_one_device_plans_stay_one(
        appliance: Appliance, portal: str, phone: Callable[..., SimulatedPhone]) -> None:
    payer, stranger = phone(), phone()
    assert 'id="share"' not in payer.get(portal, timeout=5).text  # no plan allows more
    public_id = accepted(buy(appliance, PAYER_NUMBER, payer, plan_id=1))
    assert wait_final(appliance, public_id)["status"] == "completed"
    receipt = appliance.db.query_one("SELECT receipt FROM payments WHERE public_id = ?",
                                     (public_id,))["receipt"]
    two_device_plan(appliance)  # the form is on the page now; plan 1 is still for one
    wrong_phone = share(stranger, portal, receipt, "0722000000")
    unknown = share(stranger, portal, "ZZZ9999999", "0722000000")
    assert wrong_phone.status_code == unknown.status_code == 400
    assert "could not match that receipt code and phone number" in wrong_phone.text
    one = share(stranger, portal, receipt, PAYER_NUMBER, lang="sw")
    assert one.status_code == 400 and "Vifaa vyote" in one.text  # Swahili, plan for one
    assert seconds_left(stranger, portal) == 0


def test_the_owner_sets_how_many_devices_a_plan_allows(
        appliance: Appliance, portal: str, owner: requests.Session) -> None:
    page = owner.get(portal + "admin/plans", timeout=5)
    form: dict[str, Any] = {"csrf_token": csrf_of(page.text), "name": "Family day",
                            "price": "150", "minutes": "1440", "rate_limit": "",
                            "devices": "3"}
    made = owner.post(portal + "admin/plans", data=form, timeout=5)
    assert made.status_code in (200, 303), made.text
    row = appliance.db.query_one("SELECT devices FROM plans WHERE name = 'Family day'")
    assert row["devices"] == 3
    refused = owner.post(portal + "admin/plans", data={**form, "name": "Too many",
                                                        "devices": "11"}, timeout=5)
    assert "1-10 devices" in refused.text
    assert appliance.db.query_one("SELECT 1 FROM plans WHERE name = 'Too many'") is None
