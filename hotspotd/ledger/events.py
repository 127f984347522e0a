"""The event log: one row per thing that happened to a payment or a device."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def record_event(conn: sqlite3.Connection, at: float, kind: str, *,
                 payment_id: int | None = None, mac: str | None = None,
                 **detail: Any) -> None:
    """Append an event inside the caller's transaction (so it commits with the change)."""
    conn.execute(
        "INSERT INTO events (at, kind, payment_id, mac, detail) VALUES (?, ?, ?, ?, ?)",
        (at, kind, payment_id, mac, json.dumps(detail, sort_keys=True) if detail else None),
    )


def events_for_payment(conn: sqlite3.Connection, payment_id: int) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT at, kind, detail FROM events WHERE payment_id = ? ORDER BY id",
                        (payment_id,)).fetchall()
    return [{"at": r["at"], "kind": r["kind"],
             "detail": json.loads(r["detail"]) if r["detail"] else {}} for r in rows]
