"""Router operations as rows: what the outbox must do, queued inside a writer's transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hotspotd.ledger.events import record_event
from hotspotd.store.db import Database

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


def pending_count(db: Database) -> int:
    row = db.query_one("SELECT COUNT(*) FROM router_ops WHERE state = 'pending'")
    return int(row[0]) if row else 0


def due_ops(db: Database, now: float) -> list[RouterOp]:
    """Pending operations whose next attempt is due, oldest first."""
    rows = db.query("SELECT id, mac, ip, action, attempts FROM router_ops WHERE state ="
                    " 'pending' AND next_attempt_at <= ? ORDER BY id", (now,))
    return [RouterOp(row["id"], row["mac"], row["ip"], row["action"], row["attempts"])
            for row in rows]


def is_settled(db: Database, op_id: int) -> bool:
    """Done or given up on (or gone): another pass finished it meanwhile."""
    row = db.query_one("SELECT state FROM router_ops WHERE id = ?", (op_id,))
    return row is None or row["state"] != "pending"


def finish_op(conn: sqlite3.Connection, op: RouterOp, detail: str, now: float) -> None:
    """Done, with every operation of the same kind queued for the device before it (one
    login covers them all); the event says what the router was told."""
    conn.execute("UPDATE router_ops SET state = 'done', done_at = ?, attempts = attempts + 1"
                 " WHERE state = 'pending' AND mac = ? AND action = ? AND id <= ?",
                 (now, op.mac, op.action, op.id))
    record_event(conn, now, f"router.{op.action}", mac=op.mac, op_id=op.id, detail=detail)


def retry_op(conn: sqlite3.Connection, op: RouterOp, error: str, now: float) -> int:
    """Count a failed attempt: try again after the backoff, or give up after MAX_ATTEMPTS.
    Returns the attempts made."""
    attempts = op.attempts + 1
    state = "failed" if attempts >= MAX_ATTEMPTS else "pending"
    conn.execute("UPDATE router_ops SET attempts = ?, state = ?, next_attempt_at = ?,"
                 " last_error = ? WHERE id = ?",
                 (attempts, state, now + retry_delay(op.action, attempts), error, op.id))
    if state == "failed":
        record_event(conn, now, "router.gave_up", mac=op.mac, op_id=op.id, error=error)
    return attempts
