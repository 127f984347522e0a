"""The daemon's HTTP side through a real server: API input errors, the callback endpoint
(secret path, malformed bodies, replays), and the portal's no-JavaScript purchase path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from support.mpesa import buy, wait_final
from support.phones import phone_for

from hotspotd.app import Appliance
from hotspotd.simulators.phones import SimulatedPhone

MAC = "AA:BB:CC:00:00:42"
Phone = Callable[..., SimulatedPhone]  # the `phone` fixture
WaitUntil = Callable[..., Any]  # the `wait_until` fixture


def post_purchase(appliance: Appliance, body: Any, mac: str = MAC) -> requests.Response:
    """POST a raw body (JSON) to /api/purchases from the phone with `mac`."""
    return phone_for(appliance, mac).post(appliance.addresses["portal_url"] + "api/purchases",
                                          json=body, timeout=10)


def count(appliance: Appliance, sql: str, *params: Any) -> int:
    return appliance.db.query_one(sql, params)[0]


@pytest.mark.parametrize(("body", "code", "status"), [
    ({"plan_id": 1, "phone": "0712"}, "invalid_phone", 400),
    ({"plan_id": 1, "phone": "+1 555 0100", "mac": MAC}, "invalid_phone", 400),
    ({"plan_id": 99, "phone": "0708374149"}, "unknown_plan", 400),
    ({"plan_id": "x", "phone": "0708374149"}, "unknown_plan", 400),
    ({"plan_id": 1, "phone": "0708374149", "mac": "nope"}, "device_mismatch", 409),
    ({"plan_id": 1, "phone": "0708374149", "mac": "AA:BB:CC:00:00:99"}, "device_mismatch",
     409),
    ({"plan_id": 1, "phone": "0708374149", "ip": "10.0.0.2"}, "device_mismatch", 409),
    ({"plan_id": 1}, "invalid_request", 400),
    ({"plan_id": 1, "phone": 708374149}, "invalid_request", 400),
    ([1, 2, 3], "invalid_request", 400),
])
def test_bad_purchase_input_is_a_clear_error_and_stores_nothing(
        appliance: Appliance, body: Any, code: str, status: int) -> None:
    before = count(appliance, "SELECT COUNT(*) FROM payments")
    response = post_purchase(appliance, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    assert count(appliance, "SELECT COUNT(*) FROM payments") == before


def test_non_json_and_huge_bodies_are_refused(portal: str, phone: Phone) -> None:
    device = phone(MAC)
    assert device.post(portal + "api/purchases", data="plan_id=1", timeout=5).status_code == 400
    huge = device.post(portal + "api/purchases", data=b"x" * 200_000, timeout=5,
                       headers={"Content-Type": "application/json"})
    assert huge.status_code == 413


def test_json_nested_past_the_parsers_depth_is_a_400_not_a_crash(
        appliance: Appliance, portal: str, phone: Phone) -> None:
    before = count(appliance, "SELECT COUNT(*) FROM payments")
    bomb = phone(MAC).post(portal + "api/purchases", data=b"[" * 60_000, timeout=5,
                                          headers={"Content-Type": "application/json"})
    assert bomb.status_code == 400 and bomb.json()["error"]["code"] == "invalid_request"
    assert count(appliance, "SELECT COUNT(*) FROM payments") == before


def test_unknown_purchase_is_404(portal: str, phone: Phone) -> None:
    response = phone(MAC).get(portal + "api/purchases/not-a-real-id", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_refused_push_is_stored_failed_with_a_reason(appliance: Appliance, portal: str) -> None:
    appliance.daraja_simulator.faults.quota_next = 1  # quota: refused, not retried
    response = buy(appliance, "0711000001", MAC)
    assert response.status_code == 502
    assert "request limit" in response.json()["error"]["message"]
    row = appliance.db.query_one("SELECT * FROM payments ORDER BY id DESC LIMIT 1")
    assert (row["status"], row["result_code"]) == ("failed", "500.003.03")


def test_spike_arrest_on_push_backs_off_and_retries(appliance: Appliance, portal: str) -> None:
    appliance.daraja_simulator.faults.spike_arrest_next = 1
    response = buy(appliance, "0711000002", MAC)
    assert response.status_code == 202
    assert response.json()["status"] == "pending"


def callback_url(appliance: Appliance) -> str:
    token = appliance.config.web.callback_token
    return f"{appliance.addresses['portal_url']}callbacks/{token}/stk"


def test_callback_with_wrong_token_is_404_and_changes_nothing(appliance: Appliance) -> None:
    wrong = callback_url(appliance).replace(appliance.config.web.callback_token, "guess")
    assert requests.post(wrong, json={"Body": {}}, timeout=5).status_code == 404


@pytest.mark.parametrize("body", [
    "not json", {"Body": {}}, {"Body": {"stkCallback": "x"}},
    {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "MerchantRequestID": "m",
                              "ResultCode": 0, "ResultDesc": "ok"}}},
    {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "MerchantRequestID": "m",
                              "ResultCode": None}}},
])
def test_malformed_callback_is_acknowledged_and_changes_nothing(
        appliance: Appliance, body: Any) -> None:
    grants = count(appliance, "SELECT COUNT(*) FROM grants")
    data = body if isinstance(body, str) else json.dumps(body)
    response = requests.post(callback_url(appliance), data=data, timeout=5,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert count(appliance, "SELECT COUNT(*) FROM grants") == grants


def test_replayed_callback_grants_once(appliance: Appliance, portal: str) -> None:
    mac = "AA:BB:CC:00:00:43"
    created = buy(appliance, "0708374149", mac, plan_id=2).json()
    done = wait_final(appliance, created["id"])
    assert done["status"] == "completed"
    payment = appliance.db.query_one("SELECT * FROM payments WHERE public_id = ?",
                                     (created["id"],))
    replay = {"Body": {"stkCallback": {
        "MerchantRequestID": payment["merchant_request_id"],
        "CheckoutRequestID": payment["checkout_request_id"], "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": payment["amount"]},
            {"Name": "MpesaReceiptNumber", "Value": payment["receipt"] or "RPL1234567"},
            {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261128104500},
            {"Name": "PhoneNumber", "Value": 254708374149}]}}}}
    for _ in range(3):
        assert requests.post(callback_url(appliance), json=replay, timeout=5).status_code == 200
    assert count(appliance, "SELECT COUNT(*) FROM grants WHERE mac = ?", mac) == 1
    device = phone_for(appliance, mac).get(f"{portal}api/devices/{mac}", timeout=5).json()
    assert abs(device["seconds_remaining"] - 3600) <= 5


def test_portal_purchase_without_javascript(portal: str, phone: Phone,
                                            wait_until: WaitUntil) -> None:
    browser = phone("AA:BB:CC:00:00:44")  # keeps the CSRF cookie, as a
    mac, ip = browser.mac, browser.address  # browser does; the router's hints agree
    page = browser.get(portal, params={"mac": mac, "ip": ip}, timeout=5)
    assert page.status_code == 200
    assert "KES 10" in page.text and 'name="phone"' in page.text
    assert "http://" not in re.sub(r'action="[^"]*"', "", page.text).replace(portal, "")
    form = {"plan_id": "1", "phone": "0708 374 149", "mac": mac, "ip": ip,
            "link-orig": "http://example.com/", "csrf": csrf_of(page.text)}
    posted = browser.post(portal + "buy", data=form, timeout=10, allow_redirects=False)
    assert posted.status_code == 303
    status_url = portal.rstrip("/") + posted.headers["Location"]
    assert "Check your phone" in browser.get(status_url, timeout=5).text
    text = wait_until(lambda: "You are connected" in (page := browser.get(
        status_url, timeout=5).text) and page, message="the status page to say connected")
    assert "30 min" in text and "http://example.com/" in text
    again = browser.get(portal, params={"mac": mac, "ip": ip}, timeout=5).text
    assert "left" in again and "30 min" in again


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the portal form carries a CSRF token"
    return found.group(1)


def test_portal_shows_a_clear_error_for_a_bad_number(portal: str, phone: Phone) -> None:
    browser = phone()
    page = browser.get(portal, timeout=5)
    form = {"plan_id": "1", "phone": "12", "csrf": csrf_of(page.text)}
    response = browser.post(portal + "buy", data=form, timeout=5)
    assert response.status_code == 400
    assert "0712 345 678" in response.text and 'value="12"' in response.text


def test_healthz(portal: str) -> None:
    body = requests.get(portal + "healthz", timeout=5).json()
    assert body["ok"] is True


def test_runtime_json_written(appliance: Appliance) -> None:
    runtime = json.loads((Path(appliance.config.database.path).parent /
                          "runtime.json").read_text())
    assert runtime["portal_url"] == appliance.addresses["portal_url"]
