"""The self-test's Daraja product-access check and its RADIUS check (the last Access-Request
from the router, not accounting), unit-level and against the running demo appliance:
the simulator's token fault makes OAuth work while every API call answers 404.001.03, the
way Daraja answers an app without the M-Pesa Express product."""

from __future__ import annotations

import re
from html import unescape

import requests
from support.radclient import run_radclient

from hotspotd.admin.selftest import daraja_product_access, radius_requests_seen
from hotspotd.app import Appliance
from hotspotd.daraja.errors import DarajaApiError, DarajaAuthError, DarajaUnreachable


def raising(exc: Exception):  # type: ignore[no-untyped-def]
    def query(checkout_id: str) -> None:
        assert checkout_id.startswith("ws_CO_")
        raise exc
    return query


def test_product_access_tells_a_business_error_from_no_access() -> None:
    ok = daraja_product_access(raising(DarajaApiError(400, "400.002.02",
                                                      "Invalid CheckoutRequestID")))
    assert ok.ok and "M-Pesa Express reached" in ok.detail
    none = daraja_product_access(raising(DarajaApiError(404, "404.001.03",
                                                        "Invalid Access Token")))
    assert not none.ok and "OAuth works, but" in none.detail
    assert "add the M-Pesa Express (Lipa na M-Pesa Online) product" in none.fix
    forbidden = daraja_product_access(raising(DarajaApiError(403, "403.001.01", "Forbidden")))
    assert not forbidden.ok and "no access to M-Pesa Express" in forbidden.fix
    wrong = daraja_product_access(raising(DarajaApiError(500, "500.001.1001",
                                                         "Wrong credentials")))
    assert not wrong.ok and "passkey" in wrong.fix
    oauth = daraja_product_access(raising(DarajaAuthError("400 bad key", http_status=400)))
    assert not oauth.ok and "consumer key and secret" in oauth.fix
    down = daraja_product_access(raising(DarajaUnreachable("no route")))
    assert not down.ok and "uplink" in down.fix


def test_radius_check_uses_the_last_access_request() -> None:
    never = radius_requests_seen(None, now=1000.0, started_at=400.0, auth_port=1812)
    assert not never.ok and "since the daemon started 10 min ago" in never.detail
    assert "Join the WiFi with a phone" in never.fix and "UDP 1812" in never.fix
    old = radius_requests_seen(1000.0, now=1000.0 + 2 * 3600, started_at=0, auth_port=1812)
    assert not old.ok and "120 min ago" in old.detail and "nobody joined" in old.fix
    fresh = radius_requests_seen(990.0, now=1000.0, started_at=0, auth_port=1812)
    assert fresh.ok and fresh.detail == "last Access-Request 0 min ago"
    stranger = radius_requests_seen(None, now=1000.0, started_at=0, auth_port=1812,
                                    dropped={"unknown_client": 3})
    assert "3 request(s) came from an address not in [radius] clients" in stranger.fix


def check_row(html: str, name: str) -> str:
    """The text of the self-test row `name` (result and what to do)."""
    match = re.search(rf"<tr><td>{re.escape(name)}</td>(.*?)</tr>", html, re.S)
    assert match, html[:2000]
    return unescape(re.sub(r"<[^>]+>", " ", match[1]))


def test_self_test_page_says_when_daraja_refuses_the_product(
        appliance: Appliance, owner: requests.Session, portal: str) -> None:
    session, base = owner, portal + "admin/"
    appliance.daraja.budget.back_off("spike arrest")  # budget busy 2 s: the probe waits
    healthy = check_row(session.get(base + "settings/self-test", timeout=30).text,
                        "Daraja product access")
    assert healthy.strip().startswith("OK: M-Pesa Express reached"), healthy
    faults = appliance.daraja_simulator.faults
    faults.update(token_lifetime=0.000001)  # OAuth works; every API call: 404.001.03
    try:
        broken = check_row(session.get(base + "settings/self-test", timeout=30).text,
                           "Daraja product access")
    finally:
        faults.reset()
    assert "PROBLEM: OAuth works, but STK Query answered HTTP 404 404.001.03" in broken
    assert "has no access to M-Pesa Express" in broken
    assert "developer.safaricom.co.ke" in broken


def test_self_test_page_reports_the_last_access_request(
        appliance: Appliance, owner: requests.Session, portal: str) -> None:
    session, base = owner, portal + "admin/"
    appliance.radius.stats.last_access_request_at = None  # as after a start
    before = check_row(session.get(base + "settings/self-test", timeout=30).text,
                       "RADIUS from the router")
    assert "PROBLEM: no Access-Request from the router since the daemon started" in before
    assert "/radius" in before and "use-radius=yes" in before
    radius = appliance.addresses["radius"]
    reply = run_radclient(radius["auth_port"], "auth", radius["secret"], {
        "User-Name": "AA:BB:CC:0C:00:01", "User-Password": radius["mac_password"],
        "Calling-Station-Id": "AA:BB:CC:0C:00:01"}, host=radius["host"])
    assert reply.code == "Access-Reject"  # no time bought: still a request seen
    after = check_row(session.get(base + "settings/self-test", timeout=30).text,
                      "RADIUS from the router")
    assert after.strip().startswith("OK: last Access-Request 0 min ago"), after
