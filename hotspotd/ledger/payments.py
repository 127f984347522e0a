"""The payment state machine: pending → completed / failed / cancelled / expired.

Every function here is one transaction. A payment row is written before its STK push is
sent (invariant 1); a final status is reached from Daraja's result code, or `expired` when
no final answer arrives in time (invariant 6); completing a payment grants its time in the
same transaction, at most once (invariant 2).
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from dataclasses import dataclass

from hotspotd.daraja.result_codes import COMPLETED, EXPIRED, FAILED, normalise_code, status_for
from hotspotd.ledger import unmatched
from hotspotd.ledger.account_codes import new_code
from hotspotd.ledger.events import record_event
from hotspotd.ledger.grants import DuplicateGrant, Grant, grant_time
from hotspotd.ledger.plans import Plan
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

PENDING = "pending"
INTERRUPTED_CODE = "HOTSPOTD_INTERRUPTED"
TIMEOUT_CODE = "HOTSPOTD_TIMEOUT"
REFERENCE_MAX = 12  # AccountReference is at most 12 characters
REFERENCE_ATTEMPTS = 10
OWN_ENDINGS = ("timeout", "restart")  # settled_by values of endings we decided, not M-Pesa


@dataclass(frozen=True)
class Payment:
    id: int
    public_id: str
    plan_id: int
    mac: str
    ip: str | None
    phone: str
    amount: int
    status: str
    push_state: str
    checkout_request_id: str | None
    result_code: str | None
    result_desc: str | None
    receipt: str | None
    created_at: float
    query_count: int
    settled_by: str | None
    reference: str | None = None
    queued_at: float | None = None  # waiting in line for its push (push_queue)
    push_sent_at: float | None = None
    channel: str | None = None  # the Daraja channel it was pushed on

    @property
    def queued(self) -> bool:
        return self.queued_at is not None and self.status == PENDING


@dataclass(frozen=True)
class Settlement:
    """What applying a result did: `settled`, `duplicate`, `ignored` or `unknown`."""

    outcome: str
    payment: Payment | None = None
    grant: Grant | None = None


def payment_from_row(row: sqlite3.Row) -> Payment:
    return Payment(row["id"], row["public_id"], row["plan_id"], row["mac"], row["ip"],
                   row["phone"], row["amount"], row["status"], row["push_state"],
                   row["checkout_request_id"], row["result_code"], row["result_desc"],
                   row["receipt"], row["created_at"], row["query_count"], row["settled_by"],
                   row["reference"], row["queued_at"], row["push_sent_at"], row["channel"])


def get_payment(db: Database, *, public_id: str | None = None,
                payment_id: int | None = None) -> Payment | None:
    if public_id is not None:
        row = db.query_one("SELECT * FROM payments WHERE public_id = ?", (public_id,))
    else:
        row = db.query_one("SELECT * FROM payments WHERE id = ?", (payment_id,))
    return payment_from_row(row) if row else None


def create_payment(db: Database, *, plan: Plan, phone: str, mac: str, ip: str | None,
                   now: float, reference_prefix: str = "", queued: bool = False,
                   channel: str | None = None) -> Payment:
    """Store a pending payment (push_state `sending`) and the device, before any push.

    `queued`: others are in line for the Daraja budget, so this one joins the end of the
    line (`queued_at`, mpesa.push_queue) instead of being pushed by the caller.

    `reference` (the push's AccountReference, prefix + 7 random characters) comes back as
    BillRefNumber in a C2B confirmation or Pull row of the same payment.
    """
    for _ in range(REFERENCE_ATTEMPTS):
        try:
            return _create_payment(db, plan=plan, phone=phone, mac=mac, ip=ip, now=now,
                                    reference=new_reference(reference_prefix), queued=queued,
                                    channel=channel)
        except sqlite3.IntegrityError as exc:
            if "reference" not in str(exc):
                raise
    raise RuntimeError("could not allocate a unique payment reference")


def new_reference(prefix: str) -> str:
    clean = "".join(ch for ch in prefix.upper() if ch.isalnum())[:REFERENCE_MAX - 7]
    return clean + new_code(7)


def _create_payment(db: Database, *, plan: Plan, phone: str, mac: str, ip: str | None,
                    now: float, reference: str, queued: bool = False,
                    channel: str | None = None) -> Payment:
    public_id = secrets.token_urlsafe(12)
    with db.write() as conn:
        conn.execute(
            "INSERT INTO devices (mac, last_ip, first_seen, last_seen) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (mac) DO UPDATE SET last_ip = COALESCE(excluded.last_ip, last_ip),"
            " last_seen = excluded.last_seen", (mac, ip, now, now))  # see device_seen_at
        cursor = conn.execute(
            "INSERT INTO payments (public_id, plan_id, mac, ip, phone, amount, created_at,"
            " reference, queued_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (public_id, plan.id, mac, ip, phone, plan.price, now, reference,
             now if queued else None, channel))
        payment_id = int(cursor.lastrowid or 0)
        record_event(conn, now, "payment.created", payment_id=payment_id, mac=mac,
                     plan_id=plan.id, amount=plan.price)
        if queued:
            record_event(conn, now, "push.queued", payment_id=payment_id,
                         reason="others are in line")
    payment = get_payment(db, payment_id=payment_id)
    assert payment is not None
    return payment


def record_push_accepted(db: Database, payment_id: int, *, merchant_request_id: str,
                         checkout_request_id: str, now: float, next_query_at: float) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE payments SET push_state = 'sent', merchant_request_id = ?,"
            " checkout_request_id = ?, push_sent_at = ?, next_query_at = ? WHERE id = ?",
            (merchant_request_id, checkout_request_id, now, next_query_at, payment_id))
        record_event(conn, now, "push.accepted", payment_id=payment_id,
                     checkout_request_id=checkout_request_id)


def record_push_uncertain(db: Database, payment_id: int, *, reason: str, now: float) -> None:
    """The push call timed out: it may have reached the phone. Never resend it blindly."""
    with db.write() as conn:
        conn.execute("UPDATE payments SET push_state = 'uncertain', push_sent_at = ?"
                     " WHERE id = ?", (now, payment_id))
        record_event(conn, now, "push.uncertain", payment_id=payment_id, reason=reason)


def record_push_rejected(db: Database, payment_id: int, *, result_code: str, result_desc: str,
                         now: float) -> None:
    """Daraja refused the push (or could not be reached): nothing was charged."""
    with db.write() as conn:
        conn.execute(
            "UPDATE payments SET push_state = 'rejected', status = 'failed', result_code = ?,"
            " result_desc = ?, settled_by = 'push', settled_at = ? WHERE id = ? AND status = ?",
            (result_code, result_desc, now, payment_id, PENDING))
        record_event(conn, now, "push.rejected", payment_id=payment_id, result_code=result_code,
                     result_desc=result_desc)


def apply_result(db: Database, *, checkout_request_id: str, result_code: object,
                 result_desc: str, source: str, now: float, receipt: str | None = None,
                 paid_amount: int | None = None) -> Settlement:
    """Apply a final Daraja result (from a callback or an STK query) to its payment.

    Idempotent: a payment settles once; later reports of the same result change nothing
    except filling in a receipt that a query-settled payment did not know yet.
    """
    code = normalise_code(result_code)
    with db.write() as conn:
        row = conn.execute("SELECT * FROM payments WHERE checkout_request_id = ?",
                           (checkout_request_id,)).fetchone()
        if row is None:
            return Settlement("unknown")
        return apply_result_in(conn, payment_from_row(row), code, result_desc, source=source,
                               now=now, receipt=receipt, paid_amount=paid_amount)


def apply_result_in(conn: sqlite3.Connection, payment: Payment, code: str, result_desc: str,
                    *, source: str, now: float, receipt: str | None = None,
                    paid_amount: int | None = None) -> Settlement:
    """`apply_result` inside the caller's write transaction, for a payment already found."""
    new_status = status_for(code)
    if _may_settle(payment, new_status):
        return _settle(conn, payment, code, new_status, result_desc, source, now, receipt,
                       paid_amount)
    if payment.status == COMPLETED and new_status == COMPLETED:
        _fill_receipt(conn, payment, receipt, now)
        return Settlement("duplicate", payment)
    if payment.status != new_status:
        if new_status == COMPLETED and receipt and not _receipt_taken(conn, receipt,
                                                                      payment.id):
            _hold(conn, payment, receipt, paid_amount, now,
                  f"M-Pesa reported this payment as paid after it was recorded as"
                  f" {payment.status} (code {payment.result_code})")
        record_event(conn, now, "result.conflict", payment_id=payment.id, source=source,
                     stored=payment.status, reported=new_status, result_code=code)
        log.warning("payment %s is %s but %s reported %s (code %s): kept %s", payment.id,
                    payment.status, source, new_status, code, payment.status)
        return Settlement("ignored", payment)
    return Settlement("duplicate", payment)


def _may_settle(payment: Payment, new_status: str) -> bool:
    if payment.status == PENDING:
        return True
    # We expired it ourselves for lack of an answer: if M-Pesa now says the money moved,
    # the customer paid, so the payment completes and grants after all.
    # Any final answer from M-Pesa replaces our own ending (a timeout, or a push a restart
    # interrupted), so M-Pesa's code is what we keep.
    return payment.status in (EXPIRED, FAILED) and payment.settled_by in OWN_ENDINGS


def _settle(conn: sqlite3.Connection, payment: Payment, code: str, status: str, desc: str,
            source: str, now: float, receipt: str | None, paid_amount: int | None) -> Settlement:
    if receipt and _receipt_taken(conn, receipt, payment.id):
        record_event(conn, now, "result.receipt_reused", payment_id=payment.id, receipt=receipt)
        return Settlement("ignored", payment)
    conn.execute(
        "UPDATE payments SET status = ?, result_code = ?, result_desc = ?, settled_by = ?,"
        " settled_at = ?, receipt = COALESCE(?, receipt), paid_amount = COALESCE(?, paid_amount)"
        " WHERE id = ?", (status, code, desc, source, now, receipt, paid_amount, payment.id))
    record_event(conn, now, "payment.settled", payment_id=payment.id, status=status,
                 result_code=code, source=source, receipt=receipt)
    grant = None
    if status == COMPLETED:
        grant = _grant_payment(conn, payment, now, receipt, paid_amount)
    settled = payment_from_row(conn.execute("SELECT * FROM payments WHERE id = ?",
                                            (payment.id,)).fetchone())
    return Settlement("settled", settled, grant)


def _grant_payment(conn: sqlite3.Connection, payment: Payment, now: float,
                   receipt: str | None, paid_amount: int | None) -> Grant | None:
    if paid_amount is not None and paid_amount < payment.amount:
        _hold(conn, payment, receipt, paid_amount, now,
              f"paid KES {paid_amount}, plan costs KES {payment.amount}", owner=True)
        record_event(conn, now, "grant.held", payment_id=payment.id, paid_amount=paid_amount,
                     price=payment.amount)
        return None
    plan = conn.execute("SELECT duration_seconds, rate_limit FROM plans WHERE id = ?",
                        (payment.plan_id,)).fetchone()
    try:
        return grant_time(conn, mac=payment.mac, seconds=plan["duration_seconds"], now=now,
                          plan_id=payment.plan_id, rate_limit=plan["rate_limit"], source="stk",
                          payment_id=payment.id, receipt=receipt, ip=payment.ip)
    except DuplicateGrant:
        record_event(conn, now, "grant.duplicate_refused", payment_id=payment.id, receipt=receipt)
        return None


def _hold(conn: sqlite3.Connection, payment: Payment, receipt: str | None,
          paid_amount: int | None, now: float, reason: str, *, owner: bool = False) -> None:
    """Keep money that must not grant automatically where the owner sees it (invariant 3).

    `owner`: this payment is the receipt's own (it settled with it): an unresolved hold of
    the same receipt under another payment (a conflicting report) is moved to it."""
    unmatched.hold(conn, unmatched.Held("stk", payment.public_id, receipt, paid_amount, reason,
                                        phone=payment.phone),
                   now=now, event="payment.held", payment_id=payment.id, take_over=owner)


def _receipt_taken(conn: sqlite3.Connection, receipt: str, payment_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM payments WHERE receipt = ? AND id != ? UNION ALL"
        " SELECT 1 FROM grants WHERE receipt = ? AND (payment_id IS NULL OR payment_id != ?)",
        (receipt, payment_id, receipt, payment_id)).fetchone()
    return row is not None


def _fill_receipt(conn: sqlite3.Connection, payment: Payment, receipt: str | None,
                  now: float) -> None:
    if not receipt or payment.receipt or _receipt_taken(conn, receipt, payment.id):
        return
    conn.execute("UPDATE payments SET receipt = ? WHERE id = ?", (receipt, payment.id))
    conn.execute("UPDATE grants SET receipt = ? WHERE payment_id = ?", (receipt, payment.id))
    record_event(conn, now, "payment.receipt_learned", payment_id=payment.id, receipt=receipt)


def record_query_pending(db: Database, payment_id: int, *, next_query_at: float) -> None:
    with db.write() as conn:
        conn.execute("UPDATE payments SET query_count = query_count + 1, next_query_at = ?"
                     " WHERE id = ? AND status = ?", (next_query_at, payment_id, PENDING))


def expire_payment(db: Database, payment_id: int, *, reason: str, now: float,
                   result_code: str = TIMEOUT_CODE, settled_by: str = "timeout") -> bool:
    """End a payment that got no final answer in time. Returns False if it had settled."""
    with db.write() as conn:
        cursor = conn.execute(
            "UPDATE payments SET status = ?, result_code = ?, result_desc = ?, settled_by = ?,"
            " settled_at = ? WHERE id = ? AND status = ?",
            (EXPIRED if settled_by == "timeout" else FAILED, result_code, reason, settled_by,
             now, payment_id, PENDING))
        if cursor.rowcount:
            record_event(conn, now, "payment.expired", payment_id=payment_id, reason=reason)
        return bool(cursor.rowcount)


def pending_payments(db: Database) -> list[Payment]:
    rows = db.query("SELECT * FROM payments WHERE status = ? ORDER BY id", (PENDING,))
    return [payment_from_row(row) for row in rows]


def due_for_query(db: Database, now: float, limit: int = 50) -> list[Payment]:
    rows = db.query(
        "SELECT * FROM payments WHERE status = ? AND push_state = 'sent' AND next_query_at <= ?"
        " ORDER BY next_query_at LIMIT ?", (PENDING, now, limit))
    return [payment_from_row(row) for row in rows]


def fail_interrupted_pushes(db: Database, now: float) -> int:
    """At start-up: payments whose push was being sent when the daemon stopped.

    No CheckoutRequestID was recorded, so M-Pesa cannot be asked about them; they end
    failed with the reason kept. Should the customer have approved a prompt that did go
    out, its callback carries an unknown CheckoutRequestID and is held for the owner.
    """
    count = 0
    for payment in [p for p in pending_payments(db)
                    if p.push_state == "sending" and not p.queued]:  # the line is kept
        if expire_payment(db, payment.id, now=now, result_code=INTERRUPTED_CODE,
                          settled_by="restart",
                          reason="The payment request was interrupted before M-Pesa confirmed"
                                 " it. If you approved a prompt, the payment will be matched"
                                 " to you; otherwise nothing was charged."):
            count += 1
    return count


def adopt_checkout_id(db: Database, *, checkout_request_id: str, phone: str | None,
                      amount: int | None, now: float, window: float) -> Payment | None:
    """Give a CheckoutRequestID we never recorded to the one payment it must belong to.

    A push whose answer we never stored (the daemon stopped mid-call, or the call timed
    out) has no CheckoutRequestID. A success callback carrying an unknown id, the same phone
    and the plan's amount, within `window` seconds, is that payment's: exactly one candidate
    or none is adopted.
    """
    if not phone or not amount:
        return None
    with db.write() as conn:
        rows = conn.execute(
            "SELECT * FROM payments WHERE checkout_request_id IS NULL AND phone = ?"
            " AND amount = ? AND created_at >= ? AND ((status = 'pending' AND queued_at IS"
            " NULL AND push_state IN ('sending', 'uncertain')) OR (status IN ('failed',"
            " 'expired') AND settled_by IN ('timeout', 'restart')))",
            (phone, amount, now - window)).fetchall()
        if len(rows) != 1:
            return None
        payment = payment_from_row(rows[0])
        conn.execute("UPDATE payments SET checkout_request_id = ? WHERE id = ?",
                     (checkout_request_id, payment.id))
        record_event(conn, now, "payment.checkout_id_adopted", payment_id=payment.id,
                     checkout_request_id=checkout_request_id)
    return payment


def learn_checkout_id(db: Database, *, receipt: str | None, checkout_request_id: str,
                      now: float) -> bool:
    """A success callback for an unknown CheckoutRequestID whose receipt is already ours
    (C2B or Pull settled that payment first): remember the id; True if the receipt is known."""
    if not receipt:
        return False
    with db.write() as conn:
        row = conn.execute("SELECT id, checkout_request_id FROM payments WHERE receipt = ?",
                           (receipt,)).fetchone()
        if row is not None and row["checkout_request_id"] is None:
            conn.execute("UPDATE payments SET checkout_request_id = ? WHERE id = ?",
                         (checkout_request_id, row["id"]))
            record_event(conn, now, "payment.checkout_id_learned", payment_id=row["id"],
                         checkout_request_id=checkout_request_id)
        known = row is not None or conn.execute(
            "SELECT 1 FROM grants WHERE receipt = ?", (receipt,)).fetchone() is not None \
            or unmatched.receipt_held(conn, receipt)
    return known


def device_seen_at(conn: sqlite3.Connection, mac: str, ip: str, now: float) -> None:
    """A known device was seen at `ip` (RADIUS accounting): its last address and time."""
    conn.execute("UPDATE devices SET last_ip = ?, last_seen = ? WHERE mac = ?", (ip, now, mac))
