"""The payment line in the ledger: purchases stored but not yet pushed, waiting for a slot of
the Daraja request budget (`payments.queued_at`, push_state still `sending`, nothing sent).

The line's order is the payments' ids (first come, first pushed); its worker is
`hotspotd.mpesa.push_queue.PushQueue`. Everything here runs SQL on `payments` and is the
only code that moves a payment into or out of the line.
"""

from __future__ import annotations

import logging
import sqlite3

from hotspotd.daraja.result_codes import EXPIRED
from hotspotd.ledger.events import record_event
from hotspotd.ledger.payments import PENDING
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

QUEUE_TIMEOUT_CODE = "HOTSPOTD_QUEUE_TIMEOUT"  # never sent, expired after waiting in line
QUEUE_ENDING = "queue"  # settled_by: no prompt was ever sent, M-Pesa knows nothing of it
OVERDUE = ("SELECT id FROM payments WHERE queued_at IS NOT NULL AND status = ? AND"
           " created_at < ?")


def enqueue(conn: sqlite3.Connection, payment_id: int, now: float, reason: str) -> bool:
    """Put a payment (pending, nothing sent) in line, inside the caller's transaction."""
    changed = conn.execute(
        "UPDATE payments SET queued_at = ? WHERE id = ? AND status = ? AND"
        " push_state = 'sending' AND checkout_request_id IS NULL",
        (now, payment_id, PENDING)).rowcount == 1
    if changed:
        record_event(conn, now, "push.queued", payment_id=payment_id, reason=reason,
                     position=position(conn, payment_id))
    return changed


def queue_length(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM payments WHERE queued_at IS NOT NULL"
                            " AND status = ?", (PENDING,)).fetchone()[0])


def position(conn: sqlite3.Connection, payment_id: int) -> int:
    """1 for the next payment to be pushed; 0 when this one is not in line."""
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM payments WHERE queued_at IS NOT NULL AND status = ?"
        " AND id <= p.id) FROM payments p WHERE p.id = ? AND p.queued_at IS NOT NULL"
        " AND p.status = ?", (PENDING, payment_id, PENDING)).fetchone()
    return int(row[0]) if row else 0


def oldest(db: Database) -> int | None:
    row = db.query_one("SELECT id FROM payments WHERE queued_at IS NOT NULL AND status = ?"
                       " ORDER BY id LIMIT 1", (PENDING,))
    return int(row["id"]) if row else None


def claim(db: Database, payment_id: int, now: float) -> bool:
    """Take a payment out of line to push it now; False if it is no longer in line."""
    with db.write() as conn:
        claimed = conn.execute(
            "UPDATE payments SET queued_at = NULL WHERE id = ? AND queued_at IS NOT NULL"
            " AND status = ? AND push_state = 'sending'", (payment_id, PENDING)).rowcount == 1
        if claimed:
            record_event(conn, now, "push.dequeued", payment_id=payment_id)
    return claimed


def expire_waiting(db: Database, now: float, max_wait: float) -> list[int]:
    """End every payment in line for more than `max_wait` seconds (no prompt was sent)."""
    reason = (f"M-Pesa was too busy to send the payment prompt within {int(max_wait)} s;"
              " no prompt was sent and nothing was charged")
    # The worker asks on every pass (up to 20 a second while a push is in flight); nearly
    # always nobody is overdue, and a read does not hold the write lock RADIUS waits for.
    if db.query_one(OVERDUE + " LIMIT 1", (PENDING, now - max_wait)) is None:
        return []
    with db.write() as conn:
        ids = [row[0] for row in conn.execute(OVERDUE, (PENDING, now - max_wait))]
        for payment_id in ids:
            conn.execute(
                "UPDATE payments SET status = ?, result_code = ?, result_desc = ?,"
                " settled_by = ?, settled_at = ?, queued_at = NULL WHERE id = ?",
                (EXPIRED, QUEUE_TIMEOUT_CODE, reason, QUEUE_ENDING, now, payment_id))
            record_event(conn, now, "payment.expired", payment_id=payment_id, reason=reason)
    if ids:
        log.warning("%s payment(s) waited more than %s s in line for M-Pesa: expired",
                    len(ids), int(max_wait))
    return ids
