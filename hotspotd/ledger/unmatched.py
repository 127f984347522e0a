"""Unmatched money: payments that must not grant by themselves, kept where the owner sees them
(invariant 3). The only module that writes table `unmatched_payments`.

Money lands here when a callback names a CheckoutRequestID we never stored, a settlement
conflicts with another receipt, a C2B payment's account reference matches no device, or an
untrusted C2B confirmation cannot be checked with Daraja. It leaves by being resolved: the
owner assigns it to a device, or its own payment turns up and settles with it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hotspotd.ledger.events import record_event
from hotspotd.store.db import Database

SOURCES = ("stk", "c2b")


@dataclass(frozen=True)
class Held:
    """One piece of money to keep. `reference`: the CheckoutRequestID, payment public id or
    C2B account reference it came with; `receipt`: the M-Pesa receipt (unique when known)."""

    source: str
    reference: str | None
    receipt: str | None
    amount: int | None
    reason: str
    phone: str | None = None


def hold(conn: sqlite3.Connection, money: Held, *, now: float, event: str | None,
         payment_id: int | None = None, take_over: bool = False, **detail: object) -> None:
    """Keep `money` (inside the caller's transaction) and log `event` (with `detail`). A
    receipt already held is kept once; with `take_over` (the receipt's own payment settled
    with it), an unresolved hold of the same receipt is moved to this reference instead."""
    if money.source not in SOURCES:
        raise ValueError(f"unknown source of money {money.source!r}")
    conflict = (" ON CONFLICT (receipt) DO UPDATE SET reference = excluded.reference,"
                " amount = excluded.amount, phone = excluded.phone, reason = excluded.reason"
                " WHERE resolved_at IS NULL") if take_over and money.receipt else ""
    conn.execute(
        f"INSERT {'' if conflict else 'OR IGNORE '}INTO unmatched_payments (source, reference,"
        " receipt, amount, phone, reason, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)" + conflict,
        (money.source, money.reference, money.receipt, money.amount, money.phone, money.reason,
         now))
    if event is not None:
        record_event(conn, now, event, payment_id=payment_id, receipt=money.receipt,
                     **detail, reason=money.reason)


def resolve(conn: sqlite3.Connection, unmatched_id: int, *, now: float) -> bool:
    """Mark held money as dealt with; False when it was resolved already (nothing changes)."""
    cursor = conn.execute("UPDATE unmatched_payments SET resolved_at = ? WHERE id = ?"
                          " AND resolved_at IS NULL", (now, unmatched_id))
    return cursor.rowcount == 1


def get(conn: sqlite3.Connection, unmatched_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM unmatched_payments WHERE id = ?",
                        (unmatched_id,)).fetchone()


def open_stk_hold(db: Database, reference: str) -> sqlite3.Row | None:
    """An unresolved STK callback held under this CheckoutRequestID (it beat the push's own
    reply), if any."""
    return db.query_one("SELECT id, receipt, amount FROM unmatched_payments WHERE source ="
                        " 'stk' AND reference = ? AND resolved_at IS NULL", (reference,))


def held_for_payment(conn: sqlite3.Connection, public_id: str,
                     receipt: str | None) -> list[sqlite3.Row]:
    """Holds that concern one payment: under its public id, or of its receipt."""
    return conn.execute("SELECT * FROM unmatched_payments WHERE reference = ?"
                        " OR (receipt IS NOT NULL AND receipt = ?)",
                        (public_id, receipt)).fetchall()


def receipt_held(conn: sqlite3.Connection, receipt: str) -> bool:
    return conn.execute("SELECT 1 FROM unmatched_payments WHERE receipt = ?",
                        (receipt,)).fetchone() is not None


def unresolved(db: Database, *, limit: int = 200) -> list[sqlite3.Row]:
    """Held money, newest first, with the device its account reference names (if any)."""
    return db.query("SELECT u.*, a.mac AS suggested_mac FROM unmatched_payments u"
                    " LEFT JOIN account_codes a ON a.code = UPPER(u.reference)"
                    " WHERE u.resolved_at IS NULL ORDER BY u.received_at DESC LIMIT ?",
                    (limit,))


def unresolved_totals(db: Database) -> tuple[int, int]:
    """(how many, how many shillings) are held and not yet resolved."""
    row = db.query_one("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM unmatched_payments"
                       " WHERE resolved_at IS NULL")
    return int(row[0]), int(row[1])
