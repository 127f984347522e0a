"""The hub's side of the stream: check a batch, store its new events once, update projections.

Everything for one batch happens in one PostgreSQL transaction that starts by locking the
appliance's row (FOR UPDATE): two copies of the same batch (a retry racing the original)
are serialised, the second sees the first's `shipped_seq` and is answered as a replay.
A batch is stored only if it continues exactly where the hub stands, so `shipped_seq` means
"every seq up to here is stored, each once" and the appliance can resume from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hotspotd.hub.pgstore import HubStore
from hotspotd.hub.projections import project
from hotspotd.hub.protocol import EVENT_KINDS, MAX_EVENTS, BatchRefused, digest, key_hash

log = logging.getLogger(__name__)


def authenticate(conn: psycopg.Connection, bearer: str | None) -> dict[str, Any]:
    """The appliance row a key belongs to, locked for this transaction; refused otherwise."""
    if not bearer:
        raise BatchRefused(401, "no_key", "send Authorization: Bearer <appliance key>")
    row = conn.execute("SELECT id, name, revoked_at, revoked_reason, shipped_seq"
                       " FROM appliances WHERE key_hash = %s FOR UPDATE",
                       (key_hash(bearer),)).fetchone()
    if row is None:
        raise BatchRefused(401, "unknown_key", "this key is not enrolled at this hub")
    if row["revoked_at"] is not None:
        log.warning("refused a request from revoked appliance %s (%s)", row["id"], row["name"])
        raise BatchRefused(403, "revoked", "this appliance's key was revoked"
                           + (f": {row['revoked_reason']}" if row["revoked_reason"] else ""))
    return row


def check_shape(batch: Any) -> tuple[int, int, int, list[dict[str, Any]]]:
    """(appliance, first_seq, last_seq, events) of a well-formed batch; 400 with why if not."""
    if not isinstance(batch, dict):
        raise BatchRefused(400, "bad_batch", "the body must be a JSON object")
    try:
        appliance, first, last = (int(batch["appliance"]), int(batch["first_seq"]),
                                  int(batch["last_seq"]))
        events, claimed = batch["events"], str(batch["digest"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BatchRefused(400, "bad_batch", f"missing or malformed field {exc}") from None
    if not isinstance(events, list) or not events:
        raise BatchRefused(400, "bad_batch", "events must be a non-empty list")
    if len(events) > MAX_EVENTS:
        raise BatchRefused(400, "too_many_events", f"at most {MAX_EVENTS} events a batch")
    if digest(events) != claimed:
        raise BatchRefused(400, "digest_mismatch", "the digest does not match the events"
                           " (SHA-256 of their canonical JSON)")
    for event in events:
        _check_event(event)
    seqs = [event["seq"] for event in events]
    if seqs != list(range(first, last + 1)) or first < 1:
        raise BatchRefused(400, "not_contiguous", f"seqs must run {first}..{last} with no"
                           " gap, repeat or disorder")
    return appliance, first, last, events


def _check_event(event: Any) -> None:
    if (not isinstance(event, dict) or not isinstance(event.get("seq"), int)
            or event.get("kind") not in EVENT_KINDS or not isinstance(event.get("body"), dict)
            or not isinstance(event.get("at"), int | float)):
        raise BatchRefused(400, "bad_event", "each event needs an integer seq, a known kind,"
                           " a number at and an object body")


def ingest(store: HubStore, bearer: str | None, batch: Any,
           now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Apply one batch; returns the JSON answer (`acked`, ...) or raises BatchRefused."""
    appliance_id, first, last, events = check_shape(batch)
    with store.transaction() as conn:
        row = authenticate(conn, bearer)
        if row["id"] != appliance_id:
            raise BatchRefused(403, "wrong_appliance", "this key belongs to another appliance")
        shipped = row["shipped_seq"]
        if first <= shipped:
            check_same_as_stored(conn, appliance_id, events, shipped)
        if last <= shipped:  # a replay: nothing to store, but the appliance is alive
            conn.execute("UPDATE appliances SET last_heard = %s WHERE id = %s",
                         (now(), appliance_id))
            return {"acked": shipped, "duplicate": True, "stored": 0}
        if first > shipped + 1:
            raise BatchRefused(409, "gap", f"the hub has every event up to {shipped}; resend"
                               f" from {shipped + 1}", acked=shipped)
        fresh = [event for event in events if event["seq"] > shipped]
        store_events(conn, appliance_id, fresh, now())
        conn.execute("UPDATE appliances SET shipped_seq = %s, last_heard = %s WHERE id = %s",
                     (last, now(), appliance_id))
    return {"acked": last, "duplicate": False, "stored": len(fresh)}


def check_same_as_stored(conn: psycopg.Connection, appliance_id: int,
                         events: list[dict[str, Any]], shipped: int) -> None:
    """A resent seq must carry what the hub stored under it. If not, the appliance numbered
    new events with seqs the hub already has (its database restored from a backup): 409
    `diverged`, so it renumbers them after `acked` instead of their being dropped."""
    resent = {event["seq"]: event for event in events if event["seq"] <= shipped}
    stored = conn.execute("SELECT seq, kind, body FROM events WHERE appliance_id = %s"
                          " AND seq BETWEEN %s AND %s", (appliance_id, min(resent),
                                                         max(resent))).fetchall()
    for row in stored:
        event = resent[row["seq"]]
        if row["kind"] != event["kind"] or row["body"] != event["body"]:
            raise BatchRefused(409, "diverged", f"seq {row['seq']} differs from what the hub"
                               f" stored; number new events after {shipped}", acked=shipped)


def store_events(conn: psycopg.Connection, appliance_id: int, events: list[dict[str, Any]],
                 received_at: float) -> None:
    """Insert the events (each seq once: ON CONFLICT DO NOTHING) and fold them into the
    projections, in seq order so the latest state of a row wins."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO events (appliance_id, seq, at, kind, entity_id, body, received_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(appliance_id, event["seq"], event["at"], event["kind"],
              None if event.get("entity_id") is None else str(event["entity_id"]),
              Jsonb(event["body"]), received_at) for event in events])
    try:
        project(conn, appliance_id, events)
    except (KeyError, TypeError, psycopg.DataError) as exc:
        raise BatchRefused(400, "bad_event", f"an event's body lacks or mistypes {exc}"
                           ) from None
