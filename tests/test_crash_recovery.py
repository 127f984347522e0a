"""Invariant 7: a crash at any instant loses no committed payment and double-grants nothing.

Each test runs the real daemon (`hotspotd run`) as a subprocess against a Daraja simulator
in the test process, arms a failpoint (`HOTSPOTD_FAILPOINTS`) that makes the daemon
`os._exit(86)` at one instant of a purchase, checks the database file as the crash left it,
then restarts the daemon on the same data directory and checks how it recovers.

The customer is a phone on the daemon's simulated WiFi (its own loopback address, listed in
the router's host table): the daemon places each of its requests by that address, so the
purchase is for the phone's MAC and the router login is at the phone's address. The phone
joins again after each restart (the simulator inside the daemon forgets its hosts).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import routeros_api
from support.daemon import Daemon
from support.mpesa import accepted, buy
from support.phones import daemon_phone
from support.wait import wait_until

from hotspotd.failpoints import EXIT_CODE
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.daraja.callbacks import callback_body
from hotspotd.simulators.daraja.state import SANDBOX_TEST_MSISDN, Prompt
from hotspotd.simulators.phones import SimulatedPhone

FAILPOINTS = "HOTSPOTD_FAILPOINTS"
APPROVING_PHONE = SANDBOX_TEST_MSISDN  # approves by itself after the simulator's approve_delay
WAITING_PHONE = "254700000050"  # no automatic answer: waits for resolve()
MAC = "AA:BB:CC:00:00:01"
PLAN_SECONDS = 3600
PLAN_PRICE = 20
SETTLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str
    passkey: str
    shortcode: str = "174379"


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(secrets.token_urlsafe(12), secrets.token_urlsafe(24),
                       secrets.token_hex(32))


@pytest.fixture
def daraja(credentials: Credentials) -> Iterator[DarajaSimulator]:
    simulator = DarajaSimulator(consumer_key=credentials.consumer_key,
                                consumer_secret=credentials.consumer_secret,
                                shortcode=credentials.shortcode, passkey=credentials.passkey,
                                approve_delay=0.5, auto_resolve_delay=0.5)
    simulator.start()
    yield simulator
    simulator.stop()


def daemon_for(data_dir: Any, daraja: DarajaSimulator, credentials: Credentials,
               **settlement: Any) -> Daemon:
    """The daemon, talking to the test's Daraja simulator over HTTP like the real Daraja."""
    return Daemon(data_dir, {
        "daraja": {"backend": "daraja", "base_url": daraja.url,
                   "consumer_key": credentials.consumer_key,
                   "consumer_secret": credentials.consumer_secret,
                   "passkey": credentials.passkey, "shortcode": credentials.shortcode},
        "settlement": settlement,
    })


@pytest.fixture
def daemon(tmp_path: Any, daraja: DarajaSimulator,
           credentials: Credentials) -> Iterator[Daemon]:
    with daemon_for(tmp_path / "data", daraja, credentials) as running:
        yield running


# --- helpers --------------------------------------------------------------------------


def customer(daemon: Daemon) -> SimulatedPhone:
    """The phone with MAC on the running daemon's WiFi (joins again after a restart)."""
    return daemon_phone(daemon, MAC)


def read(daemon: Daemon, path: str) -> dict[str, Any]:
    """GET `path` (JSON) from the customer's phone."""
    response = customer(daemon).get(daemon.url(path), timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_status(daemon: Daemon, public_id: str, status: str) -> dict[str, Any]:
    phone = customer(daemon)

    def current() -> dict[str, Any] | None:
        view = phone.get(daemon.url(f"/api/purchases/{public_id}"), timeout=10).json()
        return view if view["status"] == status else None

    return wait_until(current, timeout=SETTLE_TIMEOUT, interval=0.1,
                      message=f"purchase {public_id} to be {status}")


def only(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(rows) == 1, rows
    return rows[0]


def payment_row(daemon: Daemon, payment_id: int = 1) -> dict[str, Any]:
    return only(daemon.query("SELECT * FROM payments WHERE id = ?", (payment_id,)))


def grants(daemon: Daemon) -> list[dict[str, Any]]:
    return daemon.query("SELECT * FROM grants ORDER BY id")


def event_kinds(daemon: Daemon, payment_id: int) -> list[str]:
    rows = daemon.query("SELECT kind FROM events WHERE payment_id = ? ORDER BY id",
                        (payment_id,))
    return [row["kind"] for row in rows]


def router_active_hosts(daemon: Daemon) -> list[dict[str, str]]:
    """`/ip/hotspot/active` read with routeros_api at the address runtime.json gives."""
    router = daemon.runtime["router"]
    pool = routeros_api.RouterOsApiPool(router["api_host"], username=router["user"],
                                        password=router["password"], port=router["api_port"],
                                        plaintext_login=True)
    try:
        return list(pool.get_api().get_resource("/ip/hotspot/active").get())
    finally:
        pool.disconnect()


def crash_at(daemon: Daemon, failpoint: str) -> None:
    daemon.start(env={FAILPOINTS: failpoint})
    assert f"failpoints armed: {failpoint}" in daemon.log_text()


def assert_crashed_at(daemon: Daemon, failpoint: str) -> None:
    assert daemon.wait_exit(SETTLE_TIMEOUT) == EXIT_CODE, daemon.log_tail()
    assert f"failpoint {failpoint} reached" in daemon.log_text()


# --- the tests --------------------------------------------------------------------------


def test_killed_after_payment_stored_before_push_sent(
        daemon: Daemon, daraja: DarajaSimulator) -> None:
    plan_id = daemon.seed_plan(price=PLAN_PRICE, duration_seconds=PLAN_SECONDS)
    crash_at(daemon, "payment.stored")

    with pytest.raises(requests.ConnectionError):
        customer(daemon).post(daemon.url("/api/purchases"), timeout=10,
                              json={"plan_id": plan_id, "phone": APPROVING_PHONE})
    assert_crashed_at(daemon, "payment.stored")

    # Invariant 1: the row was committed before any push; the push never left.
    stored = payment_row(daemon)
    assert (stored["status"], stored["push_state"]) == ("pending", "sending")
    assert stored["checkout_request_id"] is None
    assert daraja.prompts() == []
    assert daraja.stats()["stkpush"] == 0

    daemon.start()
    closed = payment_row(daemon)
    assert closed["status"] == "failed"
    assert closed["result_code"] == "HOTSPOTD_INTERRUPTED"
    assert closed["result_desc"] and closed["settled_by"] == "restart"
    assert (closed["public_id"], closed["amount"], closed["mac"], closed["phone"]) == (
        stored["public_id"], PLAN_PRICE, MAC, APPROVING_PHONE)
    assert event_kinds(daemon, 1) == ["payment.created", "payment.expired"]
    assert grants(daemon) == []
    assert "1 payment(s) interrupted" in daemon.log_text()
    view = read(daemon, f"/api/purchases/{stored['public_id']}")
    assert (view["status"], view["result_code"]) == ("failed", "HOTSPOTD_INTERRUPTED")

    # The device is not stuck: a new purchase goes through, once.
    public_id = accepted(buy(daemon.portal_url, APPROVING_PHONE, customer(daemon), plan_id))
    done = wait_for_status(daemon, public_id, "completed")
    assert PLAN_SECONDS - 10 <= done["seconds_remaining"] <= PLAN_SECONDS
    granted = only(grants(daemon))
    assert granted["payment_id"] == only(daemon.query(
        "SELECT id FROM payments WHERE public_id = ?", (public_id,)))["id"]
    assert len(daraja.prompts()) == 1
    assert payment_row(daemon)["status"] == "failed"  # the interrupted one stays as it was


def test_killed_after_push_sent_before_it_is_recorded_still_grants_once(
        daemon: Daemon, daraja: DarajaSimulator) -> None:
    plan_id = daemon.seed_plan(price=PLAN_PRICE, duration_seconds=PLAN_SECONDS)
    crash_at(daemon, "push.sent")
    with pytest.raises(requests.ConnectionError):
        customer(daemon).post(daemon.url("/api/purchases"), timeout=10,
                              json={"plan_id": plan_id, "phone": WAITING_PHONE})
    assert_crashed_at(daemon, "push.sent")

    prompt = only(daraja.prompts())  # the prompt reached the phone...
    stored = payment_row(daemon)  # ...but its CheckoutRequestID was never recorded
    assert (stored["status"], stored["push_state"]) == ("pending", "sending")
    assert stored["checkout_request_id"] is None

    daemon.start()
    assert payment_row(daemon)["result_code"] == "HOTSPOTD_INTERRUPTED"

    # The customer approves anyway. Daraja's callback goes to the daemon's (stable, in
    # production) callback URL; here the restarted daemon has a new port, so the test
    # delivers the body itself.
    daraja.faults.drop_callbacks = True
    daraja.resolve(prompt["checkout_request_id"], "approve")
    prompt = only(daraja.prompts())
    answer = daemon.session.post(daemon.callback_url(), json=callback_body(Prompt(**prompt)),
                                 timeout=10)
    assert answer.status_code == 200

    # Not lost: the callback's unknown CheckoutRequestID, phone and amount match the one
    # interrupted payment, which adopts it, completes with M-Pesa's receipt and grants once
    # (once STK Query has confirmed the callback: its source is not allow-listed).
    settled = wait_until(lambda: (row := payment_row(daemon))["status"] == "completed" and row,
                         message="the confirmed callback to complete the payment")
    assert (settled["status"], settled["result_code"]) == ("completed", "0")
    assert settled["checkout_request_id"] == prompt["checkout_request_id"]
    assert settled["receipt"] == prompt["receipt"]
    assert len(grants(daemon)) == 1
    assert daemon.query("SELECT * FROM unmatched_payments") == []
    # A replay changes nothing.
    daemon.session.post(daemon.callback_url(), json=callback_body(Prompt(**prompt)), timeout=10)
    assert len(grants(daemon)) == 1


def test_unknown_callback_that_matches_no_payment_is_held(daemon: Daemon,
                                                          daraja: DarajaSimulator) -> None:
    daemon.config["daraja"]["callback_allowlist"] = ["127.0.0.1"]  # a trusted source
    daemon.start()
    body = {"Body": {"stkCallback": {
        "MerchantRequestID": "1-2-3", "CheckoutRequestID": "ws_CO_000000000000000000",
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 7}, {"Name": "MpesaReceiptNumber", "Value": "UNK1234567"},
            {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261128101010},
            {"Name": "PhoneNumber", "Value": 254711223344}]}}}}
    assert daemon.session.post(daemon.callback_url(), json=body, timeout=10).status_code == 200
    held = only(daemon.query("SELECT * FROM unmatched_payments"))
    assert (held["receipt"], held["amount"], held["phone"]) == ("UNK1234567", 7, "254711223344")
    assert held["reference"] == "ws_CO_000000000000000000" and held["reason"]
    assert grants(daemon) == []


def test_killed_after_callback_received_before_it_is_applied(
        tmp_path: Any, daraja: DarajaSimulator, credentials: Credentials) -> None:
    # No inline query, and the first reconciler query 2 s after the push: the callback
    # (0.5 s after the push) must be the first to bring the result.
    with daemon_for(tmp_path / "data", daraja, credentials, inline_query_delays=[],
                    query_backoff_seconds=[2.0, 0.5]) as daemon:
        plan_id = daemon.seed_plan(price=PLAN_PRICE, duration_seconds=PLAN_SECONDS)
        crash_at(daemon, "callback.received")
        public_id = accepted(buy(daemon.portal_url, APPROVING_PHONE, customer(daemon), plan_id))
        assert_crashed_at(daemon, "callback.received")

        prompt = only(daraja.prompts())
        assert prompt["result_code"] == 0 and prompt["receipt"]
        wait_until(lambda: only(daraja.prompts())["callbacks_failed"] == 1,
                   message="the simulator to see its callback fail")
        stored = payment_row(daemon)
        assert (stored["status"], stored["push_state"]) == ("pending", "sent")
        assert stored["checkout_request_id"] == prompt["checkout_request_id"]
        assert grants(daemon) == []

        # After the restart STK Query, not the lost callback, settles the payment.
        daemon.start()
        done = wait_for_status(daemon, public_id, "completed")
        settled = payment_row(daemon)
        assert (settled["settled_by"], settled["result_code"]) == ("query", "0")
        granted = only(grants(daemon))
        assert (granted["payment_id"], granted["seconds"]) == (1, PLAN_SECONDS)
        assert PLAN_SECONDS - 10 <= done["seconds_remaining"] <= PLAN_SECONDS
        device = read(daemon, f"/api/devices/{MAC}")
        assert PLAN_SECONDS - 10 <= device["seconds_remaining"] <= PLAN_SECONDS

        # Daraja's callback arriving late (twice) grants nothing more; it brings the receipt.
        callback_url = daemon.callback_url()
        assert urlsplit(prompt["callback_url"]).path == urlsplit(callback_url).path
        body = callback_body(Prompt(**prompt))
        for _ in range(2):
            answer = daemon.session.post(callback_url, json=body, timeout=10)
            assert answer.status_code == 200
            assert answer.json()["ResultCode"] == 0
        granted = only(grants(daemon))
        assert granted["receipt"] == prompt["receipt"]
        assert payment_row(daemon)["receipt"] == prompt["receipt"]
        assert read(daemon, f"/api/purchases/{public_id}")["receipt"] == prompt["receipt"]
        assert event_kinds(daemon, 1).count("grant.created") == 1
        assert daemon.query("SELECT * FROM unmatched_payments") == []


def test_killed_after_grant_committed_before_router_told(
        daemon: Daemon, daraja: DarajaSimulator) -> None:
    plan_id = daemon.seed_plan(price=PLAN_PRICE, duration_seconds=PLAN_SECONDS)
    crash_at(daemon, "grant.committed")
    public_id = accepted(buy(daemon.portal_url, APPROVING_PHONE, customer(daemon), plan_id))
    assert_crashed_at(daemon, "grant.committed")

    assert payment_row(daemon)["status"] == "completed"
    assert only(grants(daemon))["payment_id"] == 1
    queued = only(daemon.query("SELECT * FROM router_ops"))
    assert (queued["action"], queued["state"], queued["mac"]) == ("login", "pending", MAC)

    # The outbox finishes the job after the restart: the device is logged in, once.
    daemon.start()
    address = customer(daemon).address  # the phone is still on the WiFi
    wait_until(lambda: daemon.query("SELECT state FROM router_ops") == [{"state": "done"}],
               timeout=SETTLE_TIMEOUT, message="the router login to be done")
    active = only(router_active_hosts(daemon))
    # Logged in at the address the phone's requests came from (the router's host table).
    assert (active["mac-address"], active["address"], active["user"]) == (MAC, address, MAC)
    assert read(daemon, f"/api/purchases/{public_id}")["status"] == "completed"
    assert only(grants(daemon))["payment_id"] == 1
    assert event_kinds(daemon, 1).count("grant.created") == 1
    assert len(daraja.prompts()) == 1


def test_sigterm_stops_cleanly_and_a_restart_keeps_everything(
        daemon: Daemon, daraja: DarajaSimulator) -> None:
    plan_id = daemon.seed_plan(price=PLAN_PRICE, duration_seconds=PLAN_SECONDS)
    daemon.start()
    public_id = accepted(buy(daemon.portal_url, APPROVING_PHONE, customer(daemon), plan_id))
    before = wait_for_status(daemon, public_id, "completed")
    token = daemon.generated_secrets()["web.callback_token"]
    tables = ("plans", "payments", "grants", "entitlements", "events")
    counts = {table: daemon.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
              for table in tables}

    assert daemon.stop() == 0, daemon.log_tail()
    assert "hotspotd stopped" in daemon.log_text()

    daemon.start()
    plans = customer(daemon).get(daemon.url("/api/plans"), timeout=10).json()
    assert [(plan["id"], plan["price"], plan["duration_seconds"]) for plan in plans] == [
        (plan_id, PLAN_PRICE, PLAN_SECONDS)]
    after = read(daemon, f"/api/purchases/{public_id}")
    assert (after["status"], after["receipt"]) == ("completed", before["receipt"])
    assert 0 < after["seconds_remaining"] <= before["seconds_remaining"]
    assert only(grants(daemon))["payment_id"] == 1
    assert daemon.generated_secrets()["web.callback_token"] == token
    assert daemon.query("SELECT COUNT(*) AS n FROM payments")[0]["n"] == counts["payments"]
    for table in ("plans", "grants", "entitlements"):
        assert daemon.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] == counts[table]
    assert "interrupted" not in daemon.log_text()
    assert daemon.stop() == 0, daemon.log_tail()
