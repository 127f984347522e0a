"""Daraja peers written by others, each against the other side of the product's Daraja code.

`DarajaSimulator` and the production `DarajaClient` were written side by side, so a shared
misunderstanding would pass every other test. Here:

- **mpesa-sdk** (PyPI; a Daraja SDK with its own CI) talks to the simulator over HTTP: OAuth,
  STK push to a number that approves, STK query while pending and after, the subscriber
  lock, the Kenyan-time timestamp, C2B register and simulate. Its base URL is a module
  constant (`mpesa_sdk.urls.SANDBOX_BASE_URL`), read at each call, pointed at the simulator.
- **daraja-mock** (PyPI; a Flask test double of Daraja) is served on port 0 and the
  production client talks to it: token, push, query, and a whole purchase settled by STK
  Query alone (the double sends no callbacks). Its request log shows what the client sent,
  checked here against ../shared/reference/daraja.md.

Found and fixed in the client: the query result named the CheckoutRequestID of the reply,
not the one asked about (the double answers with an id of its own); STK Query's ResultCode
4999, "still processing" per the reference, was taken as a final failure.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from daraja_mock import DarajaMock
from flask import Flask, jsonify, request
from mpesa_sdk import (
    Mpesa,
    MpesaRequestError,
    generate_mpesa_express_password,
    generate_timestamp,
    oauth_generate_token,
    urls,
)
from support.appliance import running_appliance
from support.phones import phone_for
from support.wait import wait_until

from hotspotd.daraja.client import DarajaClient
from hotspotd.daraja.tokens import TokenCache
from hotspotd.httpserver import ServedApp
from hotspotd.simulators.daraja import SANDBOX_TEST_MSISDN, DarajaSimulator

KEY, SECRET = "peer-key", "peer-secret"
SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
EAT = timezone(timedelta(hours=3))
CANCELS = "254700000032"  # the simulator answers 1032 (cancelled) by itself


class Receiver:
    """The merchant's side on loopback: STK callbacks, C2B validation and confirmation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bodies: dict[str, list[dict[str, Any]]] = {"stk": [], "validate": [],
                                                         "confirm": []}
        app = Flask("peer-receiver")
        replies = {"stk": {"ResultCode": 0, "ResultDesc": "Accepted"},
                   "validate": {"ResultCode": "0", "ResultDesc": "Accepted"},
                   "confirm": {"ResultCode": 0, "ResultDesc": "Success"}}

        @app.post("/hooks/<kind>")
        def hook(kind: str):  # type: ignore[no-untyped-def]
            with self._lock:
                self.bodies[kind].append(request.get_json(force=True))
            return jsonify(replies[kind])

        self.served = ServedApp(app, name="peer-receiver").start()

    def url(self, kind: str) -> str:
        return f"{self.served.url}/hooks/{kind}"

    def got(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.bodies[kind])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.served.stop()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[DarajaSimulator]:
    """The simulator, with mpesa-sdk's sandbox base URL pointed at it."""
    simulator = DarajaSimulator(consumer_key=KEY, consumer_secret=SECRET, passkey=PASSKEY,
                                approve_delay=1.5, auto_resolve_delay=0.05)
    simulator.start()
    monkeypatch.setattr(urls, "SANDBOX_BASE_URL", simulator.url)
    yield simulator
    simulator.stop()


def sdk_client() -> Mpesa:
    token, status = oauth_generate_token(KEY, SECRET, env="sandbox", timeout=5)
    assert status == 200
    return Mpesa(token["access_token"], env="sandbox", timeout=5)


def sdk_push(client: Mpesa, phone: str, callback_url: str,
             timestamp: str | None = None) -> dict[str, Any]:
    stamp = timestamp or generate_timestamp()
    reply, status = client.mpesa_express_payment({
        "BusinessShortCode": SHORTCODE, "Timestamp": stamp,
        "Password": generate_mpesa_express_password(SHORTCODE, PASSKEY, stamp),
        "Amount": 10, "PartyA": phone, "PartyB": SHORTCODE, "PhoneNumber": phone,
        "CallBackURL": callback_url, "AccountReference": "WIFI-1H",
        "TransactionDesc": "Hotspot 1h"})
    assert status == 200
    return reply


def sdk_query(client: Mpesa, checkout_id: str) -> dict[str, Any]:
    stamp = generate_timestamp()
    reply, _ = client.mpesa_express_query({
        "BusinessShortCode": SHORTCODE, "Timestamp": stamp, "CheckoutRequestID": checkout_id,
        "Password": generate_mpesa_express_password(SHORTCODE, PASSKEY, stamp)})
    return reply


def final_query(client: Mpesa, checkout_id: str) -> dict[str, Any]:
    def answered() -> dict[str, Any] | None:
        try:
            return sdk_query(client, checkout_id)
        except MpesaRequestError as err:
            assert err.status_code == 500 and "being processed" in str(err)
            return None
    return wait_until(answered)


# -- mpesa-sdk against the Daraja simulator ---------------------------------------------------

def test_sdk_gets_a_token_only_with_the_right_secret_and_a_new_one_replaces_it(
        sim: DarajaSimulator) -> None:
    token, status = oauth_generate_token(KEY, SECRET, env="sandbox", timeout=5)
    assert status == 200 and token["access_token"] and token["expires_in"] == "3599"
    with pytest.raises(MpesaRequestError) as refused:
        oauth_generate_token(KEY, "not-the-secret", env="sandbox", timeout=5)
    assert refused.value.status_code == 400
    assert "Invalid Authentication passed" in str(refused.value)
    newer = sdk_client()  # Daraja may invalidate the previous token: the simulator does
    with pytest.raises(MpesaRequestError) as stale:
        sdk_query(Mpesa(token["access_token"], env="sandbox", timeout=5), "ws_CO_none")
    assert stale.value.status_code == 404 and "Invalid Access Token" in str(stale.value)
    with pytest.raises(MpesaRequestError) as unknown:  # the new token gets past the gate
        sdk_query(newer, "ws_CO_none")
    assert unknown.value.status_code == 400 and "CheckoutRequestID" in str(unknown.value)


def test_sdk_push_to_a_number_that_approves_then_query_and_callback(
        sim: DarajaSimulator, receiver: Receiver) -> None:
    client = sdk_client()
    accepted = sdk_push(client, SANDBOX_TEST_MSISDN, receiver.url("stk"))
    assert accepted["ResponseCode"] == "0" and accepted["CheckoutRequestID"]
    with pytest.raises(MpesaRequestError) as pending:  # the phone has not answered yet
        sdk_query(client, accepted["CheckoutRequestID"])
    assert pending.value.status_code == 500 and "being processed" in str(pending.value)
    with pytest.raises(MpesaRequestError) as locked:  # one open prompt per subscriber
        sdk_push(client, SANDBOX_TEST_MSISDN, receiver.url("stk"))
    assert locked.value.status_code == 500 and "Unable to lock subscriber" in str(locked.value)

    result = final_query(client, accepted["CheckoutRequestID"])
    assert (result["ResultCode"], result["CheckoutRequestID"],
            result["MerchantRequestID"]) == ("0", accepted["CheckoutRequestID"],
                                             accepted["MerchantRequestID"])
    callback = wait_until(lambda: receiver.got("stk"))[0]["Body"]["stkCallback"]
    items = {item["Name"]: item.get("Value") for item in callback["CallbackMetadata"]["Item"]}
    assert callback["ResultCode"] == 0
    assert (items["Amount"], items["PhoneNumber"]) == (10, int(SANDBOX_TEST_MSISDN))
    assert items["MpesaReceiptNumber"]


def test_sdk_query_reports_a_prompt_the_customer_cancelled(sim: DarajaSimulator,
                                                           receiver: Receiver) -> None:
    client = sdk_client()
    accepted = sdk_push(client, CANCELS, receiver.url("stk"))
    result = final_query(client, accepted["CheckoutRequestID"])
    assert (result["ResultCode"], result["ResultDesc"]) == ("1032", "Request cancelled by user")


def test_sdk_push_stamped_in_utc_is_refused_as_daraja_does(sim: DarajaSimulator,
                                                          receiver: Receiver) -> None:
    """The SDK stamps Kenyan time itself; SDKs that format a UTC server's local time get
    400.002.02 Invalid Timestamp (reference: field reports)."""
    utc_stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    with pytest.raises(MpesaRequestError) as refused:
        sdk_push(sdk_client(), SANDBOX_TEST_MSISDN, receiver.url("stk"), timestamp=utc_stamp)
    assert refused.value.status_code == 400 and "Invalid Timestamp" in str(refused.value)
    assert sim.prompts() == []


def test_sdk_c2b_register_and_simulate_reach_the_registered_urls(
        sim: DarajaSimulator, receiver: Receiver) -> None:
    client = sdk_client()
    registered, _ = client.c2b_register_url({
        "ShortCode": SHORTCODE, "ResponseType": "Completed",
        "ConfirmationURL": receiver.url("confirm"), "ValidationURL": receiver.url("validate")})
    assert registered["ResponseCode"] == "0"
    paid, _ = client.c2b_simulate_transaction({"ShortCode": SHORTCODE, "Amount": 10,
                                               "Msisdn": SANDBOX_TEST_MSISDN,
                                               "BillRefNumber": "ACC123"})
    assert paid["ResponseCode"] == "0"
    confirmation = wait_until(lambda: receiver.got("confirm"))[0]
    validation = receiver.got("validate")[0]
    assert validation["TransID"] == confirmation["TransID"]
    assert validation["OrgAccountBalance"] == ""
    assert (confirmation["TransAmount"], confirmation["BillRefNumber"],
            confirmation["BusinessShortCode"]) == ("10.00", "ACC123", SHORTCODE)
    assert len(confirmation["TransTime"]) == 14 and confirmation["TransTime"].isdigit()


# -- the production DarajaClient against daraja-mock -----------------------------------------

@pytest.fixture
def double() -> Iterator[tuple[DarajaMock, str]]:
    """daraja-mock's Flask app served by waitress on port 0 (its run_thread takes a fixed
    port and Flask's development server)."""
    mock = DarajaMock(consumer_key=KEY, consumer_secret=SECRET)
    served = ServedApp(mock.app, name="daraja-mock").start()
    yield mock, served.url
    served.stop()


def client_of(url: str) -> DarajaClient:
    return DarajaClient(base_url=url, consumer_key=KEY, consumer_secret=SECRET,
                        shortcode=SHORTCODE, passkey=PASSKEY, timeout=5.0,
                        tokens=TokenCache())


def sent(mock: DarajaMock, path: str) -> list[dict[str, Any]]:
    return [entry["body"] for entry in mock.request_log() if entry["path"] == path]


def test_client_token_push_and_query_against_the_double(
        double: tuple[DarajaMock, str]) -> None:
    mock, url = double
    client = client_of(url)
    client.check_credentials()
    accepted = client.stk_push(phone="0708374149", amount=10,
                               account_reference="HOTSPOT-ACCOUNT", description="Hotspot WiFi 1h",
                               callback_url="https://venue.example/cb/stk")
    assert accepted.checkout_request_id.startswith("ws_CO_")

    push = sent(mock, "/mpesa/stkpush/v1/processrequest")[0]  # as the reference has it
    stamp = datetime.strptime(push["Timestamp"], "%Y%m%d%H%M%S").replace(tzinfo=EAT)
    assert abs(stamp - datetime.now(EAT)) < timedelta(minutes=1)  # Kenyan time
    assert base64.b64decode(push["Password"]).decode() == SHORTCODE + PASSKEY + push["Timestamp"]
    assert push["PartyA"] == push["PhoneNumber"] == "254708374149"
    assert (push["TransactionType"], push["PartyB"], push["BusinessShortCode"],
            push["Amount"]) == ("CustomerPayBillOnline", SHORTCODE, SHORTCODE, 10)
    assert len(push["AccountReference"]) <= 12 and len(push["TransactionDesc"]) <= 13

    for code in (0, 1032, 1037):
        mock.set_stk_result(code)
        result = client.stk_query(accepted.checkout_request_id)
        assert (result.pending, result.result_code) == (False, str(code))
        # The double names a CheckoutRequestID of its own; the answer is about ours (fix).
        assert result.checkout_request_id == accepted.checkout_request_id
    query = sent(mock, "/mpesa/stkpushquery/v1/query")[0]
    assert query["CheckoutRequestID"] == accepted.checkout_request_id
    assert base64.b64decode(query["Password"]).decode() == (SHORTCODE + PASSKEY
                                                            + query["Timestamp"])
    assert [e["path"] for e in mock.request_log()].count("/oauth/v1/generate") == 1


def test_client_takes_result_4999_as_still_processing(double: tuple[DarajaMock, str]) -> None:
    mock, url = double
    mock.set_stk_result(4999)  # reference: "still processing", not a failure (fix)
    result = client_of(url).stk_query("ws_CO_AWAITED")
    assert (result.pending, result.result_code) == (True, None)


def test_a_purchase_settles_by_stk_query_alone_against_the_double(
        tmp_path: Path, double: tuple[DarajaMock, str]) -> None:
    """The whole appliance with its Daraja backend at daraja-mock, which sends no callback:
    the purchase stays pending while STK Query says 4999, and completes (the router lists
    the device active) once STK Query says 0."""
    mock, url = double
    mock.set_stk_result(4999)
    with running_appliance(
            tmp_path, daraja={"backend": "daraja", "base_url": url, "consumer_key": KEY,
                              "consumer_secret": SECRET, "shortcode": SHORTCODE,
                              "passkey": PASSKEY},
            settlement={"inline_query_delays": (0.3, 0.6), "reconcile_interval_seconds": 1,
                        "query_backoff_seconds": (0.3, 0.6)}) as appliance:
        portal = appliance.addresses["portal_url"]
        phone = phone_for(appliance, "AA:BB:CC:15:00:01")
        created = phone.post(portal + "api/purchases", timeout=10,
                             json={"plan_id": 1, "phone": "0708374149"})
        assert created.status_code == 202, created.text
        status_url = f"{portal}api/purchases/{created.json()['id']}"

        wait_until(lambda: len(sent(mock, "/mpesa/stkpushquery/v1/query")) >= 2)
        assert phone.get(status_url, timeout=5).json()["status"] == "pending"

        mock.set_stk_result(0)
        done = wait_until(lambda: (s := phone.get(status_url, timeout=5).json())["status"]
                            != "pending" and s)
        assert (done["status"], done["result_code"]) == ("completed", "0")
        wait_until(lambda: phone.mac in {row["mac-address"] for row in  # the outbox logs it in
                                          appliance.router_simulator.active_hosts()},
                   message="the device active at the router")
        pushes = sent(mock, "/mpesa/stkpush/v1/processrequest")
        assert [p["PhoneNumber"] for p in pushes] == ["254708374149"]
