"""The appliance's side of the hub journal: read unshipped rows, record acks, health rows.

The journal rows themselves are written by SQLite triggers (store/sql/0016_hub_journal.sql)
inside the ledger's own transactions; this module only reads them, appends health rows and
moves `hub_state.shipped_seq`, which changes only on the hub's acknowledgement.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from hotspotd import __version__
from hotspotd.hub.protocol import MAX_BODY_BYTES
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

# Room for the batch's envelope around the events.
_EVENTS_BYTES = MAX_BODY_BYTES - 4096

# Each figure on its own, so a table renamed by a later release costs one figure, not health.
HEALTH_QUERIES = {
    "devices_online": "SELECT COUNT(*) FROM entitlements WHERE expires_at > ?",
    "sessions_online": "SELECT COUNT(*) FROM radius_sessions WHERE status = 'online'",
    "payments_waiting": "SELECT COUNT(*) FROM payments WHERE status = 'pending'",
    "unmatched_open": "SELECT COUNT(*) FROM unmatched_payments WHERE resolved_at IS NULL",
    "outbox_depth": "SELECT COUNT(*) FROM router_ops WHERE state = 'pending'",
    "journal_depth": "SELECT COUNT(*) FROM hub_journal"
                     " WHERE seq > (SELECT shipped_seq FROM hub_state)",
}


def shipped_seq(db: Database) -> int:
    return db.query_one("SELECT shipped_seq FROM hub_state WHERE id = 1")[0]


def pending_events(db: Database, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` events after seq `after`, in order, within the hub's byte limit."""
    events, size = [], 0
    for row in db.query("SELECT seq, at, kind, entity_id, body FROM hub_journal WHERE seq > ?"
                        " ORDER BY seq LIMIT ?", (after, limit)):
        size += len(row["body"]) + 120
        if events and size > _EVENTS_BYTES:
            break
        events.append({"seq": row["seq"], "at": row["at"], "kind": row["kind"],
                       "entity_id": row["entity_id"], "body": json.loads(row["body"])})
    return events


def record_ack(db: Database, acked: int, now: float) -> None:
    """The hub holds every seq up to `acked`: remember it (never moving backwards here)."""
    with db.write() as conn:
        conn.execute("UPDATE hub_state SET shipped_seq = MAX(shipped_seq, ?), last_error ="
                     " NULL, last_ok_at = ? WHERE id = 1", (acked, now))


def rewind_to(db: Database, acked: int) -> bool:
    """The hub says it holds only up to `acked` (it lost events: restored from a backup):
    resend from there if the journal still has the rows; False if it no longer does."""
    with db.write() as conn:
        first = conn.execute("SELECT MIN(seq) FROM hub_journal").fetchone()[0]
        if first is not None and first > acked + 1:
            return False
        conn.execute("UPDATE hub_state SET shipped_seq = ? WHERE id = 1", (acked,))
    return True


def renumber_after(db: Database, acked: int) -> int:
    """The hub holds other events under this appliance's unshipped seqs (the appliance's
    database was restored from a backup): give those rows the seqs right after `acked`, in
    their order, so they are neither dropped as replays nor leave a gap. Returns how many
    rows moved."""
    with db.write() as conn:
        local = conn.execute("SELECT shipped_seq FROM hub_state WHERE id = 1").fetchone()[0]
        rows = conn.execute("SELECT at, kind, entity_id, body FROM hub_journal"
                            " WHERE seq > ? ORDER BY seq", (local,)).fetchall()
        conn.execute("DELETE FROM hub_journal WHERE seq > ?", (local,))
        conn.executemany("INSERT INTO hub_journal (seq, at, kind, entity_id, body) VALUES"
                         " (?, ?, ?, ?, ?)", [(acked + number, *tuple(row)) for number, row
                                              in enumerate(rows, start=1)])
        # The next trigger-written row follows on directly: the journal has no holes.
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'hub_journal'")
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('hub_journal', ?)",
                     (acked + len(rows),))
        conn.execute("UPDATE hub_state SET shipped_seq = ? WHERE id = 1", (acked,))
    return len(rows)


def newest_seq(db: Database) -> int:
    row = db.query_one("SELECT seq FROM sqlite_sequence WHERE name = 'hub_journal'")
    return row[0] if row else 0


def record_error(db: Database, message: str) -> None:
    with db.write() as conn:
        conn.execute("UPDATE hub_state SET last_error = ? WHERE id = 1", (message[:500],))


def prune_shipped(db: Database, before: float) -> int:
    """Delete shipped rows older than `before` (kept until then so a hub restored from a
    backup can be re-filled)."""
    with db.write() as conn:
        return conn.execute("DELETE FROM hub_journal WHERE seq <= (SELECT shipped_seq FROM"
                            " hub_state) AND at < ?", (before,)).rowcount


def health_snapshot(db: Database, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {"version": __version__}
    for name, sql in HEALTH_QUERIES.items():
        try:
            params = (now,) if "?" in sql else ()
            body[name] = db.query_one(sql, params)[0]
        except sqlite3.Error as exc:
            log.debug("health figure %s unavailable: %s", name, exc)
            body[name] = None
    return body


def append_health(db: Database, now: float) -> None:
    """A `health` journal row: shipped like any other, kept as the hub's latest snapshot."""
    body = health_snapshot(db, now)
    with db.write() as conn:
        conn.execute("INSERT INTO hub_journal (at, kind, entity_id, body) VALUES"
                     " (?, 'health', NULL, ?)", (now, json.dumps(body)))
