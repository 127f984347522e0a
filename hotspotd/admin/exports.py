"""CSV exports of payments and sessions for a date range (phone numbers masked by default)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

from hotspotd.daraja.msisdn import mask_msisdn
from hotspotd.store.db import Database

PAYMENT_COLUMNS = ("id", "created_at", "status", "amount", "paid_amount", "phone", "mac",
                   "plan", "receipt", "result_code", "result_desc", "settled_at")
SESSION_COLUMNS = ("session_id", "mac", "framed_ip", "status", "started_at", "stopped_at",
                   "session_time", "input_octets", "output_octets", "terminate_cause")


def iso(at: float | None, offset_minutes: int) -> str:
    if at is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at + offset_minutes * 60))


def _rows_to_csv(header: tuple[str, ...], rows: Iterator[list[object]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 32_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def payments_csv(db: Database, start: float, end: float, *, offset_minutes: int,
                 full_phones: bool = False) -> Iterator[str]:
    cursor = db.connection().execute(
        "SELECT p.*, pl.name AS plan FROM payments p LEFT JOIN plans pl ON pl.id = p.plan_id"
        " WHERE p.created_at >= ? AND p.created_at < ? ORDER BY p.id", (start, end))

    def rows() -> Iterator[list[object]]:
        for r in cursor:
            yield [r["id"], iso(r["created_at"], offset_minutes), r["status"], r["amount"],
                   r["paid_amount"], r["phone"] if full_phones else mask_msisdn(r["phone"]),
                   r["mac"], r["plan"], r["receipt"], r["result_code"], r["result_desc"],
                   iso(r["settled_at"], offset_minutes)]

    return _rows_to_csv(PAYMENT_COLUMNS, rows())


def sessions_csv(db: Database, start: float, end: float, *,
                 offset_minutes: int) -> Iterator[str]:
    cursor = db.connection().execute(
        "SELECT * FROM radius_sessions WHERE started_at >= ? AND started_at < ?"
        " ORDER BY started_at", (start, end))

    def rows() -> Iterator[list[object]]:
        for r in cursor:
            yield [r["session_id"], r["mac"], r["framed_ip"], r["status"],
                   iso(r["started_at"], offset_minutes), iso(r["stopped_at"], offset_minutes),
                   r["session_time"], r["input_octets"], r["output_octets"],
                   r["terminate_cause"]]

    return _rows_to_csv(SESSION_COLUMNS, rows())
