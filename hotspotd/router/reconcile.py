"""Drift repair: the expiry enforcer and the periodic reconcile, both writing outbox rows.

`enforce_expiry` (every few seconds, one indexed query, no network): a device RADIUS
accounting reports online whose time ran out, or that the owner blocked, gets a
`disconnect` row. So a device is off within a bounded time of its expiry even if the
router missed its Session-Timeout.

`reconcile` (less often; reads the router): every active host without time is
disconnected; every host the hotspot sees that has time and is not active is logged in;
sessions the database believes online and the router no longer has are closed.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol

from hotspotd.ledger.router_ops import enqueue_router_op
from hotspotd.macs import normalise_mac

log = logging.getLogger(__name__)


class RouterView(Protocol):
    def active_hosts(self, *, fields: str | None = None) -> list[Any]: ...
    def present_hosts(self) -> list[tuple[str, str]]: ...


EXPIRED_ONLINE = (
    "SELECT DISTINCT s.mac FROM radius_sessions s"
    " LEFT JOIN entitlements e ON e.mac = s.mac"
    " WHERE s.status = 'online' AND s.mac IS NOT NULL"
    " AND (e.expires_at IS NULL OR e.expires_at <= ?"
    "      OR EXISTS (SELECT 1 FROM blocked_macs b WHERE b.mac = s.mac))"
    " AND NOT EXISTS (SELECT 1 FROM router_ops o WHERE o.mac = s.mac"
    "                 AND o.action = 'disconnect' AND o.state = 'pending')")


def expired_online(conn: sqlite3.Connection, now: float) -> list[str]:
    """Online devices without time and without a disconnect queued (a read)."""
    return [row[0] for row in conn.execute(EXPIRED_ONLINE, (now,))]


def enforce_expiry(conn: sqlite3.Connection, now: float) -> list[str]:
    """Queue a disconnect for every online device without time (inside a transaction)."""
    macs = expired_online(conn, now)
    for mac in macs:
        enqueue_router_op(conn, mac=mac, ip=None, action="disconnect", now=now)
    return macs


def with_time(conn: sqlite3.Connection, now: float) -> set[str]:
    """Every device with time left now, as `wanted_state` counts it (whole seconds left,
    not blocked): one query instead of two per device the router lists."""
    return {row[0] for row in conn.execute(
        "SELECT mac FROM entitlements e WHERE e.expires_at - ? >= 1"
        " AND NOT EXISTS (SELECT 1 FROM blocked_macs b WHERE b.mac = e.mac)", (now,))}


def pending_ops(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    return {(row[0], row[1]) for row in conn.execute(
        "SELECT mac, action FROM router_ops WHERE state = 'pending'")}


def reconcile(conn: sqlite3.Connection, router: RouterView, now: float,
              *, read_started_at: float) -> dict[str, int]:
    """Compare the router's lists (read just before) with the database; queue the fixes.

    `read_started_at` is when the router was read: sessions that started after it are
    left alone.
    """
    active = {normalise_mac(host.mac): host for host in router.active_hosts() if host.mac}
    present = router.present_hosts()
    entitled, pending = with_time(conn, now), pending_ops(conn)
    fixes = {"disconnect": 0, "login": 0, "closed": 0}
    for mac in active:
        if mac not in entitled and (mac, "disconnect") not in pending:
            enqueue_router_op(conn, mac=mac, ip=None, action="disconnect", now=now)
            fixes["disconnect"] += 1
    for raw_mac, ip in present:
        mac = normalise_mac(raw_mac)
        if mac in active or not ip or (mac, "login") in pending:
            continue
        if mac in entitled:
            enqueue_router_op(conn, mac=mac, ip=ip, action="login", now=now)
            pending.add((mac, "login"))
            fixes["login"] += 1
    fixes["closed"] = _close_missing(conn, set(active), now, read_started_at)
    return fixes


def _close_missing(conn: sqlite3.Connection, active: set[str], now: float,
                   read_started_at: float) -> int:
    rows = conn.execute("SELECT nas_address, session_id, mac FROM radius_sessions"
                        " WHERE status = 'online' AND started_at < ?",
                        (read_started_at,)).fetchall()
    closed = 0
    for row in rows:
        if row["mac"] not in active:
            conn.execute("UPDATE radius_sessions SET status = 'stopped', stopped_at = ?,"
                         " terminate_cause = COALESCE(terminate_cause, 'Lost-Service')"
                         " WHERE nas_address = ? AND session_id = ?",
                         (now, row["nas_address"], row["session_id"]))
            closed += 1
    return closed


class Reconciler:
    """Runs `enforce_expiry` and `reconcile` on their intervals from the outbox thread."""

    def __init__(self, *, write: Callable[[], Any], read: Callable[[], sqlite3.Connection],
                 router: RouterView,
                 now: Callable[[], float], clock: Callable[[], float],
                 enforce_interval: float, reconcile_interval: float) -> None:
        self._write, self._read = write, read
        self._router = router
        self._now = now
        self._clock = clock
        self._enforce_interval = enforce_interval
        self._reconcile_interval = reconcile_interval
        self._next_enforce = 0.0
        self._next_reconcile = 0.0
        self.last_fixes: dict[str, int] = {}

    def due(self) -> bool:
        """Run whatever is due; True when something was queued."""
        queued = False
        tick = self._clock()
        if tick >= self._next_enforce:
            self._next_enforce = tick + self._enforce_interval
            # A read first: nearly every pass finds nobody, and then takes no write lock.
            if expired_online(self._read(), self._now()):
                with self._write() as conn:
                    queued = bool(enforce_expiry(conn, self._now()))
        if tick >= self._next_reconcile:
            self._next_reconcile = tick + self._reconcile_interval
            queued = self.reconcile_now() or queued
        return queued

    def reconcile_now(self) -> bool:
        read_started_at = self._now()
        try:
            # Only the MACs: 2,000 full rows every round cost the outbox most of its CPU.
            active = self._router.active_hosts(fields="mac-address")
            present = self._router.present_hosts()
        except Exception as error:  # RouterError and the like: try again next interval
            log.warning("router reconcile skipped: %s", error)
            return False
        snapshot = _Snapshot(active, present)
        with self._write() as conn:
            self.last_fixes = reconcile(conn, snapshot, self._now(),
                                        read_started_at=read_started_at)
        if any(self.last_fixes.values()):
            log.info("router reconcile: %s", self.last_fixes)
        return bool(self.last_fixes["disconnect"] or self.last_fixes["login"])


class _Snapshot:
    """The router's lists as read once, so the transaction does no network I/O."""

    def __init__(self, active: list[Any], present: list[tuple[str, str]]) -> None:
        self._active = active
        self._present = present

    def active_hosts(self, *, fields: str | None = None) -> list[Any]:
        return self._active

    def present_hosts(self) -> list[tuple[str, str]]:
        return self._present
