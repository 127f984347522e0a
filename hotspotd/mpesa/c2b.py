"""C2B money: customers who pay the paybill/till from the M-Pesa menu.

One entry point, `record_c2b`, for a confirmation callback and for a Pull Transactions row
alike, so the two are idempotent with each other and with STK callbacks: every TransID is
processed once (table `c2b_transactions`), and one receipt grants at most once (UNIQUE
`grants.receipt`). What the account number (BillRefNumber) names decides the rest:

- an STK payment's reference (the push's AccountReference): that payment settles as paid
  (or, already settled, just learns its receipt: a paybill with registered URLs reports
  one STK payment twice);
- a device's account code with an amount equal to a plan's price: that plan is granted;
- anything else (unknown code, odd amount): kept as unmatched credit for the owner.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hotspotd.ledger import payments, unmatched
from hotspotd.ledger.account_codes import device_for_account_code, normalise_code
from hotspotd.ledger.grants import DuplicateGrant, grant_time
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

INVALID_ACCOUNT = "C2B00012"
INVALID_AMOUNT = "C2B00013"
OTHER_ERROR = "C2B00016"


class MalformedC2B(ValueError):
    """Not a C2B payload we can use; acknowledged, stored as rejected, changes nothing."""


@dataclass(frozen=True)
class C2BPayment:
    trans_id: str
    amount: Decimal
    bill_ref: str
    trans_time: str
    shortcode: str

    @property
    def whole_shillings(self) -> int | None:
        return int(self.amount) if self.amount == self.amount.to_integral_value() else None


@dataclass(frozen=True)
class C2BOutcome:
    outcome: str  # granted, settled_payment, duplicate, unmatched
    reason: str = ""
    granted: bool = False


def parse_c2b(body: Any) -> C2BPayment:
    """A validation/confirmation body (TransAmount a string like "10.00")."""
    if not isinstance(body, dict):
        raise MalformedC2B("not a JSON object")
    trans_id = body.get("TransID")
    if not isinstance(trans_id, str) or not trans_id.isalnum() or not 6 <= len(trans_id) <= 20:
        raise MalformedC2B("missing or invalid TransID")
    return C2BPayment(trans_id.upper(), _amount(body.get("TransAmount")),
                      str(body.get("BillRefNumber") or "")[:40],
                      str(body.get("TransTime") or "")[:20],
                      str(body.get("BusinessShortCode") or "")[:20])


def pull_row_to_c2b(row: dict[str, Any]) -> C2BPayment:
    """A Pull Transactions row (transactionId, amount, billreference, trxDate)."""
    return parse_c2b({"TransID": row.get("transactionId"), "TransAmount": row.get("amount"),
                      "BillRefNumber": row.get("billreference"),
                      "TransTime": row.get("trxDate")})


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MalformedC2B(f"invalid TransAmount {value!r}") from None
    if not amount.is_finite() or amount <= 0 or amount > 1_000_000:
        raise MalformedC2B(f"invalid TransAmount {value!r}")
    return amount


def validate_c2b(conn: sqlite3.Connection, payment: C2BPayment) -> tuple[str, str]:
    """Validation answer: ("0", "Accepted") or a C2B000NN code with the reason."""
    reference = normalise_code(payment.bill_ref)
    if _payment_by_reference(conn, reference) is None and \
            device_for_account_code(conn, reference) is None:
        return INVALID_ACCOUNT, "unknown account number"
    cheapest = conn.execute("SELECT MIN(price) FROM plans WHERE active = 1").fetchone()[0]
    if cheapest is None or payment.amount < cheapest:
        return INVALID_AMOUNT, f"amount below the cheapest plan (KES {cheapest})"
    return "0", "Accepted"


def record_c2b(db: Database, payment: C2BPayment, *, source: str, now: float,
               channel: str = "default") -> C2BOutcome:
    """Process one C2B transaction exactly once (see the module docstring)."""
    with db.write() as conn:
        seen = conn.execute("SELECT outcome FROM c2b_transactions WHERE trans_id = ?",
                            (payment.trans_id,)).fetchone()
        if seen is not None:
            return C2BOutcome("duplicate", f"TransID already processed ({seen[0]})")
        outcome = _decide(conn, payment, source, now)
        conn.execute(
            "INSERT INTO c2b_transactions (trans_id, source, channel, amount, bill_ref,"
            " trans_time, outcome, reason, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (payment.trans_id, source, channel, int(payment.amount), payment.bill_ref,
             payment.trans_time, outcome.outcome, outcome.reason, now))
    log.info("C2B %s (%s, KES %s, account %s): %s %s", payment.trans_id, source,
             payment.amount, payment.bill_ref, outcome.outcome, outcome.reason)
    return outcome


def _decide(conn: sqlite3.Connection, payment: C2BPayment, source: str,
            now: float) -> C2BOutcome:
    if _receipt_known(conn, payment.trans_id):
        return C2BOutcome("duplicate", "receipt already recorded")
    reference = normalise_code(payment.bill_ref)
    stk_payment = _payment_by_reference(conn, reference)
    if stk_payment is not None:
        return _settle_stk_payment(conn, stk_payment, payment, source, now)
    mac = device_for_account_code(conn, reference) if reference else None
    if mac is None:
        return _unmatched(conn, payment, now, f"unknown account number {payment.bill_ref!r}")
    shillings = payment.whole_shillings
    plan = conn.execute("SELECT * FROM plans WHERE active = 1 AND price = ? ORDER BY"
                        " sort_order, id LIMIT 1", (shillings,)).fetchone()
    if plan is None:
        return _unmatched(conn, payment, now, f"KES {payment.amount} matches no plan"
                                              f" (account {reference}, device {mac})")
    try:
        grant_time(conn, mac=mac, seconds=plan["duration_seconds"], now=now, plan_id=plan["id"],
                   rate_limit=plan["rate_limit"], source="c2b", receipt=payment.trans_id)
    except DuplicateGrant:
        return C2BOutcome("duplicate", "receipt already granted")
    return C2BOutcome("granted", f"plan {plan['id']} for {mac}", granted=True)


def _settle_stk_payment(conn: sqlite3.Connection, stk_payment: payments.Payment,
                        payment: C2BPayment, source: str, now: float) -> C2BOutcome:
    settlement = payments.apply_result_in(
        conn, stk_payment, "0", f"paid (C2B {source})", source=f"c2b-{source}", now=now,
        receipt=payment.trans_id, paid_amount=int(payment.amount))
    return C2BOutcome("settled_payment" if settlement.outcome == "settled" else "duplicate",
                      f"payment {stk_payment.id}: {settlement.outcome}",
                      granted=settlement.grant is not None)


def _unmatched(conn: sqlite3.Connection, payment: C2BPayment, now: float,
               reason: str) -> C2BOutcome:
    """Money that matches nothing: kept, visible, for the owner to assign (invariant 3)."""
    unmatched.hold(conn, unmatched.Held("c2b", payment.bill_ref, payment.trans_id,
                                        int(payment.amount), reason),
                   now=now, event="c2b.unmatched", amount=str(payment.amount))
    return C2BOutcome("unmatched", reason)


def _payment_by_reference(conn: sqlite3.Connection, reference: str) -> payments.Payment | None:
    if not reference:
        return None
    row = conn.execute("SELECT * FROM payments WHERE reference = ?", (reference,)).fetchone()
    return payments.payment_from_row(row) if row else None


def _receipt_known(conn: sqlite3.Connection, receipt: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM grants WHERE receipt = ? UNION ALL SELECT 1 FROM payments WHERE"
        " receipt = ?", (receipt, receipt)).fetchone() is not None \
        or unmatched.receipt_held(conn, receipt)
