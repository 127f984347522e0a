"""The Daraja simulator over real sockets: shapes, outcomes, callbacks, phone page, faults."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask, jsonify, request
from support.wait import wait_until

from hotspotd.daraja.client import EAT, DarajaClient, daraja_timestamp, stk_password
from hotspotd.daraja.tokens import TokenCache
from hotspotd.httpserver import ServedApp
from hotspotd.simulators.daraja import AUTO_OUTCOMES, DarajaSimulator
from hotspotd.simulators.daraja.state import UnknownPrompt

KEY, SECRET = "sim-key", "sim-secret"
SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
TILL = "5566771"
ERROR_KEYS = ["requestId", "errorCode", "errorMessage"]


class Receiver:
    """A real HTTP endpoint standing in for the daemon's callback URL."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        app = Flask("receiver")

        @app.post("/cb/secret")
        def callback():
            with self._lock:
                self.bodies.append(request.get_json())
            return jsonify({"ResultCode": 0, "ResultDesc": "Accepted"})

        self.served = ServedApp(app, name="receiver").start()
        self.url = self.served.url + "/cb/secret"

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.bodies)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.served.stop()


@pytest.fixture
def sim() -> Iterator[DarajaSimulator]:
    simulator = DarajaSimulator(consumer_key=KEY, consumer_secret=SECRET, passkey=PASSKEY,
                                till_number=TILL, approve_delay=0.3, auto_resolve_delay=0.05)
    simulator.start()
    yield simulator
    simulator.stop()


def client_for(sim: DarajaSimulator, **options: Any) -> DarajaClient:
    settings: dict[str, Any] = {"base_url": sim.url, "consumer_key": KEY,
                                "consumer_secret": SECRET, "shortcode": SHORTCODE,
                                "passkey": PASSKEY, "timeout": 5.0, "tokens": TokenCache()}
    return DarajaClient(**(settings | options))


def push(sim: DarajaSimulator, phone: str, callback_url: str = "http://127.0.0.1:9/cb",
         **options: Any) -> str:
    return client_for(sim, **options).stk_push(
        phone=phone, amount=10, account_reference="WIFI", description="Hotspot",
        callback_url=callback_url).checkout_request_id


def final_result(sim: DarajaSimulator, checkout_id: str):
    client = client_for(sim)
    return wait_until(lambda: (r := client.stk_query(checkout_id)) and not r.pending and r)


def token(sim: DarajaSimulator) -> str:
    reply = requests.get(sim.url + "/oauth/v1/generate",
                         params={"grant_type": "client_credentials"}, auth=(KEY, SECRET),
                         timeout=5)
    return reply.json()["access_token"]


def raw_push_body(**changes: Any) -> dict[str, Any]:
    timestamp = daraja_timestamp(datetime.now(EAT))
    body = {"BusinessShortCode": SHORTCODE, "Password": stk_password(SHORTCODE, PASSKEY,
                                                                     timestamp),
            "Timestamp": timestamp, "TransactionType": "CustomerPayBillOnline",
            "Amount": 10, "PartyA": "254700000050", "PartyB": SHORTCODE,
            "PhoneNumber": "254700000050", "CallBackURL": "https://example.com/cb",
            "AccountReference": "WIFI", "TransactionDesc": "Hotspot"}
    return {k: v for k, v in (body | changes).items() if v is not None}


def raw_push(sim: DarajaSimulator, body: dict[str, Any],
             bearer: str | None = None) -> requests.Response:
    return requests.post(sim.url + "/mpesa/stkpush/v1/processrequest", json=body,
                         headers={"Authorization": f"Bearer {bearer or token(sim)}"},
                         timeout=5)


# -- OAuth ------------------------------------------------------------------------------------

def test_oauth_reply_has_string_expires_in(sim: DarajaSimulator) -> None:
    reply = requests.get(sim.url + "/oauth/v1/generate?grant_type=client_credentials",
                         auth=(KEY, SECRET), timeout=5)
    assert reply.status_code == 200
    body = reply.json()
    assert list(body) == ["access_token", "expires_in"]
    assert body["expires_in"] == "3599"


@pytest.mark.parametrize("auth, grant, code", [
    ((KEY, "wrong"), "client_credentials", "400.008.01"),
    (None, "client_credentials", "400.008.01"),
    ((KEY, SECRET), "password", "400.008.02"),
])
def test_oauth_errors(sim: DarajaSimulator, auth, grant: str, code: str) -> None:
    reply = requests.get(sim.url + "/oauth/v1/generate", params={"grant_type": grant},
                         auth=auth, timeout=5)
    assert reply.status_code == 400
    assert list(reply.json()) == ERROR_KEYS
    assert reply.json()["errorCode"] == code


def test_new_token_invalidates_the_previous_one(sim: DarajaSimulator) -> None:
    old, new = token(sim), token(sim)
    rejected = raw_push(sim, raw_push_body(), bearer=old)
    assert rejected.status_code == 404
    assert rejected.json() | {"requestId": ""} == {
        "requestId": "", "errorCode": "404.001.03", "errorMessage": "Invalid Access Token"}
    assert raw_push(sim, raw_push_body(), bearer=new).status_code == 200


# -- STK push ---------------------------------------------------------------------------------

def test_push_accepted_reply_shape(sim: DarajaSimulator) -> None:
    reply = raw_push(sim, raw_push_body(Amount="10"))
    assert reply.status_code == 200
    body = reply.json()
    assert list(body) == ["MerchantRequestID", "CheckoutRequestID", "ResponseCode",
                          "ResponseDescription", "CustomerMessage"]
    assert re.fullmatch(r"\d{5}-\d{8}-1", body["MerchantRequestID"])
    assert re.fullmatch(r"ws_CO_\d{18}", body["CheckoutRequestID"])
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == body["CustomerMessage"] == \
        "Success. Request accepted for processing"


OLD = daraja_timestamp(datetime.now(EAT) - timedelta(hours=2))


@pytest.mark.parametrize("changes, status, code, message", [
    ({"PhoneNumber": "0712345678"}, 400, "400.002.02", "Bad Request - Invalid PhoneNumber"),
    ({"PartyA": "254812345678"}, 400, "400.002.02", "Bad Request - Invalid PartyA"),
    ({"Amount": 0}, 400, "400.002.02", "Bad Request - Invalid Amount"),
    ({"Amount": 10.5}, 400, "400.002.02", "Bad Request - Invalid Amount"),
    ({"Amount": "ten"}, 400, "400.002.02", "Bad Request - Invalid Amount"),
    ({"CallBackURL": None}, 400, "400.002.02", "Bad Request - Invalid CallBackURL"),
    ({"CallBackURL": "ftp://x/cb"}, 400, "400.002.02", "Bad Request - Invalid CallBackURL"),
    ({"TransactionType": "Pay"}, 400, "400.002.02", "Bad Request - Invalid TransactionType"),
    ({"AccountReference": "A" * 13}, 400, "400.002.02",
     "Bad Request - Invalid AccountReference"),
    ({"Timestamp": OLD}, 400, "400.002.02", "Bad Request - Invalid Timestamp"),
    ({"Password": "d3Jvbmc="}, 500, "500.001.1001", "Wrong credentials"),
    ({"BusinessShortCode": "600000"}, 500, "500.001.1001", "Merchant does not exist"),
])
def test_push_validation(sim: DarajaSimulator, changes, status, code, message) -> None:
    reply = raw_push(sim, raw_push_body(**changes))
    assert reply.status_code == status
    body = reply.json()
    assert list(body) == ERROR_KEYS
    assert (body["errorCode"], body["errorMessage"]) == (code, message)
    assert sim.prompts() == []


def test_subscriber_lock_until_answered(sim: DarajaSimulator) -> None:
    first = raw_push(sim, raw_push_body()).json()["CheckoutRequestID"]
    locked = raw_push(sim, raw_push_body())
    assert locked.status_code == 500
    assert locked.json()["errorCode"] == "500.001.1001"
    assert locked.json()["errorMessage"] == ("Unable to lock subscriber, a transaction is "
                                             "already in process for the current subscriber")
    sim.resolve(first, "cancel")
    assert raw_push(sim, raw_push_body()).status_code == 200


def test_spike_arrest_shape(sim: DarajaSimulator) -> None:
    sim.faults.spike_arrest_next = 2
    for _ in range(2):
        reply = raw_push(sim, raw_push_body())
        assert reply.status_code == 500
        assert reply.json()["errorCode"] == "500.003.02"
    assert raw_push(sim, raw_push_body()).status_code == 200


# -- STK query --------------------------------------------------------------------------------

def test_query_shapes(sim: DarajaSimulator) -> None:
    checkout_id = push(sim, "254700000050")
    timestamp = daraja_timestamp(datetime.now(EAT))
    body = {"BusinessShortCode": SHORTCODE, "Timestamp": timestamp,
            "Password": stk_password(SHORTCODE, PASSKEY, timestamp),
            "CheckoutRequestID": checkout_id}
    url, headers = sim.url + "/mpesa/stkpushquery/v1/query", {
        "Authorization": f"Bearer {token(sim)}"}
    pending = requests.post(url, json=body, headers=headers, timeout=5)
    assert pending.status_code == 500
    assert list(pending.json()) == ERROR_KEYS
    assert pending.json()["errorMessage"] == "The transaction is being processed"
    sim.resolve(checkout_id, "cancel")
    final = requests.post(url, json=body, headers=headers, timeout=5).json()
    assert final | {"MerchantRequestID": ""} == {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": "", "CheckoutRequestID": checkout_id, "ResultCode": "1032",
        "ResultDesc": "Request cancelled by user"}
    unknown = requests.post(url, json=body | {"CheckoutRequestID": "ws_CO_0"},
                            headers=headers, timeout=5)
    assert unknown.status_code == 400
    assert unknown.json()["errorMessage"] == "Bad Request - Invalid CheckoutRequestID"


# -- outcomes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("nn", [nn for nn, (code, _) in AUTO_OUTCOMES.items() if code is not None])
def test_auto_outcomes(sim: DarajaSimulator, nn: str) -> None:
    checkout_id = push(sim, "2547000000" + nn)
    result = final_result(sim, checkout_id)
    code, description = AUTO_OUTCOMES[nn]
    assert (result.result_code, result.result_desc) == (str(code), description)


def test_auto_outcome_table() -> None:
    assert {nn: code for nn, (code, _) in AUTO_OUTCOMES.items()} == {
        "00": 0, "01": 1, "17": 17, "19": 1019, "20": 2001, "32": 1032, "37": 1037, "99": None}


def test_99_never_answers(sim: DarajaSimulator) -> None:
    checkout_id = push(sim, "254700000099")
    later = push(sim, "254700000001")  # answered by itself after auto_resolve_delay
    assert final_result(sim, later).result_code == "1"  # so the first's moment has passed
    assert client_for(sim).stk_query(checkout_id).pending


def test_sandbox_number_approves_after_delay(sim: DarajaSimulator) -> None:
    started = time.monotonic()
    checkout_id = push(sim, "0708 374 149")
    assert client_for(sim).stk_query(checkout_id).pending
    assert final_result(sim, checkout_id).result_code == "0"
    assert time.monotonic() - started >= 0.3


def test_till_with_wrong_party_b_fails_with_2028(sim: DarajaSimulator) -> None:
    checkout_id = push(sim, "254700000050", transaction_type="till", till_number="999999")
    sim.resolve(checkout_id, "approve")
    assert final_result(sim, checkout_id).result_code == "2028"


def test_till_with_right_party_b_succeeds(sim: DarajaSimulator) -> None:
    checkout_id = push(sim, "254700000050", transaction_type="till", till_number=TILL)
    sim.resolve(checkout_id, "approve")
    assert final_result(sim, checkout_id).result_code == "0"


def test_resolve_errors(sim: DarajaSimulator) -> None:
    checkout_id = push(sim, "254700000050")
    with pytest.raises(ValueError):
        sim.resolve(checkout_id, "dance")
    with pytest.raises(UnknownPrompt):
        sim.resolve("ws_CO_0", "approve")
    sim.resolve(checkout_id, "approve")
    with pytest.raises(ValueError):
        sim.resolve(checkout_id, "cancel")


# -- callbacks --------------------------------------------------------------------------------

def test_success_callback_shape(sim: DarajaSimulator, receiver: Receiver) -> None:
    checkout_id = push(sim, "254700000050", receiver.url)
    sim.resolve(checkout_id, "approve")
    [body] = wait_until(receiver.received)
    callback = body["Body"]["stkCallback"]
    assert callback["CheckoutRequestID"] == checkout_id
    assert callback["ResultCode"] == 0 and isinstance(callback["ResultCode"], int)
    assert callback["ResultDesc"] == "The service request is processed successfully."
    items = callback["CallbackMetadata"]["Item"]
    assert [item["Name"] for item in items] == [
        "Amount", "MpesaReceiptNumber", "Balance", "TransactionDate", "PhoneNumber"]
    values = {item["Name"]: item.get("Value") for item in items}
    assert "Value" not in items[2]
    assert values["Amount"] == 10
    assert re.fullmatch(r"[A-Z0-9]{10}", values["MpesaReceiptNumber"])
    assert isinstance(values["TransactionDate"], int)
    assert re.fullmatch(r"20\d{12}", str(values["TransactionDate"]))
    assert values["PhoneNumber"] == 254700000050
    assert sim.prompts()[0]["receipt"] == values["MpesaReceiptNumber"]


def test_failure_callback_has_no_metadata(sim: DarajaSimulator, receiver: Receiver) -> None:
    checkout_id = push(sim, "254700000032", receiver.url)  # cancels by itself
    [body] = wait_until(receiver.received)
    callback = body["Body"]["stkCallback"]
    assert list(callback) == ["MerchantRequestID", "CheckoutRequestID", "ResultCode",
                              "ResultDesc"]
    assert (callback["CheckoutRequestID"], callback["ResultCode"]) == (checkout_id, 1032)


def test_duplicate_callbacks(sim: DarajaSimulator, receiver: Receiver) -> None:
    sim.faults.duplicate_callbacks = 2
    sim.resolve(push(sim, "254700000050", receiver.url), "approve")
    wait_until(lambda: sim.prompts()[0]["callbacks_sent"] == 3)
    bodies = receiver.received()
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]


def test_dropped_callbacks_but_query_answers(sim: DarajaSimulator, receiver: Receiver) -> None:
    sim.faults.drop_callbacks = True
    checkout_id = push(sim, "254700000050", receiver.url)
    sim.resolve(checkout_id, "approve")
    assert final_result(sim, checkout_id).result_code == "0"
    assert sim.prompts()[0]["callback_dropped"] is True
    assert receiver.received() == []


def test_late_callback(sim: DarajaSimulator, receiver: Receiver) -> None:
    sim.faults.callback_delay = 0.3
    started = time.monotonic()
    sim.resolve(push(sim, "254700000050", receiver.url), "approve")
    wait_until(receiver.received)
    assert time.monotonic() - started >= 0.3


def test_unreachable_callback_is_recorded_not_raised(sim: DarajaSimulator) -> None:
    sim.resolve(push(sim, "254700000050", "http://127.0.0.1:9/cb"), "approve")
    wait_until(lambda: sim.prompts()[0]["callbacks_failed"] == 1)


# -- phone page -------------------------------------------------------------------------------

def test_phone_page_approve_and_cancel(sim: DarajaSimulator) -> None:
    approve_id = push(sim, "254700000050")
    cancel_id = push(sim, "254700000051")
    page = requests.get(sim.phone_url, timeout=5).text
    assert "Pay KES 10 to 174379 account WIFI?" in page
    assert '<meta http-equiv="refresh" content="2">' in page
    assert not re.search(r"(src|href)=\"?https?:", page)
    assert f'action="/phone/{approve_id}/approve"' in page
    after = requests.post(f"{sim.phone_url}/{approve_id}/approve", timeout=5)
    assert after.status_code == 200 and after.url == sim.phone_url
    receipt = sim.prompts()[0]["receipt"]
    assert receipt and receipt in after.text
    requests.post(f"{sim.phone_url}/{cancel_id}/cancel", timeout=5)
    assert final_result(sim, approve_id).result_code == "0"
    assert final_result(sim, cancel_id).result_code == "1032"
    again = requests.post(f"{sim.phone_url}/{cancel_id}/approve", timeout=5)
    assert again.status_code == 200
    assert requests.post(f"{sim.phone_url}/ws_CO_0/approve", timeout=5).status_code == 404


def test_phone_json_and_test_client(sim: DarajaSimulator) -> None:
    checkout_id = push(sim, "254700000050")
    listed = requests.get(sim.url + "/phone.json", timeout=5).json()
    assert [(p["checkout_request_id"], p["state"]) for p in listed] == [
        (checkout_id, "pending")]
    assert sim.app().test_client().get("/phone.json").json == listed


def test_stop_cancels_pending_auto_answers() -> None:
    sim = DarajaSimulator(consumer_key=KEY, consumer_secret=SECRET, passkey=PASSKEY,
                          auto_resolve_delay=0.2)
    sim.start()
    push(sim, "254700000000")
    sim.stop()
    time.sleep(0.3)
    assert sim.prompts()[0]["state"] == "pending"


def test_password_matches_the_sandbox_docs_sample() -> None:
    password = stk_password(SHORTCODE, PASSKEY, "20160216165627")
    assert base64.b64decode(password).decode() == SHORTCODE + PASSKEY + "20160216165627"
