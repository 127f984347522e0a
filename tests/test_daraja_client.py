"""DarajaClient over real sockets, against the Daraja simulator or a tiny recording app."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, jsonify, request

from hotspotd.daraja.client import DarajaClient, daraja_timestamp
from hotspotd.daraja.errors import (
    DarajaApiError,
    DarajaAuthError,
    DarajaProtocolError,
    DarajaTimeout,
    DarajaUnreachable,
    is_invalid_field,
    is_spike_arrest,
    is_subscriber_locked,
)
from hotspotd.daraja.msisdn import InvalidPhoneNumber
from hotspotd.daraja.tokens import TokenCache, shared_token_cache
from hotspotd.httpserver import ServedApp
from hotspotd.simulators.daraja import DarajaSimulator

KEY, SECRET = "consumer-key", "consumer-secret-do-not-log"
SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
TILL = "5566771"
PENDING_PHONE = "254700000050"  # 2547000000NN with no auto outcome: waits for the phone page
FIXED_NOW = datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)  # 17:07:09 in Nairobi


def make_simulator(**options: Any) -> DarajaSimulator:
    settings: dict[str, Any] = {"consumer_key": KEY, "consumer_secret": SECRET,
                                "passkey": PASSKEY, "till_number": TILL,
                                "approve_delay": 0.05, "auto_resolve_delay": 0.05}
    return DarajaSimulator(**(settings | options))


@pytest.fixture
def sim() -> Iterator[DarajaSimulator]:
    simulator = make_simulator()
    simulator.start()
    yield simulator
    simulator.stop()


def make_client(base_url: str, **options: Any) -> DarajaClient:
    settings: dict[str, Any] = {"base_url": base_url, "consumer_key": KEY,
                                "consumer_secret": SECRET, "shortcode": SHORTCODE,
                                "passkey": PASSKEY, "timeout": 5.0, "tokens": TokenCache()}
    return DarajaClient(**(settings | options))


def push(client: DarajaClient, phone: str = PENDING_PHONE, **fields: Any):
    args = {"phone": phone, "amount": 10, "account_reference": "WIFI",
            "description": "Hotspot", "callback_url": "http://127.0.0.1:9/cb"}
    return client.stk_push(**(args | fields))


class Recorder:
    """A tiny Daraja look-alike that records requests and answers what the test says."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.token_reply: dict[str, Any] = {"access_token": "tok-123", "expires_in": 3599}
        self.query_reply: tuple[Any, int] = ({"ResponseCode": "0", "ResultCode": 0,
                                              "ResultDesc": "ok"}, 200)
        app = Flask("recorder")
        app.add_url_rule("/oauth/v1/generate", "oauth", self._oauth)
        app.add_url_rule("/mpesa/stkpush/v1/processrequest", "push", self._push,
                         methods=["POST"])
        app.add_url_rule("/mpesa/stkpushquery/v1/query", "query", self._query,
                         methods=["POST"])
        self.served = ServedApp(app, name="recorder").start()

    def _record(self) -> None:
        self.requests.append({"path": request.path, "args": dict(request.args),
                              "auth": request.headers.get("Authorization"),
                              "json": request.get_json(silent=True)})

    def _oauth(self):
        self._record()
        return jsonify(self.token_reply)

    def _push(self):
        self._record()
        return jsonify({"MerchantRequestID": "1-2-1", "CheckoutRequestID": "ws_CO_1",
                        "ResponseCode": "0", "ResponseDescription": "ok",
                        "CustomerMessage": "ok"})

    def _query(self):
        self._record()
        body, status = self.query_reply
        return (body, status) if isinstance(body, str) else (jsonify(body), status)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.served.stop()


# -- tokens ---------------------------------------------------------------------------------

def test_token_fetched_once_for_two_pushes(sim: DarajaSimulator) -> None:
    client = make_client(sim.url)
    push(client, "254700000050")
    push(client, "254700000051")
    assert sim.stats() == {"oauth": 1, "stkpush": 2, "stkquery": 0}


def test_token_cache_is_process_wide(sim: DarajaSimulator) -> None:
    first = make_client(sim.url, tokens=None)
    second = make_client(sim.url + "/", tokens=None)
    push(first, "254700000050")
    push(second, "254700000051")
    assert sim.stats()["oauth"] == 1
    assert shared_token_cache(sim.url, KEY) is shared_token_cache(sim.url + "/", KEY)
    assert shared_token_cache(sim.url, KEY) is not shared_token_cache(sim.url, "other")


def test_concurrent_callers_fetch_one_token(sim: DarajaSimulator) -> None:
    client = make_client(sim.url)
    checkout_id = push(make_client(sim.url), PENDING_PHONE).checkout_request_id
    oauth_before = sim.stats()["oauth"]
    threads = [threading.Thread(target=client.stk_query, args=(checkout_id,))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sim.stats()["oauth"] - oauth_before == 1
    assert sim.stats()["stkquery"] == 8


def test_token_cache_single_fetch_under_contention() -> None:
    cache, calls = TokenCache(), []

    def slow_fetch() -> tuple[str, float]:
        calls.append(1)
        time.sleep(0.05)
        return "token", 3599

    threads = [threading.Thread(target=cache.get, args=(slow_fetch,)) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


def test_expires_in_as_number_is_accepted(recorder: Recorder) -> None:
    tokens = TokenCache()
    client = make_client(recorder.served.url, tokens=tokens)
    push(client)
    assert 3590 < (tokens.seconds_left() or 0) <= 3599
    recorder.token_reply = {"access_token": "tok-2", "expires_in": "3599"}
    client.check_credentials()
    assert 3590 < (tokens.seconds_left() or 0) <= 3599


def test_token_refreshed_when_less_than_60_seconds_left(sim: DarajaSimulator) -> None:
    clock = [1000.0]
    client = make_client(sim.url, tokens=TokenCache(clock=lambda: clock[0]))
    checkout_id = push(client).checkout_request_id
    clock[0] += 3599 - 61
    client.stk_query(checkout_id)
    assert sim.stats()["oauth"] == 1
    clock[0] += 2  # 59 s left
    client.stk_query(checkout_id)
    assert sim.stats()["oauth"] == 2


def test_invalid_token_is_refetched_once_and_call_retried(sim: DarajaSimulator) -> None:
    client = make_client(sim.url)
    push(client, "254700000050")
    sim.faults.invalidate_tokens()
    accepted = push(client, "254700000051")
    assert accepted.checkout_request_id.startswith("ws_CO_")
    assert sim.stats() == {"oauth": 2, "stkpush": 3, "stkquery": 0}


def test_token_rejected_twice_raises_after_one_retry() -> None:
    sim = make_simulator(token_ttl=0)  # every token is expired as soon as it is issued
    sim.start()
    try:
        with pytest.raises(DarajaApiError) as info:
            push(make_client(sim.url))
        assert info.value.error_code == "404.001.03"
        assert sim.stats() == {"oauth": 2, "stkpush": 2, "stkquery": 0}
    finally:
        sim.stop()


def test_bad_credentials_raise_auth_error(sim: DarajaSimulator) -> None:
    client = make_client(sim.url, consumer_secret="wrong")
    with pytest.raises(DarajaAuthError) as info:
        client.check_credentials()
    assert info.value.http_status == 400
    assert info.value.error_code == "400.008.01"


def test_check_credentials_succeeds(sim: DarajaSimulator) -> None:
    make_client(sim.url).check_credentials()
    assert sim.stats()["oauth"] == 1


# -- request bodies ---------------------------------------------------------------------------

def test_paybill_push_body(recorder: Recorder) -> None:
    client = make_client(recorder.served.url, now=lambda: FIXED_NOW)
    push(client, "0712 345 678", amount=20, account_reference="WIFI-ACCOUNT-LONG",
         description="Hotspot internet time")
    oauth, sent = recorder.requests
    assert oauth["args"] == {"grant_type": "client_credentials"}
    assert oauth["auth"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert sent["auth"] == "Bearer tok-123"
    body = sent["json"]
    assert body["Timestamp"] == "20240305170709"
    assert base64.b64decode(body["Password"]).decode() == SHORTCODE + PASSKEY + "20240305170709"
    assert body | {"Password": "", "Timestamp": ""} == {
        "BusinessShortCode": SHORTCODE, "Password": "", "Timestamp": "",
        "TransactionType": "CustomerPayBillOnline", "Amount": 20,
        "PartyA": "254712345678", "PartyB": SHORTCODE, "PhoneNumber": "254712345678",
        "CallBackURL": "http://127.0.0.1:9/cb", "AccountReference": "WIFI-ACCOUNT",
        "TransactionDesc": "Hotspot inter",
    }


def test_till_push_body(recorder: Recorder) -> None:
    client = make_client(recorder.served.url, transaction_type="till", till_number=TILL)
    push(client, "+254 112-345-678")
    body = recorder.requests[-1]["json"]
    assert body["TransactionType"] == "CustomerBuyGoodsOnline"
    assert body["BusinessShortCode"] == SHORTCODE
    assert body["PartyB"] == TILL
    assert body["PartyA"] == body["PhoneNumber"] == "254112345678"


def test_timestamp_is_nairobi_time() -> None:
    assert daraja_timestamp(datetime(2024, 1, 1, 21, 30, tzinfo=UTC)) == "20240102003000"


def test_bad_phone_raises_before_any_request(sim: DarajaSimulator) -> None:
    with pytest.raises(InvalidPhoneNumber):
        push(make_client(sim.url), "0812 345 678")
    assert sim.stats() == {"oauth": 0, "stkpush": 0, "stkquery": 0}


def test_bad_amount_raises_before_any_request(sim: DarajaSimulator) -> None:
    for amount in (0, -5, 10.5, True):
        with pytest.raises(ValueError):
            push(make_client(sim.url), amount=amount)
    assert sim.stats()["oauth"] == 0


def test_till_needs_a_till_number() -> None:
    with pytest.raises(ValueError):
        make_client("http://127.0.0.1:9", transaction_type="till")


# -- STK query --------------------------------------------------------------------------------

def test_query_pending_then_final(sim: DarajaSimulator) -> None:
    client = make_client(sim.url)
    checkout_id = push(client).checkout_request_id
    pending = client.stk_query(checkout_id)
    assert pending.pending and pending.result_code is None
    sim.resolve(checkout_id, "cancel")
    final = client.stk_query(checkout_id)
    assert not final.pending
    assert final.result_code == "1032"
    assert final.result_desc == "Request cancelled by user"
    assert final.checkout_request_id == checkout_id


def test_query_result_code_as_number(recorder: Recorder) -> None:
    client = make_client(recorder.served.url)
    result = client.stk_query("ws_CO_1")
    assert result.pending is False and result.result_code == "0"


def test_query_other_500_001_1001_is_an_error(recorder: Recorder) -> None:
    recorder.query_reply = ({"requestId": "1", "errorCode": "500.001.1001",
                             "errorMessage": "Wrong credentials"}, 500)
    with pytest.raises(DarajaApiError):
        make_client(recorder.served.url).stk_query("ws_CO_1")


def test_non_json_error_is_a_protocol_error(recorder: Recorder) -> None:
    recorder.query_reply = ("<html>Bad gateway</html>", 502)
    with pytest.raises(DarajaProtocolError) as info:
        make_client(recorder.served.url).stk_query("ws_CO_1")
    assert info.value.http_status == 502


# -- errors -----------------------------------------------------------------------------------

def test_validation_error_becomes_api_error(sim: DarajaSimulator) -> None:
    with pytest.raises(DarajaApiError) as info:
        push(make_client(sim.url), callback_url="not-a-url")
    err = info.value
    assert (err.http_status, err.error_code) == (400, "400.002.02")
    assert err.error_message == "Bad Request - Invalid CallBackURL"
    assert err.request_id and is_invalid_field(err)


def test_spike_arrest(sim: DarajaSimulator) -> None:
    client = make_client(sim.url)
    sim.faults.spike_arrest_next = 1
    with pytest.raises(DarajaApiError) as info:
        push(client)
    assert is_spike_arrest(info.value) and info.value.http_status == 500
    assert push(client).checkout_request_id


def test_subscriber_locked(sim: DarajaSimulator) -> None:
    client = make_client(sim.url)
    push(client)
    with pytest.raises(DarajaApiError) as info:
        push(client)
    assert is_subscriber_locked(info.value)
    assert not is_spike_arrest(info.value)


def test_hanging_push_raises_timeout_but_reached_the_phone(sim: DarajaSimulator) -> None:
    sim.faults.timeout_next = 1
    sim.faults.hang_seconds = 3.0
    client = make_client(sim.url, timeout=0.5)
    client.check_credentials()
    started = time.monotonic()
    with pytest.raises(DarajaTimeout):
        push(client)
    assert time.monotonic() - started < 2.0
    assert [p["phone"] for p in sim.prompts()] == [PENDING_PHONE]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_unreachable() -> None:
    client = make_client(f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(DarajaUnreachable):
        client.check_credentials()
    with pytest.raises(DarajaUnreachable):
        push(client)


def test_secrets_never_logged(sim: DarajaSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = TokenCache()
    client = make_client(sim.url, tokens=tokens)
    checkout_id = push(client).checkout_request_id
    client.stk_query(checkout_id)
    token = tokens.get(lambda: ("unused", 0))
    assert caplog.records
    for secret in (SECRET, PASSKEY, token, PENDING_PHONE):
        assert secret not in caplog.text
    assert "DarajaClient" in repr(client) and SECRET not in repr(client)
