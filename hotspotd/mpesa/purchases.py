"""Buying a plan: store the payment, send the STK push, settle it by callback or query.

The callback is an accelerator; STK Query is the source of truth. Every pending payment is
queried on a backoff schedule until it has a final answer or ends `expired`. All Daraja
calls share one request budget (hotspotd.daraja.budget): a push waits its turn, a query
that finds the budget taken waits for the next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from hotspotd.daraja.budget import BudgetExhausted
from hotspotd.daraja.callbacks import StkCallback
from hotspotd.daraja.errors import (
    SUBSCRIBER_BUSY,
    DarajaApiError,
    DarajaError,
    DarajaProtocolError,
    DarajaTimeout,
    DarajaUnreachable,
    is_spike_arrest,
)
from hotspotd.daraja.msisdn import InvalidPhoneNumber, mask_msisdn, normalise_msisdn
from hotspotd.failpoints import failpoint
from hotspotd.ledger import payment_line, payments, unmatched
from hotspotd.ledger.errors import InvalidPhone, PaymentNotSent
from hotspotd.ledger.macs import checked_mac
from hotspotd.ledger.payments import Payment, Settlement
from hotspotd.ledger.plans import Plan, get_plan
from hotspotd.mpesa.channel_clients import ChannelClients
from hotspotd.mpesa.customer_messages import UNREACHABLE_CODE, customer_message
from hotspotd.mpesa.push_limits import DeviceBlocked, PushGuard, PushTimes, device_blocked
from hotspotd.mpesa.rejections import record_rejection
from hotspotd.store.db import Database

log = logging.getLogger(__name__)


class StkGateway(Protocol):
    """What the purchase flow needs from Daraja (hotspotd.daraja.client.DarajaClient)."""

    def stk_push(self, *, phone: str, amount: int, account_reference: str, description: str,
                 callback_url: str) -> Any: ...

    def stk_query(self, checkout_request_id: str, *,
                  max_wait: float | None = None) -> Any: ...


@dataclass(frozen=True)
class SettlementPolicy:
    inline_query_delays: Sequence[float] = (2.0, 4.0)
    query_backoff: Sequence[float] = (3.0, 5.0, 10.0, 20.0, 30.0)
    pending_expiry: float = 180.0
    account_reference: str = "WIFI"
    push_retry_delays: Sequence[float] = (0.2, 0.5)  # refused connections
    queue_max_wait: float = 300.0  # a payment in line this long without a push expires
    # How long one reconciler round may wait for budget slots: the oldest due payment waits
    # its turn instead of losing it to fresher inline queries round after round.
    reconcile_wait: float = 4.0

    def backoff(self, query_count: int) -> float:
        return self.query_backoff[min(query_count, len(self.query_backoff) - 1)]


class PushDeferred(Exception):
    """The push was not sent (no budget slot, Daraja busy or unreachable): wait in line."""


class PurchaseService:
    def __init__(self, db: Database, daraja: StkGateway, *, channels: ChannelClients,
                 policy: SettlementPolicy, schedule: Callable[[float, Callable[[], None]], None],
                 guard: PushGuard, on_grant: Callable[[], None], on_queued: Callable[[], None],
                 now: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._db = db
        self._daraja = daraja
        self._policy = policy
        self._schedule = schedule
        self._on_grant = on_grant
        self._now = now
        self._guard = guard
        self._sleep = sleep
        self._on_queued = on_queued
        self._channels = channels
        self._trying: set[int] = set()  # payments whose request is trying its push now
        self._trying_lock = threading.Lock()
        self._admitting = threading.Lock()  # limits checked and the purchase stored as one

    @property
    def db(self) -> Database:
        return self._db

    def start_purchase(self, *, plan_id: object, phone: str, mac: str,
                       ip: str | None) -> Payment:
        """Store the payment, then push — or put it in line when others wait or the budget
        has no slot soon enough (mpesa.push_queue). Raises a BillingError for input the
        customer fixes, PaymentNotSent when Daraja refused the push."""
        device_mac = checked_mac(mac)
        if device_blocked(self._db.connection(), device_mac):
            raise DeviceBlocked("This device is blocked here. Please ask the staff.")
        try:
            msisdn = normalise_msisdn(phone)
        except InvalidPhoneNumber as exc:
            raise InvalidPhone(str(exc)) from None
        plan = get_plan(self._db.connection(), plan_id)
        payment, fresh = self._admit(plan, msisdn, device_mac, ip)
        if not fresh:  # the same request again (a double tap, a reload): the open one
            return payment
        try:  # a payment not in line is in `_trying` from `_admit` until sent or in line
            failpoint("payment.stored")
            if payment.queued:
                log.info("payment %s: KES %s for %s from %s, in line for M-Pesa", payment.id,
                         plan.price, device_mac, mask_msisdn(msisdn))
                self._on_queued()
            else:
                log.info("payment %s: KES %s for %s from %s, sending STK push", payment.id,
                         plan.price, device_mac, mask_msisdn(msisdn))
                try:
                    self._push(payment, description=plan.name)
                except PushDeferred as exc:
                    self._back_in_line(payment, str(exc))
        finally:
            with self._trying_lock:
                self._trying.discard(payment.id)
        return payments.get_payment(self._db, payment_id=payment.id) or payment

    def _admit(self, plan: Plan, msisdn: str, mac: str, ip: str | None) -> tuple[Payment, bool]:
        """The limits (mpesa.push_limits), then the stored payment: (payment, True); or
        the device's open purchase of this plan to this number: (it, False). The limits
        count stored purchases, so checking and storing happen under one lock."""
        with self._admitting:
            with self._trying_lock:
                pushing = len(self._trying)
            already = self._guard.check(mac=mac, phone=msisdn, ip=ip, plan_id=plan.id,
                                        times=self.push_times(), pushing=pushing)
            open_one = payments.get_payment(self._db, payment_id=already) if already else None
            if open_one is not None:
                return open_one, False
            in_line = payment_line.queue_length(self._db.connection()) > 0
            channel = self._channels.push_channel() if self._channels else None
            payment = payments.create_payment(
                self._db, plan=plan, phone=msisdn, mac=mac, ip=ip, now=self._now(),
                queued=in_line, reference_prefix=self._policy.account_reference,
                channel=channel)
            if not in_line:  # counted as in line by the next admission until it is sent
                with self._trying_lock:
                    self._trying.add(payment.id)
            return payment, True

    def push_times(self) -> PushTimes:
        """How long a place in line and the longest waits take now (for the limits)."""
        interval = getattr(getattr(self._daraja, "budget", None), "interval", None)
        per_place = 2 * interval if isinstance(interval, float) else PushTimes.seconds_per_place
        return PushTimes(seconds_per_place=per_place,
                         queue_max_wait=self._policy.queue_max_wait,
                         pending_expiry=self._policy.pending_expiry)

    def earlier_push_in_flight(self, payment_id: int) -> bool:
        """Is an older purchase still trying its push from its own request? It either goes
        out or joins the line in a moment: the line waits for it, so order is kept."""
        with self._trying_lock:
            return any(other < payment_id for other in self._trying)

    def push_queued(self, payment_id: int) -> str:
        """Send the push of a payment waiting in line (the PushQueue worker calls this).

        Returns `pushed`, `uncertain`, `refused`, `deferred` (back in line) or `gone`."""
        payment = payments.get_payment(self._db, payment_id=payment_id)
        if payment is None or not payment.queued:
            return "gone"
        if not payment_line.claim(self._db, payment.id, self._now()):
            return "gone"
        plan = get_plan(self._db.connection(), payment.plan_id)
        log.info("payment %s: its turn in line, sending STK push", payment.id)
        try:
            self._push(payment, description=plan.name, from_queue=True)
        except PushDeferred as exc:
            self._back_in_line(payment, str(exc))
            return "deferred"
        except PaymentNotSent:
            return "refused"  # stored as failed with Daraja's words; the page shows them
        after = payments.get_payment(self._db, payment_id=payment.id)
        return "uncertain" if after and after.push_state == "uncertain" else "pushed"

    def gateway_for(self, channel: str | None) -> Any:
        """The Daraja client of a payment's channel (None: the configured one)."""
        return self._channels.endpoint(channel).client

    def _callback_url_for(self, channel: str | None) -> str:
        return self._channels.endpoint(channel).urls["stk"]

    def _back_in_line(self, payment: Payment, reason: str) -> None:
        with self._db.write() as conn:
            payment_line.enqueue(conn, payment.id, self._now(), reason)
        log.info("payment %s: in line for M-Pesa (%s)", payment.id, reason)
        self._on_queued()

    def expire_queue(self, now: float) -> list[int]:
        """End the payments that waited in line too long; no prompt was ever sent."""
        return payment_line.expire_waiting(self._db, now, self._policy.queue_max_wait)

    def _push(self, payment: Payment, *, description: str, from_queue: bool = False) -> None:
        accepted = self._send_push(payment, description, from_queue=from_queue)
        if accepted is None:
            return
        failpoint("push.sent")
        now = self._now()
        first_query = now + max([*self._policy.inline_query_delays, 0.0]) + self._policy.backoff(0)
        payments.record_push_accepted(
            self._db, payment.id, merchant_request_id=accepted.merchant_request_id,
            checkout_request_id=accepted.checkout_request_id, now=now, next_query_at=first_query)
        self._apply_held_callback(accepted.checkout_request_id)
        for delay in self._policy.inline_query_delays:
            self._schedule(delay, lambda pid=payment.id: self.query_payment(pid))

    def _send_push(self, payment: Payment, description: str, *, from_queue: bool = False) -> Any:
        """The push, retried only when it surely did not reach the phone; None if uncertain.

        PushDeferred when nothing was sent and the payment should wait in line: no budget
        slot, spike arrest (the budget pauses everybody), or — for a payment already in
        line — Daraja unreachable after the retries. Quota is refused as before."""
        delays = [0.0, *self._policy.push_retry_delays]
        for attempt, delay in enumerate(delays):
            last = attempt == len(delays) - 1
            if delay:
                self._sleep(delay)
            try:
                return self.gateway_for(payment.channel).stk_push(
                    phone=payment.phone, amount=payment.amount,
                    account_reference=payment.reference or self._policy.account_reference,
                    description=description[:13],
                    callback_url=self._callback_url_for(payment.channel))
            except BudgetExhausted as exc:
                raise PushDeferred(str(exc)) from None
            except DarajaUnreachable as exc:  # nothing was sent: safe to try again
                if last and from_queue:
                    raise PushDeferred(f"Daraja unreachable: {exc}") from None
                if last:
                    self._reject(payment, UNREACHABLE_CODE, str(exc))
                log.warning("payment %s: Daraja unreachable (%s), retrying", payment.id, exc)
            except (DarajaTimeout, DarajaProtocolError) as exc:
                # No readable answer: the prompt may be on the phone. Never tell the customer
                # "nothing was charged" and never resend; settlement finds out.
                log.warning("payment %s: STK push got no readable answer (%s); it may have"
                            " reached the phone", payment.id, exc)
                payments.record_push_uncertain(self._db, payment.id, reason=str(exc),
                                               now=self._now())
                return None
            except DarajaApiError as exc:
                if is_spike_arrest(exc):  # nothing sent; the budget is paused
                    raise PushDeferred(f"{exc.error_code} {exc.error_message}") from None
                # Quota is the account's limit for a long while: refused, with words that
                # point to a voucher, rather than a long wait in line.
                self._reject(payment, exc.error_code, exc.error_message)
            except DarajaError as exc:
                self._reject(payment, type(exc).__name__, str(exc))
            except Exception as exc:
                payments.record_push_uncertain(self._db, payment.id, now=self._now(),
                                               reason=f"unexpected error: {exc!r}")
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _reject(self, payment: Payment, code: str, message: str) -> NoReturn:
        log.warning("payment %s: STK push refused: %s %s", payment.id, code, message)
        payments.record_push_rejected(self._db, payment.id, result_code=code,
                                      result_desc=message, now=self._now())
        refusal = PaymentNotSent(push_refusal_message(code, message))
        refusal.result_code = refusal_code(code, message)  # type: ignore[attr-defined]
        raise refusal

    def query_payment(self, payment_id: int) -> Settlement | None:
        """Ask STK Query about one pending payment; apply a final answer."""
        try:
            return self._query(payment_id)
        except BudgetExhausted:
            return None  # the reconciler asks again on its next round

    def _query(self, payment_id: int, max_wait: float | None = None) -> Settlement | None:
        payment = payments.get_payment(self._db, payment_id=payment_id)
        if payment is None or payment.status != payments.PENDING:
            return None
        if payment.checkout_request_id is None:
            return None
        try:
            result = self.gateway_for(payment.channel).stk_query(
                payment.checkout_request_id, max_wait=max_wait)
        except BudgetExhausted:
            raise
        except DarajaError as exc:
            log.warning("payment %s: STK query failed: %s", payment.id, exc)
            self._reschedule(payment)
            return None
        if result.pending:
            self._reschedule(payment)
            return None
        return self.apply_query_result(payment.checkout_request_id, result)

    def apply_query_result(self, checkout_request_id: str, result: Any) -> Settlement:
        """A final STK Query answer; a success takes the receipt an unconfirmed callback
        claimed (the query reply has none)."""
        hint = self._db.query_one("SELECT * FROM stk_callback_hints WHERE"
                                  " checkout_request_id = ?", (checkout_request_id,))
        receipt = hint["receipt"] if hint and hint["result_code"] == result.result_code else None
        if hint is not None and hint["result_code"] != result.result_code and \
                self._drop_hint(checkout_request_id, hint["result_code"]):
            record_rejection(self._db, kind="stk", now=self._now(), source=hint["source"],
                             reference=checkout_request_id,
                             reason=f"claimed result {hint['result_code']}; STK Query says"
                                    f" {result.result_code}")
        return self._apply(checkout_request_id, result.result_code, result.result_desc,
                           source="query", receipt=receipt)

    def _drop_hint(self, checkout_request_id: str, result_code: str) -> bool:
        """Consume a contradicted hint once, however many queries report the truth."""
        with self._db.write() as conn:
            return conn.execute("DELETE FROM stk_callback_hints WHERE checkout_request_id = ?"
                                " AND result_code = ?",
                                (checkout_request_id, result_code)).rowcount == 1

    def _reschedule(self, payment: Payment) -> None:
        next_at = self._now() + self._policy.backoff(payment.query_count)
        payments.record_query_pending(self._db, payment.id, next_query_at=next_at)

    def handle_stk_callback(self, callback: StkCallback) -> Settlement:
        """A callback from a trusted source: applied as it stands."""
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
                if payments.learn_checkout_id(
                        self._db, receipt=callback.receipt, now=self._now(),
                        checkout_request_id=callback.checkout_request_id):
                    return Settlement("duplicate")  # C2B or Pull settled it first
                self._hold_unknown(callback)
                return settlement
            settlement = self._apply(callback.checkout_request_id, callback.result_code,
                                     callback.result_desc, source="callback",
                                     receipt=callback.receipt, paid_amount=callback.amount)
        return settlement

    def _apply_held_callback(self, checkout_request_id: str) -> None:
        """A callback can beat the push's own reply: apply one held under this id."""
        held = unmatched.open_stk_hold(self._db, checkout_request_id)
        if held is None:
            return
        self._apply(checkout_request_id, "0", "callback arrived before the push was recorded",
                    source="callback", receipt=held["receipt"], paid_amount=held["amount"])
        with self._db.write() as conn:
            unmatched.resolve(conn, held["id"], now=self._now())

    def _apply(self, checkout_request_id: str, code: object, desc: str, *, source: str,
               receipt: str | None = None, paid_amount: int | None = None) -> Settlement:
        settlement = payments.apply_result(
            self._db, checkout_request_id=checkout_request_id, result_code=code,
            result_desc=desc, source=source, now=self._now(), receipt=receipt,
            paid_amount=paid_amount)
        self.after_settlement(settlement, source)
        return settlement

    def after_settlement(self, settlement: Settlement, source: str) -> None:
        """Logging and the router wake-up, once per settlement."""
        payment = settlement.payment
        if payment is not None and settlement.outcome == "settled":
            log.info("payment %s: %s by %s (code %s)", payment.id, payment.status, source,
                     payment.result_code)
        if settlement.grant is not None:
            failpoint("grant.committed")
            self._on_grant()

    def _hold_unknown(self, callback: StkCallback) -> None:
        """Money for a CheckoutRequestID we never stored: keep it for the owner."""
        with self._db.write() as conn:
            unmatched.hold(conn, unmatched.Held(
                "stk", callback.checkout_request_id, callback.receipt, callback.amount,
                "callback for an unknown CheckoutRequestID", phone=callback.phone),
                now=self._now(), event=None)
        log.warning("callback for unknown CheckoutRequestID %s held for the owner",
                    callback.checkout_request_id)

    def reconcile(self) -> None:
        """Query every payment that is due (oldest first), waiting in the budget's
        settlement line for at most `reconcile_wait` per round; expire those without an
        answer in time."""
        now = self._now()
        ends = time.monotonic() + self._policy.reconcile_wait
        for payment in payments.due_for_query(self._db, now):
            left = ends - time.monotonic()
            if left <= 0:
                break
            try:
                self._query(payment.id, max_wait=left)
            except BudgetExhausted:
                break
        self.expire_overdue(self._now())

    def expire_overdue(self, now: float) -> None:
        self.expire_queue(now)
        deadline = now - self._policy.pending_expiry
        for payment in payments.pending_payments(self._db):
            started = payment.push_sent_at or payment.created_at  # the line is not counted
            if started < deadline and payment.push_state != "sending":
                what = ("the push got no answer, so it could not be queried"
                        if payment.push_state == "uncertain" else
                        f"{payment.query_count} STK queries")
                payments.expire_payment(
                    self._db, payment.id, now=now,
                    reason=f"No final answer from M-Pesa within"
                           f" {int(self._policy.pending_expiry)} s ({what})")

    def recover_after_restart(self) -> int:
        """Run once at start, before the web server: settle pushes a crash interrupted."""
        return payments.fail_interrupted_pushes(self._db, self._now())


def refusal_code(code: str, message: str) -> str:
    return SUBSCRIBER_BUSY if "lock subscriber" in message.lower() else code


def push_refusal_message(code: str, message: str, lang: str = "en") -> str:
    """Words for the customer when Daraja refused the push itself."""
    return customer_message(refusal_code(code, message), "failed", lang)
