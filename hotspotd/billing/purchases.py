"""Buying a plan: store the payment, send the STK push, settle it by callback or query.

The callback is an accelerator; STK Query is the source of truth. Every pending payment is
queried on a backoff schedule until it has a final answer or ends `expired`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from hotspotd.billing import payments
from hotspotd.billing.errors import InvalidPhone, PaymentNotSent
from hotspotd.billing.macs import normalise_mac
from hotspotd.billing.payments import Payment, Settlement
from hotspotd.billing.plans import get_plan
from hotspotd.daraja.callbacks import StkCallback
from hotspotd.daraja.errors import (
    DarajaApiError,
    DarajaError,
    DarajaProtocolError,
    DarajaTimeout,
)
from hotspotd.daraja.msisdn import InvalidPhoneNumber, mask_msisdn, normalise_msisdn
from hotspotd.failpoints import failpoint
from hotspotd.store.db import Database

log = logging.getLogger(__name__)


class StkGateway(Protocol):
    """What the purchase flow needs from Daraja (hotspotd.daraja.client.DarajaClient)."""

    def stk_push(self, *, phone: str, amount: int, account_reference: str, description: str,
                 callback_url: str) -> Any: ...

    def stk_query(self, checkout_request_id: str) -> Any: ...


@dataclass(frozen=True)
class SettlementPolicy:
    inline_query_delays: Sequence[float] = (2.0, 4.0)
    query_backoff: Sequence[float] = (3.0, 5.0, 10.0, 20.0, 30.0)
    pending_expiry: float = 180.0
    account_reference: str = "WIFI"

    def backoff(self, query_count: int) -> float:
        return self.query_backoff[min(query_count, len(self.query_backoff) - 1)]


class PurchaseService:
    def __init__(self, db: Database, daraja: StkGateway, *, callback_url: str,
                 policy: SettlementPolicy, schedule: Callable[[float, Callable[[], None]], None],
                 on_grant: Callable[[], None] = lambda: None,
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._daraja = daraja
        self._callback_url = callback_url
        self._policy = policy
        self._schedule = schedule
        self._on_grant = on_grant
        self._now = now

    def start_purchase(self, *, plan_id: object, phone: str, mac: str,
                       ip: str | None) -> Payment:
        """Store the payment, then push. Raises a BillingError for input the customer fixes."""
        device_mac = normalise_mac(mac)
        try:
            msisdn = normalise_msisdn(phone)
        except InvalidPhoneNumber as exc:
            raise InvalidPhone(str(exc)) from None
        plan = get_plan(self._db.connection(), plan_id)
        payment = payments.create_payment(self._db, plan=plan, phone=msisdn, mac=device_mac,
                                          ip=ip, now=self._now())
        failpoint("payment.stored")
        log.info("payment %s: KES %s for %s from %s, sending STK push", payment.id,
                 plan.price, device_mac, mask_msisdn(msisdn))
        self._push(payment, description=plan.name)
        return payments.get_payment(self._db, payment_id=payment.id) or payment

    def _push(self, payment: Payment, *, description: str) -> None:
        try:
            accepted = self._daraja.stk_push(
                phone=payment.phone, amount=payment.amount,
                account_reference=self._policy.account_reference,
                description=description[:13], callback_url=self._callback_url)
        except (DarajaTimeout, DarajaProtocolError) as exc:
            # No readable answer: the prompt may be on the phone. Never tell the customer
            # "nothing was charged" and never resend; settlement finds out.
            log.warning("payment %s: STK push got no readable answer (%s); it may have"
                        " reached the phone", payment.id, exc)
            payments.record_push_uncertain(self._db, payment.id, reason=str(exc),
                                           now=self._now())
            return
        except DarajaApiError as exc:
            self._reject(payment, exc.error_code, exc.error_message)
        except DarajaError as exc:
            self._reject(payment, type(exc).__name__, str(exc))
        except Exception as exc:
            payments.record_push_uncertain(self._db, payment.id, now=self._now(),
                                           reason=f"unexpected error: {exc!r}")
            raise
        failpoint("push.sent")
        now = self._now()
        first_query = now + max([*self._policy.inline_query_delays, 0.0]) + self._policy.backoff(0)
        payments.record_push_accepted(
            self._db, payment.id, merchant_request_id=accepted.merchant_request_id,
            checkout_request_id=accepted.checkout_request_id, now=now, next_query_at=first_query)
        self._apply_held_callback(accepted.checkout_request_id)
        for delay in self._policy.inline_query_delays:
            self._schedule(delay, lambda pid=payment.id: self.query_payment(pid))

    def _reject(self, payment: Payment, code: str, message: str) -> NoReturn:
        log.warning("payment %s: STK push refused: %s %s", payment.id, code, message)
        payments.record_push_rejected(self._db, payment.id, result_code=code,
                                      result_desc=message, now=self._now())
        raise PaymentNotSent(push_refusal_message(code, message))

    def query_payment(self, payment_id: int) -> Settlement | None:
        """Ask STK Query about one pending payment; apply a final answer."""
        payment = payments.get_payment(self._db, payment_id=payment_id)
        if payment is None or payment.status != payments.PENDING:
            return None
        if payment.checkout_request_id is None:
            return None
        try:
            result = self._daraja.stk_query(payment.checkout_request_id)
        except DarajaError as exc:
            log.warning("payment %s: STK query failed: %s", payment.id, exc)
            self._reschedule(payment)
            return None
        if result.pending:
            self._reschedule(payment)
            return None
        return self._apply(payment.checkout_request_id, result.result_code, result.result_desc,
                           source="query")

    def _reschedule(self, payment: Payment) -> None:
        next_at = self._now() + self._policy.backoff(payment.query_count)
        payments.record_query_pending(self._db, payment.id, next_query_at=next_at)

    def handle_stk_callback(self, callback: StkCallback) -> Settlement:
        failpoint("callback.received")
        settlement = self._apply(callback.checkout_request_id, callback.result_code,
                                 callback.result_desc, source="callback",
                                 receipt=callback.receipt, paid_amount=callback.amount)
        if settlement.outcome == "unknown" and callback.result_code == "0":
            adopted = payments.adopt_checkout_id(
                self._db, checkout_request_id=callback.checkout_request_id,
                phone=callback.phone, amount=callback.amount, now=self._now(),
                window=self._policy.pending_expiry * 2)
            if adopted is None:
                self._hold_unknown(callback)
                return settlement
            settlement = self._apply(callback.checkout_request_id, callback.result_code,
                                     callback.result_desc, source="callback",
                                     receipt=callback.receipt, paid_amount=callback.amount)
        return settlement

    def _apply_held_callback(self, checkout_request_id: str) -> None:
        """A callback can beat the push's own reply: apply one held under this id."""
        held = self._db.query_one(
            "SELECT id, receipt, amount FROM unmatched_payments WHERE source = 'stk'"
            " AND reference = ? AND resolved_at IS NULL", (checkout_request_id,))
        if held is None:
            return
        self._apply(checkout_request_id, "0", "callback arrived before the push was recorded",
                    source="callback", receipt=held["receipt"], paid_amount=held["amount"])
        with self._db.write() as conn:
            conn.execute("UPDATE unmatched_payments SET resolved_at = ? WHERE id = ?",
                         (self._now(), held["id"]))

    def _apply(self, checkout_request_id: str, code: object, desc: str, *, source: str,
               receipt: str | None = None, paid_amount: int | None = None) -> Settlement:
        settlement = payments.apply_result(
            self._db, checkout_request_id=checkout_request_id, result_code=code,
            result_desc=desc, source=source, now=self._now(), receipt=receipt,
            paid_amount=paid_amount)
        if settlement.payment is not None and settlement.outcome == "settled":
            log.info("payment %s: %s by %s (code %s)", settlement.payment.id,
                     settlement.payment.status, source, settlement.payment.result_code)
        if settlement.grant is not None:
            failpoint("grant.committed")
            self._on_grant()
        return settlement

    def _hold_unknown(self, callback: StkCallback) -> None:
        """Money for a CheckoutRequestID we never stored: keep it for the owner."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO unmatched_payments (source, reference, receipt, amount,"
                " phone, reason, received_at) VALUES ('stk', ?, ?, ?, ?, ?, ?)",
                (callback.checkout_request_id, callback.receipt, callback.amount,
                 callback.phone, "callback for an unknown CheckoutRequestID", self._now()))
        log.warning("callback for unknown CheckoutRequestID %s held for the owner",
                    callback.checkout_request_id)

    def reconcile(self) -> None:
        """Query every payment that is due; expire those without an answer in time."""
        now = self._now()
        for payment in payments.due_for_query(self._db, now):
            self.query_payment(payment.id)
        deadline = now - self._policy.pending_expiry
        for payment in payments.pending_payments(self._db):
            if payment.created_at < deadline and payment.push_state != "sending":
                payments.expire_payment(
                    self._db, payment.id, now=now,
                    reason=f"No final answer from M-Pesa within"
                           f" {int(self._policy.pending_expiry)} s")

    def recover_after_restart(self) -> int:
        """Run once at start, before the web server: settle pushes a crash interrupted."""
        return payments.fail_interrupted_pushes(self._db, self._now())


def push_refusal_message(code: str, message: str) -> str:
    """Words for the customer when Daraja refused the push itself."""
    if "lock subscriber" in message.lower() or code == "500.001.1001":
        return ("Another M-Pesa request is already open on this phone. Finish or cancel it,"
                " wait a minute, then try again.")
    if code == "400.002.02":
        return "M-Pesa did not accept the request: check the phone number and try again."
    if code in ("500.003.02", "500.003.03"):
        return "M-Pesa is busy right now. Please try again in a minute."
    return "M-Pesa could not be reached just now. Please try again in a minute."
