"""The owner UI's audit log: who did what, when, with the state before and after."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from hotspotd.store.db import Database


def record_audit(conn: sqlite3.Connection, *, at: float, username: str, action: str,
                 target: str | None = None, before: Any = None, after: Any = None,
                 source_ip: str | None = None) -> None:
    """Append one audit row inside the caller's transaction (it commits with the change)."""
    conn.execute(
        "INSERT INTO admin_audit (at, username, action, target, before, after, source_ip)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, username, action, target, _dump(before), _dump(after), source_ip))


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def recent_audit(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    rows = db.query("SELECT * FROM admin_audit ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(row) for row in rows]
