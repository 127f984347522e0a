"""Plan edits from the owner UI over HTTP, seen by an independent RADIUS peer (FreeRADIUS's
radclient): what was already paid keeps the terms it was sold with (expiry, Session-Timeout,
rate limit, data cap, idle timeout), and the next purchase of the plan gets the new ones.
Also the form's checks, reorder and hide."""

from __future__ import annotations

import time

import requests
from support.admin_http import csrf_of
from support.radclient import RadclientReply, run_radclient

from hotspotd.app import Appliance
from hotspotd.ledger.grants import grant_time

MAC = "AA:BB:CC:0D:00:01"
NEXT_BUYER = "AA:BB:CC:0D:00:02"


def post(owner: requests.Session, portal: str, path: str, data: dict[str, str]
         ) -> requests.Response:
    """POST an owner-UI form with the CSRF token of the plans page."""
    token = csrf_of(owner.get(portal + "admin/plans", timeout=5).text)
    return owner.post(portal + "admin/" + path, data={**data, "csrf_token": token},
                      timeout=10)


def login(appliance: Appliance, mac: str = MAC) -> RadclientReply:
    radius = appliance.addresses["radius"]
    return run_radclient(radius["auth_port"], "auth", radius["secret"], {
        "User-Name": mac, "User-Password": radius["mac_password"],
        "Calling-Station-Id": mac}, host=radius["host"])


def test_plan_edit_keeps_what_was_sold_and_applies_to_the_next_purchase(
        appliance: Appliance, owner: requests.Session, portal: str) -> None:
    plan = appliance.db.query_one("SELECT * FROM plans WHERE id = 2")
    with appliance.db.write() as conn:
        grant_time(conn, mac=MAC, seconds=3600, now=time.time(), plan_id=2,
                   rate_limit=plan["rate_limit"], source="test")
    paid = appliance.db.query_one("SELECT expires_at, rate_limit FROM entitlements"
                                  " WHERE mac = ?", (MAC,))
    appliance.access_view.reload_all()  # RADIUS answers this device from memory now
    assert appliance.access_view.get(MAC) is not None
    before = login(appliance)
    assert before.code == "Access-Accept", before.output
    assert "Mikrotik-Total-Limit" not in before.attributes
    assert "Idle-Timeout" not in before.attributes
    saved = post(owner, portal, "plans/2", {"name": plan["name"], "price": "25",
                                            "minutes": "90", "rate_limit": "1M/1M",
                                            "data_cap_mb": "500", "idle_minutes": "15"})
    assert saved.status_code == 200 and "Time already paid is unchanged" in saved.text
    after = login(appliance)
    assert after.code == "Access-Accept", after.output
    # what was paid for: same expiry, rate limit, no cap and no idle timeout, as sold
    assert tuple(appliance.db.query_one("SELECT expires_at, rate_limit FROM entitlements"
                                        " WHERE mac = ?", (MAC,))) == tuple(paid)
    assert after.attributes["Mikrotik-Rate-Limit"] == plan["rate_limit"] != "1M/1M"
    assert 3500 <= int(after.attributes["Session-Timeout"]) <= 3600
    assert "Mikrotik-Total-Limit" not in after.attributes
    assert "Idle-Timeout" not in after.attributes
    # the next purchase of the plan is sold on the new terms
    with appliance.db.write() as conn:
        grant_time(conn, mac=NEXT_BUYER, seconds=5400, now=time.time(), plan_id=2,
                   rate_limit="1M/1M", source="test")
    appliance.access_view.reload_all()
    new = login(appliance, NEXT_BUYER)
    assert new.code == "Access-Accept", new.output
    assert int(new.attributes["Mikrotik-Total-Limit"]) == 500_000_000
    assert int(new.attributes["Idle-Timeout"]) == 900
    assert new.attributes["Mikrotik-Rate-Limit"] == "1M/1M"
    stored = appliance.db.query_one("SELECT price, duration_seconds, data_cap_bytes,"
                                    " idle_timeout_seconds FROM plans WHERE id = 2")
    assert tuple(stored) == (25, 5400, 500_000_000, 900)
    audit = appliance.db.query_one("SELECT after FROM admin_audit WHERE action ="
                                   " 'plan.update' ORDER BY id DESC")
    assert '"idle_timeout_seconds": 900' in audit["after"]


def test_bad_plan_values_are_refused(appliance: Appliance,
                                     owner: requests.Session, portal: str) -> None:
    before = tuple(appliance.db.query_one("SELECT * FROM plans WHERE id = 3"))
    for field, value, words in (("idle_minutes", "0", "idle timeout is 1-1440 minutes"),
                                ("data_cap_mb", "-5", "whole number of MB"),
                                ("rate_limit", "fast", "rate limit looks like")):
        form = {"name": "1 day", "price": "80", "minutes": "1440", field: value}
        refused = post(owner, portal, "plans/3", form)
        assert refused.status_code == 400 and words in refused.text, field
    assert tuple(appliance.db.query_one("SELECT * FROM plans WHERE id = 3")) == before


def test_create_with_idle_timeout_reorder_and_hide(
        appliance: Appliance, owner: requests.Session, portal: str) -> None:
    made = post(owner, portal, "plans", {"name": "Night", "price": "50", "minutes": "600",
                                         "data_cap_mb": "2000", "idle_minutes": "30"})
    assert made.status_code == 200
    night = appliance.db.query_one("SELECT * FROM plans WHERE name = 'Night'")
    assert (night["data_cap_bytes"], night["idle_timeout_seconds"]) == (2_000_000_000, 1800)
    order = [p["id"] for p in requests.get(portal + "api/plans", timeout=5).json()]
    assert order[-1] == night["id"]
    post(owner, portal, f"plans/{night['id']}/move", {"direction": "up"})
    order = [p["id"] for p in requests.get(portal + "api/plans", timeout=5).json()]
    assert order.index(night["id"]) == len(order) - 2
    post(owner, portal, f"plans/{night['id']}/visibility", {"active": "0"})
    assert night["id"] not in [p["id"] for p in requests.get(portal + "api/plans",
                                                             timeout=5).json()]
