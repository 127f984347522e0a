"""Router operations as rows: what the outbox must do, queued inside a writer's transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
MAX_ATTEMPTS = 40


@dataclass(frozen=True)
class RouterOp:
    id: int
    mac: str
    ip: str | None
    action: str
    attempts: int


def enqueue_router_op(conn: sqlite3.Connection, *, mac: str, ip: str | None, action: str,
                      now: float) -> int:
    """Queue a router change (inside the caller's transaction). Returns its id."""
    cursor = conn.execute(
        "INSERT INTO router_ops (mac, ip, action, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?)", (mac, ip, action, now, now))
    return int(cursor.lastrowid or 0)
