"""Issue 3: callbacks cannot be forged into free time (real HTTP, in-process appliance)."""

from __future__ import annotations

import pytest
import requests
from support.mpesa import buy, callback_root, rows, wait_final
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.simulators.daraja.callbacks import callback_body
from hotspotd.simulators.daraja.state import Prompt

WAITING = "254700000050"  # waits for the phone page


def forged_success(checkout_id: str, amount: int = 10, receipt: str = "FAKE123456") -> dict:
    return {"Body": {"stkCallback": {
        "MerchantRequestID": "1-2-3", "CheckoutRequestID": checkout_id, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "TransactionDate", "Value": 20261128101010},
            {"Name": "PhoneNumber", "Value": 254700000050}]}}}}


def post(url: str, **kwargs: object) -> requests.Response:
    return requests.post(url, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_forged_success_for_a_pending_payment_grants_nothing(appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    public_id = buy(appliance, WAITING, "AA:BB:CC:00:20:01").json()["id"]
    checkout_id = sim.prompts()[0]["checkout_request_id"]
    answer = post(callback_root(appliance) + "/stk", json=forged_success(checkout_id))
    assert answer.status_code == 200 and answer.json()["ResultCode"] == 0
    wait_until(lambda: rows(appliance, "SELECT * FROM stk_callback_hints"), message="hint")
    assert rows(appliance, "SELECT * FROM grants") == []
    sim.resolve(checkout_id, "cancel")  # the real answer: cancelled
    assert wait_final(appliance, public_id)["status"] == "cancelled"
    assert rows(appliance, "SELECT * FROM grants") == []
    [rejected] = wait_until(lambda: rows(appliance, "SELECT * FROM callback_rejections"),
                            message="the rejection")
    assert rejected["reference"] == checkout_id
    assert "STK Query says 1032" in rejected["reason"]


def test_forged_success_after_a_daraja_failure_is_rejected_at_once(appliance: Appliance) -> None:
    public_id = buy(appliance, "254700000032", "AA:BB:CC:00:20:02").json()["id"]
    assert wait_final(appliance, public_id)["status"] == "cancelled"
    checkout_id = appliance.daraja_simulator.prompts()[0]["checkout_request_id"]
    post(callback_root(appliance) + "/stk", json=forged_success(checkout_id))
    assert rows(appliance, "SELECT * FROM grants") == []
    [rejected] = rows(appliance, "SELECT * FROM callback_rejections")
    assert "already ended cancelled" in rejected["reason"]


def test_forged_unknown_checkout_id_is_rejected_not_held(appliance: Appliance) -> None:
    post(callback_root(appliance) + "/stk", json=forged_success("ws_CO_forged00000001"))
    [rejected] = wait_until(lambda: rows(appliance, "SELECT * FROM callback_rejections"),
                            message="the rejection")
    assert "could not confirm" in rejected["reason"]
    assert rows(appliance, "SELECT * FROM unmatched_payments") == []
    assert rows(appliance, "SELECT * FROM grants") == []


@pytest.mark.appliance(settlement={"inline_query_delays": [], "query_backoff_seconds": [30.0]})
def test_real_callback_is_confirmed_grants_once_and_replays_change_nothing(
        appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    sim.faults.duplicate_callbacks = 2
    public_id = buy(appliance, "254708374149", "AA:BB:CC:00:20:03").json()["id"]
    final = wait_final(appliance, public_id)
    assert final["status"] == "completed" and final["receipt"]
    [payment] = rows(appliance, "SELECT * FROM payments")
    assert payment["settled_by"] == "query"  # the callback's claim, confirmed
    body = callback_body(Prompt(**sim.prompts()[0]))
    for _ in range(3):
        post(callback_root(appliance) + "/stk", json=body)
    assert len(rows(appliance, "SELECT * FROM grants")) == 1


@pytest.mark.appliance(daraja={"callback_allowlist": ["196.201.214.0/24"],
                               "trusted_proxies": ["127.0.0.1"]})
def test_allow_list_and_forwarded_for_only_from_trusted_proxies(appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    sim.faults.drop_callbacks = True
    url = callback_root(appliance) + "/stk"
    assert post(url, json=forged_success("ws_CO_x1")).status_code == 403  # no XFF
    spoofed = post(url, json=forged_success("ws_CO_x2"),
                   headers={"X-Forwarded-For": "196.201.214.200, 8.8.8.8"})
    assert spoofed.status_code == 403  # the proxy saw 8.8.8.8 connect
    assert len(rows(appliance, "SELECT * FROM callback_rejections")) == 2
    public_id = buy(appliance, WAITING, "AA:BB:CC:00:20:04").json()["id"]
    prompt_id = sim.prompts()[0]["checkout_request_id"]
    sim.resolve(prompt_id, "approve")
    body = callback_body(Prompt(**sim.prompts()[0]))
    trusted = post(url, json=body, headers={"X-Forwarded-For": "196.201.214.200"})
    assert trusted.status_code == 200
    [payment] = rows(appliance, "SELECT * FROM payments")
    assert (payment["status"], payment["settled_by"]) == ("completed", "callback")
    assert wait_final(appliance, public_id)["status"] == "completed"


def test_malformed_bodies_get_a_quick_ack_change_nothing_and_are_stored(
        appliance: Appliance) -> None:
    url = callback_root(appliance) + "/stk"
    bad = [b"{not json", b'{"Body": {}}', b'{"Body": {"stkCallback": {"ResultCode": "x"}}}',
           b'{"Body": {"stkCallback": {"MerchantRequestID": 1, "CheckoutRequestID": [],'
           b' "ResultCode": 0}}}', b"[" * 60_000]  # nested past any parser's depth
    for raw in bad:
        answer = post(url, data=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 200
        assert answer.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    stored = rows(appliance, "SELECT reason FROM callback_rejections")
    assert len(stored) == len(bad)
    # Past the listener's body limit (64 KiB; Daraja's callbacks are ~1-2 KiB) the
    # server refuses while reading, before any of it is buffered or stored.
    huge = post(url, data=b"[" * 70_000, headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert len(rows(appliance, "SELECT reason FROM callback_rejections")) == len(bad)
    assert rows(appliance, "SELECT * FROM payments") == []
    wrong = post(f"{appliance.addresses['portal_url']}callbacks/not-the-token/stk", json={})
    assert wrong.status_code == 404
