"""The payment state machine and the purchase flow (money invariants 1, 2, 3 and 6)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from hotspotd.daraja.client import StkPushAccepted, StkQueryResult
from hotspotd.daraja.errors import (
    DarajaApiError,
    DarajaProtocolError,
    DarajaTimeout,
    DarajaUnreachable,
)
from hotspotd.ledger import payments
from hotspotd.ledger.errors import PaymentNotSent
from hotspotd.mpesa.channel_clients import ChannelClients
from hotspotd.mpesa.purchases import PurchaseService, SettlementPolicy
from hotspotd.mpesa.push_limits import PushGuard, PushLimits
from hotspotd.store.db import Database

MAC = "AA:BB:CC:DD:EE:01"
PHONE = "254708374149"
RECEIPT = "QKJ1ABC2DE"
# These tests are about settlement, not the abuse limits (tests/test_hostile_prompts.py):
# a guard that admits everything a test starts.
NO_LIMITS = PushLimits(per_device=10_000, per_phone=10_000, cancel_limit=10_000,
                       open_per_device=10_000, line_max=10_000)
POLICY = SettlementPolicy(inline_query_delays=(2.0, 4.0),
                          query_backoff=(3.0, 5.0, 10.0, 20.0, 30.0), pending_expiry=180.0)

PENDING = StkQueryResult(pending=True, result_code=None,
                         result_desc="The transaction is being processed")


def final(code: str, desc: str = "") -> StkQueryResult:
    return StkQueryResult(pending=False, result_code=code, result_desc=desc or f"code {code}")


class FakeStk:
    """A scripted StkGateway: records pushes and answers queries from a per-checkout script."""

    shortcode = "174379"

    def __init__(self) -> None:
        self.pushes: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self.push_error: Exception | None = None
        self.before_push = lambda kwargs: None
        self.answers: dict[str, list[Any]] = {}

    def stk_push(self, **kwargs: Any) -> StkPushAccepted:
        self.pushes.append(kwargs)
        self.before_push(kwargs)
        if self.push_error is not None:
            raise self.push_error
        number = len(self.pushes)
        return StkPushAccepted(f"mr-{number}", f"ws_CO_{number}", "Success", "Success")

    def stk_query(self, checkout_request_id: str, *,
                  max_wait: float | None = None) -> StkQueryResult:
        self.queries.append(checkout_request_id)
        script = self.answers.get(checkout_request_id) or [PENDING]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def plan(make_plan):
    return make_plan(price=20, duration_seconds=3600, rate_limit="2M/5M")


@pytest.fixture
def stk() -> FakeStk:
    return FakeStk()


@pytest.fixture
def scheduled() -> list[tuple[float, Any]]:
    return []


def only_channel(db: Database, stk: Any) -> ChannelClients:
    """The configured Daraja account alone (no stored channels, so no key is read)."""
    return ChannelClients(db, stk, default_token="secret", callback_base="https://example.test",
                          key_file=Path("/nonexistent/secret.key"))


@pytest.fixture
def service(db, stk, clock, scheduled) -> PurchaseService:
    def schedule(delay: float, job: Any) -> None:
        scheduled.append((delay, job))

    return PurchaseService(db, stk, channels=only_channel(db, stk), policy=POLICY,
                           schedule=schedule, now=clock, guard=PushGuard(db, NO_LIMITS, clock),
                           on_grant=lambda: None, on_queued=lambda: None)


def sent_payment(db, plan, clock, checkout_id: str = "ws_CO_1", mac: str = MAC):
    """A pending payment whose push Daraja accepted."""
    payment = payments.create_payment(db, plan=plan, phone=PHONE, mac=mac, ip="10.5.50.7",
                                      now=clock())
    payments.record_push_accepted(db, payment.id, merchant_request_id="mr",
                                  checkout_request_id=checkout_id, now=clock(),
                                  next_query_at=clock() + 10)
    return payment


def apply(db, clock, checkout_id="ws_CO_1", code: object = 0, *, source="callback",
          receipt: str | None = None, paid_amount: int | None = None):
    return payments.apply_result(db, checkout_request_id=checkout_id, result_code=code,
                                 result_desc=f"desc {code}", source=source, now=clock(),
                                 receipt=receipt, paid_amount=paid_amount)


def grants_of(db, payment_id: int) -> list[sqlite3.Row]:
    return db.query("SELECT * FROM grants WHERE payment_id = ?", (payment_id,))


def row(db, payment_id: int) -> sqlite3.Row:
    return db.query_one("SELECT * FROM payments WHERE id = ?", (payment_id,))


def event_kinds(db, payment_id: int) -> list[str]:
    return [r["kind"] for r in db.query("SELECT kind FROM events WHERE payment_id = ?"
                                        " ORDER BY id", (payment_id,))]


# --- creation and invariant 1 --------------------------------------------------------------


def test_create_stores_a_pending_payment_with_push_state_sending(db, plan, clock):
    payment = payments.create_payment(db, plan=plan, phone=PHONE, mac=MAC, ip="10.5.50.7",
                                      now=clock())
    assert (payment.status, payment.push_state) == ("pending", "sending")
    assert payment.amount == plan.price
    assert payment.checkout_request_id is None
    assert db.query_one("SELECT mac FROM devices WHERE mac = ?", (MAC,)) is not None
    assert event_kinds(db, payment.id) == ["payment.created"]


def test_payment_row_is_committed_before_the_push_is_sent(db, plan, stk, service):
    seen: list[tuple[str, ...] | None] = []

    def read_from_another_thread(kwargs: dict[str, Any]) -> None:
        def read() -> None:
            other = sqlite3.connect(db.path)
            try:
                seen.append(other.execute(
                    "SELECT status, push_state, phone, mac, amount FROM payments").fetchone())
            finally:
                other.close()

        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
        assert seen[-1] is not None, "STK push sent before its payment row was committed"

    stk.before_push = read_from_another_thread
    payment = service.start_purchase(plan_id=plan.id, phone="0708374149",
                                     mac="aa-bb-cc-dd-ee-01", ip="10.5.50.7")
    assert seen == [("pending", "sending", PHONE, MAC, plan.price)]
    assert len(stk.pushes) == 1
    assert stk.pushes[0]["phone"] == PHONE and stk.pushes[0]["amount"] == plan.price
    assert (payment.push_state, payment.checkout_request_id) == ("sent", "ws_CO_1")


def test_accepted_push_schedules_inline_queries_and_a_first_reconcile(db, plan, service,
                                                                      scheduled, clock):
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    assert [delay for delay, _ in scheduled] == [2.0, 4.0]
    assert row(db, payment.id)["next_query_at"] == clock() + 4.0 + 3.0


# --- result codes ----------------------------------------------------------------------------


@pytest.mark.parametrize("code, status, stored", [
    (0, "completed", "0"),
    ("0", "completed", "0"),
    (1032, "cancelled", "1032"),
    ("1032", "cancelled", "1032"),
    (1037, "expired", "1037"),
    (1019, "expired", "1019"),
    (2001, "failed", "2001"),
    (1, "failed", "1"),
    ("SFC_IC0003", "failed", "SFC_IC0003"),
    (424242, "failed", "424242"),
    ("NOT_A_KNOWN_CODE", "failed", "NOT_A_KNOWN_CODE"),
])
def test_result_code_sets_the_status_from_the_reference_table(db, plan, clock, code, status,
                                                              stored):
    payment = sent_payment(db, plan, clock)
    settlement = apply(db, clock, code=code, source="query")
    assert settlement.outcome == "settled"
    stored_row = row(db, payment.id)
    assert stored_row["status"] == status
    assert stored_row["result_code"] == stored
    assert stored_row["result_desc"] == f"desc {code}"
    assert stored_row["settled_by"] == "query"
    assert len(grants_of(db, payment.id)) == (1 if status == "completed" else 0)


def test_result_for_an_unknown_checkout_id_changes_nothing(db, plan, clock):
    sent_payment(db, plan, clock)
    assert apply(db, clock, "ws_CO_nobody", 0, receipt=RECEIPT).outcome == "unknown"
    assert db.query_one("SELECT COUNT(*) FROM grants")[0] == 0


# --- invariant 2: one grant however many reports -----------------------------------------


def test_duplicate_callbacks_and_query_grant_once(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    first = apply(db, clock, code=0, receipt=RECEIPT, paid_amount=20)
    assert first.outcome == "settled" and first.grant is not None
    assert apply(db, clock, code=0, receipt=RECEIPT, paid_amount=20).outcome == "duplicate"
    assert apply(db, clock, code="0", source="query").outcome == "duplicate"
    clock.advance(60)
    assert apply(db, clock, code=0, receipt=RECEIPT, paid_amount=20).outcome == "duplicate"
    assert len(grants_of(db, payment.id)) == 1
    assert db.query_one("SELECT COUNT(*) FROM router_ops")[0] == 1
    entitlement = db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?", (MAC,))
    assert entitlement["expires_at"] == first.grant.expires_at


def test_late_success_after_our_timeout_completes_and_grants_once(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    clock.advance(200)
    assert payments.expire_payment(db, payment.id, reason="no answer", now=clock())
    assert row(db, payment.id)["status"] == "expired"
    clock.advance(30)
    settlement = apply(db, clock, code=0, receipt=RECEIPT, paid_amount=20)
    assert settlement.outcome == "settled"
    assert row(db, payment.id)["status"] == "completed"
    assert row(db, payment.id)["result_code"] == "0"
    assert apply(db, clock, code=0, source="query").outcome == "duplicate"
    assert len(grants_of(db, payment.id)) == 1
    assert grants_of(db, payment.id)[0]["starts_at"] == clock()


def test_expire_does_not_touch_a_settled_payment(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    apply(db, clock, code=0, receipt=RECEIPT)
    assert not payments.expire_payment(db, payment.id, reason="late", now=clock())
    assert row(db, payment.id)["status"] == "completed"


def test_a_final_daraja_answer_is_not_overturned_by_a_different_failure(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    apply(db, clock, code=1032, source="query")
    assert apply(db, clock, code=2001).outcome == "ignored"
    assert row(db, payment.id)["status"] == "cancelled"
    assert row(db, payment.id)["result_code"] == "1032"


def test_conflicting_failure_after_completion_is_ignored_and_logged(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    apply(db, clock, code=0, receipt=RECEIPT)
    settlement = apply(db, clock, code=1032, source="query")
    assert settlement.outcome == "ignored"
    assert row(db, payment.id)["status"] == "completed"
    assert row(db, payment.id)["result_code"] == "0"
    assert len(grants_of(db, payment.id)) == 1
    conflict = db.query_one("SELECT detail FROM events WHERE kind = 'result.conflict'"
                            " AND payment_id = ?", (payment.id,))
    assert conflict is not None
    detail = json.loads(conflict["detail"])
    assert (detail["stored"], detail["reported"], detail["result_code"]) == (
        "completed", "cancelled", "1032")


def test_success_with_receipt_after_a_daraja_failure_is_held_for_the_owner(db, plan,
                                                                              clock):
    """M-Pesa said 1037 (or 1032) first, then a success callback with a receipt arrives.

    BUG: the money moved (there is a receipt) but apply_result only records a
    `result.conflict` event: no grant, and nothing in unmatched_payments, so the owner's
    "I paid but I'm not online" screen never shows it (PRODUCT: unmatched money is held,
    never lost).
    """
    payment = sent_payment(db, plan, clock)
    apply(db, clock, code=1037, source="query")
    settlement = apply(db, clock, code=0, receipt=RECEIPT, paid_amount=plan.price)
    assert settlement.outcome == "ignored"
    assert grants_of(db, payment.id) == []
    held = db.query_one("SELECT * FROM unmatched_payments WHERE receipt = ?", (RECEIPT,))
    assert held is not None, "paid money reported after a failure is neither granted nor held"
    assert held["amount"] == plan.price and held["reason"]


def test_receipt_learned_later_fills_payment_and_grant(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    apply(db, clock, code="0", source="query")
    assert grants_of(db, payment.id)[0]["receipt"] is None
    assert apply(db, clock, code=0, receipt=RECEIPT, paid_amount=20).outcome == "duplicate"
    assert row(db, payment.id)["receipt"] == RECEIPT
    assert grants_of(db, payment.id)[0]["receipt"] == RECEIPT
    assert len(grants_of(db, payment.id)) == 1
    assert "payment.receipt_learned" in event_kinds(db, payment.id)


def test_same_receipt_on_a_second_payment_grants_nothing(db, plan, clock):
    first = sent_payment(db, plan, clock, "ws_CO_1")
    second = sent_payment(db, plan, clock, "ws_CO_2", mac="AA:BB:CC:DD:EE:02")
    apply(db, clock, "ws_CO_1", 0, receipt=RECEIPT, paid_amount=20)
    settlement = apply(db, clock, "ws_CO_2", 0, receipt=RECEIPT, paid_amount=20)
    assert settlement.outcome == "ignored"
    assert grants_of(db, second.id) == []
    assert row(db, second.id)["status"] != "completed"
    assert row(db, second.id)["receipt"] is None
    assert len(grants_of(db, first.id)) == 1
    assert "result.receipt_reused" in event_kinds(db, second.id)
    assert db.query_one("SELECT COUNT(*) FROM grants WHERE receipt = ?", (RECEIPT,))[0] == 1


def test_receipt_of_another_payment_is_not_copied_onto_a_query_settled_one(db, plan, clock):
    sent_payment(db, plan, clock, "ws_CO_1")
    second = sent_payment(db, plan, clock, "ws_CO_2", mac="AA:BB:CC:DD:EE:02")
    apply(db, clock, "ws_CO_1", 0, receipt=RECEIPT)
    apply(db, clock, "ws_CO_2", 0, source="query")
    apply(db, clock, "ws_CO_2", 0, receipt=RECEIPT)
    assert row(db, second.id)["receipt"] is None
    assert grants_of(db, second.id)[0]["receipt"] is None
    assert db.query_one("SELECT COUNT(*) FROM grants WHERE receipt = ?", (RECEIPT,))[0] == 1


# --- invariant 3: underpayment is held -------------------------------------------------------


def test_amount_below_price_grants_nothing_and_is_held_with_a_reason(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    settlement = apply(db, clock, code=0, receipt=RECEIPT, paid_amount=plan.price - 1)
    assert settlement.grant is None
    assert grants_of(db, payment.id) == []
    assert db.query_one("SELECT COUNT(*) FROM entitlements")[0] == 0
    assert db.query_one("SELECT COUNT(*) FROM router_ops")[0] == 0
    held = db.query("SELECT * FROM unmatched_payments")
    assert len(held) == 1
    assert (held[0]["receipt"], held[0]["amount"], held[0]["phone"]) == (
        RECEIPT, plan.price - 1, PHONE)
    assert "19" in held[0]["reason"] and "20" in held[0]["reason"]
    assert held[0]["resolved_at"] is None
    assert "grant.held" in event_kinds(db, payment.id)
    # A repeat of the same callback neither grants nor holds the money twice.
    apply(db, clock, code=0, receipt=RECEIPT, paid_amount=plan.price - 1)
    assert grants_of(db, payment.id) == []
    assert db.query_one("SELECT COUNT(*) FROM unmatched_payments")[0] == 1


def test_amount_at_or_above_price_grants(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    apply(db, clock, code=0, receipt=RECEIPT, paid_amount=plan.price)
    assert len(grants_of(db, payment.id)) == 1
    assert db.query_one("SELECT COUNT(*) FROM unmatched_payments")[0] == 0


# --- the database enforces invariant 2 itself ---------------------------------------------


def test_unique_constraints_refuse_a_second_grant_in_raw_sql(db, plan, clock):
    payment = sent_payment(db, plan, clock)
    apply(db, clock, code=0, receipt=RECEIPT)
    other = sent_payment(db, plan, clock, "ws_CO_2")
    insert = ("INSERT INTO grants (mac, plan_id, payment_id, receipt, source, seconds,"
              " starts_at, expires_at, created_at) VALUES (?, ?, ?, ?, 'stk', 60, 0, 60, 0)")
    conn = db.connection()
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(insert, (MAC, plan.id, payment.id, "OTHERRCPT1"))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(insert, (MAC, plan.id, other.id, RECEIPT))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(insert, (MAC, plan.id, None, RECEIPT))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE payments SET receipt = ? WHERE id = ?", (RECEIPT, other.id))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE payments SET checkout_request_id = 'ws_CO_1' WHERE id = ?",
                     (other.id,))
    assert db.query_one("SELECT COUNT(*) FROM grants")[0] == 1


# --- restart recovery ------------------------------------------------------------------------


def test_fail_interrupted_pushes_closes_sending_rows_as_failed(db, plan, clock, service):
    interrupted = payments.create_payment(db, plan=plan, phone=PHONE, mac=MAC, ip=None,
                                          now=clock())
    sent = sent_payment(db, plan, clock, "ws_CO_9")
    clock.advance(5)
    assert service.recover_after_restart() == 1
    closed = row(db, interrupted.id)
    assert closed["status"] == "failed"
    assert closed["result_code"] == payments.INTERRUPTED_CODE == "HOTSPOTD_INTERRUPTED"
    assert closed["result_desc"]
    assert closed["settled_by"] == "restart"
    assert closed["settled_at"] == clock()
    assert row(db, sent.id)["status"] == "pending"
    assert payments.fail_interrupted_pushes(db, clock()) == 0


# --- reconciliation (invariant 6) ------------------------------------------------------------


def test_reconcile_backs_off_while_pending_then_settles(db, plan, stk, service, clock):
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    checkout = payment.checkout_request_id
    stk.answers[checkout] = [PENDING, PENDING, PENDING, final("0")]
    created = clock()
    next_at = row(db, payment.id)["next_query_at"]
    assert next_at == created + 7.0

    clock.now = next_at - 0.5
    service.reconcile()
    assert stk.queries == []  # not due yet

    gaps = []
    for _ in range(3):
        clock.now = row(db, payment.id)["next_query_at"]
        service.reconcile()
        current = row(db, payment.id)
        assert current["status"] == "pending"
        gaps.append(current["next_query_at"] - clock())
    assert gaps == [3.0, 5.0, 10.0]
    assert row(db, payment.id)["query_count"] == 3

    clock.now = row(db, payment.id)["next_query_at"]
    service.reconcile()
    settled = row(db, payment.id)
    assert (settled["status"], settled["settled_by"]) == ("completed", "query")
    assert len(grants_of(db, payment.id)) == 1
    assert stk.queries == [checkout] * 4
    service.reconcile()  # settled payments are not queried again
    assert len(stk.queries) == 4


def test_reconcile_backoff_stops_growing_at_the_last_step(db, plan, service, clock):
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    gaps = []
    for _ in range(7):
        clock.now = row(db, payment.id)["next_query_at"]
        service.reconcile()
        gaps.append(row(db, payment.id)["next_query_at"] - clock())
    assert gaps == [3.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0]


def test_reconcile_applies_a_final_failure(db, plan, stk, service, clock):
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    stk.answers[payment.checkout_request_id] = [final("1032", "Request cancelled by user")]
    clock.now = row(db, payment.id)["next_query_at"]
    service.reconcile()
    settled = row(db, payment.id)
    assert (settled["status"], settled["result_code"], settled["result_desc"]) == (
        "cancelled", "1032", "Request cancelled by user")
    assert grants_of(db, payment.id) == []


def test_reconcile_expires_a_payment_without_answer(db, plan, stk, service, clock):
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    created = clock()
    while clock() <= created + POLICY.pending_expiry:
        clock.advance(15)
        service.reconcile()
        if clock() <= created + POLICY.pending_expiry:
            assert row(db, payment.id)["status"] == "pending"
    expired = row(db, payment.id)
    assert expired["status"] == "expired"
    assert expired["result_code"] == payments.TIMEOUT_CODE
    assert "180" in expired["result_desc"]
    assert expired["settled_by"] == "timeout"
    assert stk.queries  # it was asked about before giving up
    assert "payment.expired" in event_kinds(db, payment.id)


def test_query_error_keeps_the_payment_pending_and_reschedules(db, plan, stk, service, clock):
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    stk.answers[payment.checkout_request_id] = [DarajaTimeout("read timed out")]
    clock.now = row(db, payment.id)["next_query_at"]
    assert service.query_payment(payment.id) is None
    after = row(db, payment.id)
    assert after["status"] == "pending"
    assert after["query_count"] == 1
    assert after["next_query_at"] == clock() + 3.0


def test_inline_scheduled_query_settles(db, plan, stk, service, scheduled, clock):
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    stk.answers[payment.checkout_request_id] = [final("0")]
    clock.advance(2)
    scheduled[0][1]()
    assert row(db, payment.id)["status"] == "completed"
    scheduled[1][1]()  # the second inline query finds it settled and asks nothing
    assert len(stk.queries) == 1


# --- push errors ---------------------------------------------------------------------------


def test_push_refused_by_daraja_fails_the_payment_with_a_customer_message(db, plan, stk,
                                                                          service, scheduled):
    stk.push_error = DarajaApiError(
        500, "500.001.1001", "Unable to lock subscriber, a transaction is already in process"
        " for the current subscriber")
    with pytest.raises(PaymentNotSent) as raised:
        service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    assert "Another M-Pesa request" in raised.value.message
    stored = db.query_one("SELECT * FROM payments")
    assert (stored["status"], stored["push_state"], stored["settled_by"]) == (
        "failed", "rejected", "push")
    assert stored["result_code"] == "500.001.1001"
    assert "lock subscriber" in stored["result_desc"]
    assert scheduled == []
    assert db.query_one("SELECT COUNT(*) FROM grants")[0] == 0


def test_push_with_daraja_unreachable_fails_without_charging(db, plan, stk, service):
    stk.push_error = DarajaUnreachable("connection refused")
    with pytest.raises(PaymentNotSent):
        service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    stored = db.query_one("SELECT * FROM payments")
    assert (stored["status"], stored["push_state"]) == ("failed", "rejected")


def test_unreadable_push_reply_is_uncertain_not_failed(db, plan, stk, service):
    """An STK push whose reply we cannot read may still have reached the phone.

    BUG: PurchaseService._push treats DarajaProtocolError (HTML from a proxy, a 200 without
    CheckoutRequestID) like a refusal: the payment is stored `failed`/`rejected` ("nothing
    was charged") and the customer is told to try again, although the prompt may be on the
    phone (integrators report exactly this: "Invalid remote response" and the prompt still
    arrived and was paid). A retry then charges twice.
    """
    stk.push_error = DarajaProtocolError("Daraja reply lacks CheckoutRequestID",
                                         http_status=200)
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    assert (payment.status, payment.push_state) == ("pending", "uncertain")


def test_push_timeout_leaves_the_payment_pending_uncertain_and_never_resends(
        db, plan, stk, service, scheduled, clock):
    stk.push_error = DarajaTimeout("read timed out")
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    assert (payment.status, payment.push_state) == ("pending", "uncertain")
    assert len(stk.pushes) == 1
    assert scheduled == []
    assert payments.fail_interrupted_pushes(db, clock()) == 0  # not "sending": kept
    for _ in range(20):
        clock.advance(15)
        service.reconcile()
    assert len(stk.pushes) == 1
    assert stk.queries == []  # nothing to query: no CheckoutRequestID
    assert row(db, payment.id)["status"] == "expired"  # but it still ends (invariant 6)


def test_refused_connection_is_retried_because_nothing_was_sent(db, plan, stk, clock,
                                                                scheduled):
    slept: list[float] = []

    def fail_first(kwargs: Any) -> None:
        stk.push_error = DarajaUnreachable("refused") if len(stk.pushes) == 1 else None

    stk.before_push = fail_first
    service = PurchaseService(db, stk, channels=only_channel(db, stk), policy=POLICY,
                              schedule=lambda d, j: scheduled.append((d, j)),
                              now=clock, sleep=slept.append,
                              guard=PushGuard(db, NO_LIMITS, clock),
                              on_grant=lambda: None, on_queued=lambda: None)
    payment = service.start_purchase(plan_id=plan.id, phone=PHONE, mac=MAC, ip=None)
    assert (payment.status, payment.push_state) == ("pending", "sent")
    assert len(stk.pushes) == 2 and slept == [POLICY.push_retry_delays[0]]
    assert stk.pushes[0]["account_reference"] == payment.reference  # the payment's own
