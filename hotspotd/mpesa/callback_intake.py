"""M-Pesa callbacks as they arrive, trusted or not.

A callback from an allow-listed source is applied as it stands. From any other source it is
only a hint: what it claims is kept (`stk_callback_hints`) and STK Query, asked at once in
the background, decides. A forged success for a real CheckoutRequestID whose payment is
still pending or failed at Daraja therefore grants nothing, and is stored in
`callback_rejections` with why. The HTTP side acknowledges at once either way.

Callbacks are matched against the channel whose secret path they arrived on: a callback
for a payment pushed on another channel is refused (stored with why), and STK Query asks
with the payment's own channel's credentials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotspotd.daraja.budget import BudgetExhausted
from hotspotd.daraja.callbacks import StkCallback
from hotspotd.daraja.errors import DarajaError
from hotspotd.daraja.sources import SourcePolicy
from hotspotd.failpoints import failpoint
from hotspotd.ledger import payments
from hotspotd.mpesa.c2b_verify import C2BVerifier
from hotspotd.mpesa.channels import DEFAULT_CHANNEL
from hotspotd.mpesa.purchases import PurchaseService
from hotspotd.mpesa.rejections import record_rejection
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

CONFIRM_ATTEMPTS = 10
CONFIRM_RETRY = 1.0  # seconds, times the attempt number


class CallbackIntake:
    def __init__(self, db: Database, purchases: PurchaseService, daraja: Any, *,
                 schedule: Callable[[float, Callable[[], None]], None],
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._purchases = purchases
        self._daraja = daraja
        self._schedule = schedule
        self._now = now

    def stk(self, callback: StkCallback, *, trusted: bool, source: str,
            channel: str = "default") -> str:
        """Take one parsed STK callback; returns what happened, for the log."""
        failpoint("callback.received")
        payment = self._payment(callback.checkout_request_id)
        if payment is not None and (payment.channel or DEFAULT_CHANNEL) != channel:
            self._reject(callback, source, channel,
                         f"arrived on the callback path of channel {channel}; the payment was"
                         f" pushed on channel {payment.channel or DEFAULT_CHANNEL}")
            return "rejected"
        if trusted:
            return self._purchases.handle_stk_callback(callback).outcome
        if payment is not None and payment.status == "completed":
            return self._purchases.handle_stk_callback(callback).outcome  # receipt at most
        if payment is not None and payment.status != "pending" and \
                payment.settled_by not in payments.OWN_ENDINGS:
            if payment.result_code != callback.result_code:
                self._reject(callback, source, channel,
                             f"claims result {callback.result_code}; the payment already"
                             f" ended {payment.status} (code {payment.result_code})")
                return "rejected"
            return "duplicate"
        if payment is None and callback.result_code != "0":
            self._reject(callback, source, channel, "failure for an unknown CheckoutRequestID")
            return "rejected"
        self._keep_hint(callback, source)
        self._schedule(0.0, lambda: self.confirm(callback.checkout_request_id, source, channel))
        return "confirming"

    def confirm(self, checkout_request_id: str, source: str = "",
                channel: str = "default", attempt: int = 0) -> str:
        """Ask STK Query about what an untrusted callback claimed, and act on the answer.
        When the request budget is taken, ask again a little later (a few times)."""
        hint = self._db.query_one("SELECT * FROM stk_callback_hints WHERE"
                                  " checkout_request_id = ?", (checkout_request_id,))
        if hint is None:
            return "no-hint"
        claimed = _callback_from_hint(checkout_request_id, hint)
        payment = self._payment(checkout_request_id)
        try:
            daraja = self._purchases.gateway_for(payment.channel if payment else channel)
            result = daraja.stk_query(  # a customer is waiting: wait for a slot
                checkout_request_id, max_wait=getattr(daraja, "push_max_wait", None))
        except BudgetExhausted as exc:
            if attempt < CONFIRM_ATTEMPTS:
                self._schedule(CONFIRM_RETRY * (attempt + 1), lambda: self.confirm(
                    checkout_request_id, source, channel, attempt + 1))
                return "later"
            return self._unconfirmed(claimed, source, channel, exc)
        except DarajaError as exc:
            return self._unconfirmed(claimed, source, channel, exc)
        if result.pending:
            return "pending"
        return self._act_on(claimed, result, source, channel)

    def _unconfirmed(self, claimed: StkCallback, source: str, channel: str,
                     exc: Exception) -> str:
        if self._payment(claimed.checkout_request_id) is None:
            self._reject(claimed, source, channel, f"STK Query could not confirm it: {exc}")
            return "rejected"
        return "unconfirmed"  # the reconciler keeps querying; the hint stays

    def _act_on(self, claimed: StkCallback, result: Any, source: str, channel: str) -> str:
        checkout_request_id = claimed.checkout_request_id
        if self._payment(checkout_request_id) is None:
            if result.result_code != "0":
                self._reject(claimed, source, channel,
                             f"claims result {claimed.result_code}; STK Query says"
                             f" {result.result_code}")
                return "rejected"
            confirmed = StkCallback(claimed.merchant_request_id, checkout_request_id, "0",
                                    result.result_desc, amount=claimed.amount,
                                    receipt=claimed.receipt, phone=claimed.phone)
            return self._purchases.handle_stk_callback(confirmed).outcome
        return self._purchases.apply_query_result(checkout_request_id, result).outcome

    def _payment(self, checkout_request_id: str) -> payments.Payment | None:
        row = self._db.query_one("SELECT * FROM payments WHERE checkout_request_id = ?",
                                 (checkout_request_id,))
        return payments.payment_from_row(row) if row else None

    def _keep_hint(self, callback: StkCallback, source: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO stk_callback_hints (checkout_request_id, result_code,"
                " receipt, amount, phone, received_at, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (callback.checkout_request_id, callback.result_code, callback.receipt,
                 callback.amount, callback.phone, self._now(), source))

    def _reject(self, callback: StkCallback, source: str, channel: str, reason: str) -> None:
        record_rejection(self._db, kind="stk", reason=reason, now=self._now(),
                         channel=channel, source=source,
                         reference=callback.checkout_request_id,
                         body={"ResultCode": callback.result_code,
                               "MpesaReceiptNumber": callback.receipt,
                               "Amount": callback.amount})


def _callback_from_hint(checkout_request_id: str, hint: Any) -> StkCallback:
    return StkCallback("", checkout_request_id, hint["result_code"], "",
                       amount=hint["amount"], receipt=hint["receipt"], phone=hint["phone"])


@dataclass
class CallbackSettings:
    """What the callback endpoints need (WebContext.mpesa): the intake, which secret path
    token belongs to which channel, the source policy, the verifier that holds C2B
    confirmations from untrusted sources until Pull Transactions lists them, and whether
    C2B validation refuses. Every collaborator is required: none may be left out to mean
    "trust every source"."""

    intake: CallbackIntake
    channel_tokens: dict[str, str]  # token -> channel name
    sources: SourcePolicy
    c2b_verifier: C2BVerifier  # untrusted confirmations wait for Pull Transactions
    on_grant: Callable[[], None]
    c2b_validation: bool = True
