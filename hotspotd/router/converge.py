"""Make the router match the database for one device: the work behind an outbox row.

`login`: the device should be online with its time. Online already → a CoA-Request with
the new Session-Timeout (and the rate limit when the plan changed), named by User-Name +
Framed-IP-Address + Acct-Session-Id; on a NAK or no answer, the RouterOS API takes over
(remove the active host, log it in again). Not online → log in through the API, then read
the active list back (a router can accept a write and not apply it).

`disconnect`: a Disconnect-Request, then the active list is read back (a Disconnect-ACK
does not always mean the user is gone) and the API removes what is left.

Any failure raises `RouterError`; the outbox retries the row later.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hotspotd.radius.coa import CoaOutcome, SessionChange, SessionRef
from hotspotd.router.gateway import RouterError

log = logging.getLogger(__name__)

SESSION_NOT_FOUND = 503


class RouterPort(Protocol):
    """What convergence needs from the router (hotspotd.router.gateway.RouterGateway)."""

    def login_host(self, *, mac: str, ip: str, user: str, password: str) -> None: ...
    def find_active(self, mac: str) -> Any: ...
    def remove_active(self, mac: str) -> bool: ...


class CoaPort(Protocol):
    """What convergence needs from the CoA client (hotspotd.radius.coa.CoaClient)."""

    def change(self, session: SessionRef, change: SessionChange) -> CoaOutcome: ...
    def disconnect(self, session: SessionRef) -> CoaOutcome: ...


@dataclass(frozen=True)
class Wanted:
    """What the database says about a device now."""

    seconds_left: int
    rate_limit: str | None
    rate_changed: bool


@dataclass(frozen=True)
class Live:
    """The device's live session as last reported by RADIUS accounting."""

    ref: SessionRef
    started_at: float


def wanted_state(conn: sqlite3.Connection, mac: str, now: float) -> Wanted:
    """Time left (0 if none, expired or blocked), rate limit, and whether it changed (a
    CoA then carries it). Data cap and idle timeout reach the router in the Access-Accept."""
    row = conn.execute(
        "SELECT e.expires_at, e.rate_limit,"
        " EXISTS (SELECT 1 FROM blocked_macs b WHERE b.mac = e.mac) AS blocked"
        " FROM entitlements e WHERE e.mac = ?",
        (mac,)).fetchone()
    if row is None or row["blocked"]:
        return Wanted(0, None, False)
    rates = [r[0] for r in conn.execute(
        "SELECT rate_limit FROM grants WHERE mac = ? ORDER BY id DESC LIMIT 2", (mac,))]
    return Wanted(max(0, int(row["expires_at"] - now)), row["rate_limit"],
                  len(rates) == 2 and rates[0] != rates[1])


def live_sessions(conn: sqlite3.Connection, mac: str) -> list[Live]:
    rows = conn.execute(
        "SELECT user_name, framed_ip, session_id, started_at, nas_address FROM radius_sessions"
        " WHERE mac = ? AND status = 'online' AND framed_ip IS NOT NULL"
        " ORDER BY updated_at DESC", (mac,)).fetchall()
    return [Live(SessionRef(row["user_name"] or mac, row["framed_ip"], row["session_id"],
                            row["nas_address"]), row["started_at"]) for row in rows]


class Converger:
    """Applies `login` and `disconnect` for one device at a time (the outbox thread)."""

    def __init__(self, *, connection: Callable[[], sqlite3.Connection], router: RouterPort,
                 coa: CoaPort, mac_password: str, now: Callable[[], float],
                 mark_stopped: Callable[[str, str], None]) -> None:
        self._connection = connection
        self._router = router
        self._coa = coa
        self._mac_password = mac_password
        self._now = now
        self._mark_stopped = mark_stopped

    def login(self, mac: str, ip: str | None) -> str:
        now = self._now()
        conn = self._connection()
        wanted = wanted_state(conn, mac, now)
        if wanted.seconds_left <= 0:
            return "no time left: nothing to log in"
        for live in live_sessions(conn, mac):
            outcome = self._extend(live, wanted, now)
            if outcome.acked:
                return f"extended by CoA to {wanted.seconds_left}s left"
            if outcome.error_cause == SESSION_NOT_FOUND:
                self._mark_stopped(mac, "Lost-Service")
            log.info("router: CoA for %s: %s; using the API", mac, outcome)
            ip = ip or live.ref.framed_ip
            break
        return self._api_login(mac, ip or self._last_ip(conn, mac))

    def disconnect(self, mac: str) -> str:
        conn = self._connection()
        answers = []
        for live in live_sessions(conn, mac):
            answers.append(str(self._coa.disconnect(live.ref)))
        removed = self._router.remove_active(mac) if self._router.find_active(mac) else False
        if removed and self._router.find_active(mac) is not None:
            raise RouterError(f"{mac} is still active after removal")
        self._mark_stopped(mac, "Admin-Reset")
        via = f"Disconnect-Request: {', '.join(answers)}" if answers else "no RADIUS session"
        return f"{via}; {'removed through the API' if removed else 'not active'}"

    def _extend(self, live: Live, wanted: Wanted, now: float) -> CoaOutcome:
        # Session-Timeout counts from the login, as in the Access-Accept it replaces.
        elapsed = max(0, int(now - live.started_at))
        change = SessionChange(session_timeout=elapsed + wanted.seconds_left,
                               rate_limit=wanted.rate_limit if wanted.rate_changed else None)
        return self._coa.change(live.ref, change)

    def _api_login(self, mac: str, ip: str | None) -> str:
        if not ip:
            raise RouterError("the device's IP address is not known yet")
        if self._router.find_active(mac) is not None:
            self._router.remove_active(mac)  # a new Session-Timeout needs a new login
        self._router.login_host(mac=mac, ip=ip, user=mac, password=self._mac_password)
        if self._router.find_active(mac) is None:
            raise RouterError(f"login of {mac} accepted but not in the active list")
        return f"logged in {mac} at {ip} through the API"

    @staticmethod
    def _last_ip(conn: sqlite3.Connection, mac: str) -> str | None:
        row = conn.execute("SELECT last_ip FROM devices WHERE mac = ?", (mac,)).fetchone()
        return row["last_ip"] if row else None
