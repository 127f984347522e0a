"""Personal data under Kenya's Data Protection Act: retention, export and erasure.

Phone numbers (and any customer names or raw callback bodies that may carry them) are
personal data; amounts, M-Pesa receipt codes, plans and grants are the books and stay.
`apply_retention` erases the personal columns of rows older than the retention period;
`export_phone` gathers everything held about one number; `erase_phone` erases it. Rate-limit
rows whose key holds a number are covered by all three (`PHONE_IN_KEY`). Each
run is recorded in `privacy_requests` with the masked number only (never the number itself).
Which tables and columns are personal is listed once, in `PERSONAL`; a table or column that
does not exist (yet) in this database is skipped.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from hotspotd.daraja.msisdn import mask_msisdn, normalise_msisdn
from hotspotd.store.db import Database

ERASED_PHONE = "erased"
DAY = 86400.0
# Rate-limit rows whose key holds a phone number (`...:phone:2547...`, `push:cancel:2547...`)
# are personal data too: exported and erased with the number, and dropped by retention once
# no window can need them (none of ours is longer than a day; an older row only resets a
# count).
PHONE_IN_KEY = "*254[17][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]*"  # SQLite GLOB
RATE_LIMIT_STALE = DAY


@dataclass(frozen=True)
class PersonalData:
    """Personal columns of one table: how to erase each, and which time makes a row old."""

    table: str
    erase: dict[str, str]  # column -> SQL value written instead
    phone_column: str | None  # matches the subject's number (exact)
    aged_by: str  # SQL expression: when the row stopped being needed
    old_enough: str = "1"  # extra condition for retention (e.g. not pending)
    body_column: str | None = None  # raw text that may contain the number


NAMES = {"first_name": "NULL", "middle_name": "NULL", "last_name": "NULL",
         "customer_name": "NULL"}

PERSONAL: tuple[PersonalData, ...] = (
    PersonalData("payments", {"phone": f"'{ERASED_PHONE}'", **NAMES}, "phone",
                 "COALESCE(settled_at, created_at)", "status != 'pending'"),
    PersonalData("unmatched_payments", {"phone": "NULL", "body": "NULL", **NAMES}, "phone",
                 "received_at", body_column="body"),
    PersonalData("c2b_transactions", {"phone": "NULL", "msisdn": "NULL", "body": "NULL",
                                      **NAMES}, "msisdn", "received_at", body_column="body"),
    PersonalData("callback_rejections", {"body": "NULL"}, None, "received_at",
                 body_column="body"),
    PersonalData("stk_callback_hints", {"phone": "NULL"}, "phone", "received_at"),  # issue 3
)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _present(conn: sqlite3.Connection, spec: PersonalData) -> tuple[dict[str, str], set[str]]:
    columns = _columns(conn, spec.table)
    return {c: v for c, v in spec.erase.items() if c in columns}, columns


def _audit(conn: sqlite3.Connection, *, now: float, action: str, subject: str | None,
           rows: int, actor: str, detail: dict[str, Any]) -> None:
    conn.execute("INSERT INTO privacy_requests (at, action, subject, rows_affected, actor,"
                  " detail) VALUES (?, ?, ?, ?, ?, ?)",
                  (now, action, subject, rows, actor, json.dumps(detail, sort_keys=True)))


def apply_retention(db: Database, *, retention_days: int, now: float,
                    actor: str = "retention") -> int:
    """Erase personal data older than `retention_days`; returns the number of rows changed."""
    cutoff = now - retention_days * DAY
    counts: dict[str, int] = {}
    with db.write() as conn:
        for spec in PERSONAL:
            erase, columns = _present(conn, spec)
            if not erase:
                continue
            not_yet = " OR ".join(f"{c} IS NOT {v}" for c, v in erase.items())
            cursor = conn.execute(
                f"UPDATE {spec.table} SET {', '.join(f'{c} = {v}' for c, v in erase.items())}"
                f" WHERE {spec.aged_by} < ? AND ({spec.old_enough}) AND ({not_yet})",
                (cutoff,))
            counts[spec.table] = cursor.rowcount
        counts["rate_limits"] = conn.execute(
            "DELETE FROM rate_limits WHERE key GLOB ? AND window_start < ?",
            (PHONE_IN_KEY, max(cutoff, now - RATE_LIMIT_STALE))).rowcount
        total = sum(counts.values())
        if total:
            _audit(conn, now=now, action="retention", subject=None, rows=total, actor=actor,
                   detail={"retention_days": retention_days, "cutoff": cutoff, **counts})
    return total


def _subject_rows(conn: sqlite3.Connection, spec: PersonalData, columns: set[str],
                  phone: str) -> tuple[str, list[Any]]:
    """WHERE clause and parameters matching the subject's rows in this table."""
    clauses, params = [], []
    if spec.phone_column and spec.phone_column in columns:
        clauses.append(f"{spec.phone_column} = ?")
        params.append(phone)
    if spec.body_column and spec.body_column in columns:
        clauses.append(f"instr({spec.body_column}, ?) > 0")
        params.append(phone)
    return " OR ".join(clauses) or "0", params


def export_phone(db: Database, phone: str, *, now: float, actor: str) -> dict[str, Any]:
    """Everything held about `phone`, as JSON-able data; the request is audited."""
    msisdn = normalise_msisdn(phone)
    found: dict[str, list[dict[str, Any]]] = {}
    with db.write() as conn:
        for spec in PERSONAL:
            columns = _columns(conn, spec.table)
            if not columns:
                continue
            where, params = _subject_rows(conn, spec, columns, msisdn)
            found[spec.table] = [dict(row) for row in conn.execute(
                f"SELECT * FROM {spec.table} WHERE {where} ORDER BY rowid", params)]
        found["rate_limits"] = [dict(row) for row in conn.execute(
            "SELECT * FROM rate_limits WHERE instr(key, ?) > 0 ORDER BY key", (msisdn,))]
        payment_ids = [row["id"] for row in found.get("payments", [])]
        found["grants"] = _rows_for_payments(conn, "grants", payment_ids)
        found["events"] = _rows_for_payments(conn, "events", payment_ids)
        total = sum(len(rows) for rows in found.values())
        _audit(conn, now=now, action="export", subject=mask_msisdn(msisdn), rows=total,
               actor=actor, detail={table: len(rows) for table, rows in found.items()})
    return {"phone": msisdn, "exported_at": now, "data": found}


def _rows_for_payments(conn: sqlite3.Connection, table: str,
                       payment_ids: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(payment_ids), 500):
        chunk = payment_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows += [dict(r) for r in conn.execute(
            f"SELECT * FROM {table} WHERE payment_id IN ({marks}) ORDER BY id", chunk)]
    return rows


def erase_phone(db: Database, phone: str, *, now: float, actor: str) -> int:
    """Erase `phone` (and names, raw bodies holding it) everywhere; returns rows changed."""
    msisdn = normalise_msisdn(phone)
    counts: dict[str, int] = {}
    with db.write() as conn:
        for spec in PERSONAL:
            erase, columns = _present(conn, spec)
            if not erase:
                continue
            where, params = _subject_rows(conn, spec, columns, msisdn)
            cursor = conn.execute(
                f"UPDATE {spec.table} SET {', '.join(f'{c} = {v}' for c, v in erase.items())}"
                f" WHERE {where}", params)
            counts[spec.table] = cursor.rowcount
        counts["rate_limits"] = conn.execute(
            "DELETE FROM rate_limits WHERE instr(key, ?) > 0", (msisdn,)).rowcount
        total = sum(counts.values())
        _audit(conn, now=now, action="erase", subject=mask_msisdn(msisdn), rows=total,
               actor=actor, detail=counts)
    return total
