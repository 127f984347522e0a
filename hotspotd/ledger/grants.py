"""Grants and entitlements: paid time given to a device, stacked (invariant 4).

`grant_time` runs inside the caller's write transaction. The UNIQUE constraints on
`grants.payment_id` and `grants.receipt` make a second grant for the same payment or the
same M-Pesa receipt impossible even if two code paths race: the insert fails and the whole
transaction (status change, entitlement, router operation) rolls back with it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hotspotd.ledger.events import record_event
from hotspotd.ledger.router_ops import enqueue_router_op


@dataclass(frozen=True)
class Grant:
    id: int
    mac: str
    seconds: int
    starts_at: float
    expires_at: float


@dataclass(frozen=True)
class Entitlement:
    mac: str
    expires_at: float
    rate_limit: str | None
    plan_id: int | None
    data_cap_bytes: int | None = None  # non-None: a grant of this run is capped
    idle_timeout_seconds: int | None = None  # of the newest grant, as sold

    def seconds_remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


class DuplicateGrant(Exception):
    """This payment or receipt has been granted already."""


def grant_time(conn: sqlite3.Connection, *, mac: str, seconds: int, now: float,
               plan_id: int | None, rate_limit: str | None, source: str,
               payment_id: int | None = None, receipt: str | None = None,
               ip: str | None = None) -> Grant:
    """Add `seconds` to the device's entitlement and queue the router change.

    Time stacks: a device still entitled gets its expiry pushed back; an expired or new
    device starts now. Raises DuplicateGrant when the payment or receipt was granted before.
    """
    current = get_entitlement(conn, mac)
    running = current is not None and current.expires_at > now
    starts_at = max(now, current.expires_at) if current else now
    expires_at = starts_at + seconds
    data_cap, idle_timeout = _plan_terms(conn, plan_id)
    try:
        cursor = conn.execute(
            "INSERT INTO grants (mac, plan_id, payment_id, receipt, source, seconds, rate_limit,"
            " starts_at, expires_at, created_at, data_cap_bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mac, plan_id, payment_id, receipt, source, seconds, rate_limit, starts_at,
             expires_at, now, data_cap))
    except sqlite3.IntegrityError as exc:
        raise DuplicateGrant(f"already granted (payment {payment_id}, receipt {receipt})") from exc
    # The cap marker stays set while any grant of this run is capped (data_usage.py).
    marker = data_cap if data_cap or not running else (current.data_cap_bytes
                                                       if current else None)
    conn.execute(
        "INSERT INTO entitlements (mac, expires_at, rate_limit, plan_id, updated_at,"
        " data_cap_bytes, idle_timeout_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (mac) DO UPDATE SET expires_at = excluded.expires_at,"
        " rate_limit = excluded.rate_limit, plan_id = excluded.plan_id,"
        " updated_at = excluded.updated_at, data_cap_bytes = excluded.data_cap_bytes,"
        " idle_timeout_seconds = excluded.idle_timeout_seconds",
        (mac, expires_at, rate_limit, plan_id, now, marker, idle_timeout))
    grant = Grant(int(cursor.lastrowid or 0), mac, seconds, starts_at, expires_at)
    record_event(conn, now, "grant.created", payment_id=payment_id, mac=mac, grant_id=grant.id,
                 seconds=seconds, expires_at=expires_at, source=source, receipt=receipt)
    enqueue_router_op(conn, mac=mac, ip=ip, action="login", now=now)
    return grant


def _plan_terms(conn: sqlite3.Connection, plan_id: int | None) -> tuple[int | None, int | None]:
    """The plan's data cap and idle timeout now: what this grant is sold with."""
    if plan_id is None:
        return None, None
    row = conn.execute("SELECT data_cap_bytes, idle_timeout_seconds FROM plans WHERE id = ?",
                       (plan_id,)).fetchone()
    return (row[0], row[1]) if row is not None else (None, None)


def get_entitlement(conn: sqlite3.Connection, mac: str) -> Entitlement | None:
    row = conn.execute("SELECT * FROM entitlements WHERE mac = ?", (mac,)).fetchone()
    if row is None:
        return None
    return Entitlement(row["mac"], row["expires_at"], row["rate_limit"], row["plan_id"],
                       row["data_cap_bytes"], row["idle_timeout_seconds"])


def total_granted_seconds(conn: sqlite3.Connection, mac: str) -> int:
    return int(conn.execute("SELECT COALESCE(SUM(seconds), 0) FROM grants WHERE mac = ?",
                            (mac,)).fetchone()[0])
