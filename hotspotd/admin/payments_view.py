"""Payment search and each payment's full story, for the owner UI."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from hotspotd.ledger import unmatched
from hotspotd.ledger.account_codes import normalise_code as normalise_account_code
from hotspotd.ledger.events import events_for_payment
from hotspotd.store.db import Database

STATUSES = ("pending", "completed", "failed", "cancelled", "expired")
SEARCH_LIMIT = 100


@dataclass(frozen=True)
class PaymentQuery:
    phone: str = ""
    receipt: str = ""
    code: str = ""  # payment id, CheckoutRequestID, AccountReference, MAC or account code
    status: str = ""
    start: float | None = None
    end: float | None = None


def _phone_digits(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if digits.startswith("0") and len(digits) == 10:
        digits = "254" + digits[1:]
    return digits


def _filters(query: PaymentQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.phone.strip():
        digits = _phone_digits(query.phone)
        if len(digits) == 12:
            where.append("p.phone = ?")
            params.append(digits)
        else:
            where.append("p.phone LIKE ?")
            params.append(f"%{digits}%")
    if query.receipt.strip():
        where.append("p.receipt = ?")
        params.append(query.receipt.strip().upper())
    if query.code.strip():
        code = query.code.strip()
        where.append("(p.public_id = ? OR p.checkout_request_id = ? OR p.mac = ?"
                     " OR p.reference = ? OR p.mac = (SELECT mac FROM account_codes"
                     " WHERE code = ?))")
        params += [code, code, code.upper().replace("-", ":"), code,
                   normalise_account_code(code)]
    if query.status in STATUSES:
        where.append("p.status = ?")
        params.append(query.status)
    if query.start is not None:
        where.append("p.created_at >= ?")
        params.append(query.start)
    if query.end is not None:
        where.append("p.created_at < ?")
        params.append(query.end)
    return where, params


def search_payments(db: Database, query: PaymentQuery,
                    limit: int = SEARCH_LIMIT) -> list[sqlite3.Row]:
    """Newest first, at most `limit` rows."""
    where, params = _filters(query)
    sql = ("SELECT p.*, pl.name AS plan_name, f.refund_needed FROM payments p"
           " LEFT JOIN plans pl ON pl.id = p.plan_id"
           " LEFT JOIN payment_flags f ON f.payment_id = p.id")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY p.created_at DESC, p.id DESC LIMIT ?"  # walks payments_created
    return db.query(sql, [*params, limit])


def payment_story(db: Database, payment_id: int) -> dict[str, Any] | None:
    """Everything that happened to one payment, in order, with the router's side."""
    conn = db.connection()
    payment = conn.execute(
        "SELECT p.*, pl.name AS plan_name, pl.duration_seconds FROM payments p"
        " LEFT JOIN plans pl ON pl.id = p.plan_id WHERE p.id = ?", (payment_id,)).fetchone()
    if payment is None:
        return None
    grants = conn.execute("SELECT * FROM grants WHERE payment_id = ? OR (receipt IS NOT NULL"
                          " AND receipt = ?)", (payment_id, payment["receipt"])).fetchall()
    grant_ids = [g["id"] for g in grants]
    router_ops = conn.execute(
        "SELECT * FROM router_ops WHERE mac = ? AND created_at >= ? ORDER BY id LIMIT 20",
        (payment["mac"], payment["created_at"])).fetchall()
    router_events = [e for e in _mac_events(conn, payment["mac"], payment["created_at"])
                     if e["kind"].startswith("router.")]
    held = unmatched.held_for_payment(conn, payment["public_id"], payment["receipt"])
    flags = conn.execute("SELECT * FROM payment_flags WHERE payment_id = ?",
                         (payment_id,)).fetchone()
    return {"payment": payment, "events": events_for_payment(conn, payment_id),
            "grants": grants, "grant_ids": grant_ids, "router_ops": router_ops,
            "router_events": router_events, "held": held, "flags": flags}


def _mac_events(conn: sqlite3.Connection, mac: str, since: float) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT at, kind, detail FROM events WHERE mac = ? AND at >= ?"
                        " ORDER BY id LIMIT 50", (mac, since)).fetchall()
    return [{"at": r["at"], "kind": r["kind"],
             "detail": json.loads(r["detail"]) if r["detail"] else {}} for r in rows]
