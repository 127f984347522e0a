"""Router operations as rows: what the outbox must do, queued inside a writer's transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
DISCONNECT_MAX_DELAY = 3.0  # an expired device must be off within the enforcement bound
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


def retry_delay(action: str, attempts: int) -> float:
    """Backoff before attempt `attempts + 1`; disconnects retry quickly, always."""
    delay = RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)]
    return min(delay, DISCONNECT_MAX_DELAY) if action == "disconnect" else delay
