"""The hotspot's state: active sessions (`/ip/hotspot/active`) and hosts seen (`/ip/hotspot/host`).

Times come from an injected clock; traffic counters grow with uptime at fixed rates so
the numbers are plausible and reproducible.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from hotspotd.router.durations import format_duration

# Simulated traffic per second of uptime: the client uploads little and downloads more.
UPLOAD_BYTES_PER_SECOND = 1_500
DOWNLOAD_BYTES_PER_SECOND = 12_000
BYTES_PER_PACKET = 600


class AlreadyLoggedIn(Exception):
    """A host with this MAC address already has an active session."""


@dataclass(frozen=True)
class Counters:
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int


@dataclass
class Session:
    """One active hotspot session, with what RADIUS told the router about it."""

    user: str
    mac: str
    ip: str
    server: str
    login_by: str
    acct_session_id: str
    nas_port: int
    logged_in_at: float
    session_timeout: int | None = None
    idle_timeout: int | None = None
    rate_limit: str | None = None
    interim_interval: int | None = None
    radius_class: bytes | None = None
    total_limit: int | None = None
    number: int = 0
    next_interim_at: float | None = field(default=None)

    @property
    def id(self) -> str:
        return f"*{self.number:X}"

    def uptime(self, now: float) -> int:
        return max(0, int(now - self.logged_in_at))

    def time_left(self, now: float) -> int | None:
        if self.session_timeout is None:
            return None
        return max(0, self.session_timeout - self.uptime(now))

    def over_limit(self, now: float) -> bool:
        """True when the data cap (Mikrotik-Total-Limit) is used up."""
        if self.total_limit is None:
            return False
        counters = self.counters(now)
        return counters.bytes_in + counters.bytes_out >= self.total_limit

    def counters(self, now: float) -> Counters:
        elapsed = max(0.0, now - self.logged_in_at)
        bytes_in = int(elapsed * UPLOAD_BYTES_PER_SECOND)
        bytes_out = int(elapsed * DOWNLOAD_BYTES_PER_SECOND)
        return Counters(bytes_in, bytes_out, bytes_in // BYTES_PER_PACKET,
                        bytes_out // BYTES_PER_PACKET)

    def row(self, now: float) -> dict[str, str]:
        """The session as `/ip/hotspot/active/print` shows it."""
        counters = self.counters(now)
        row = {
            ".id": self.id, "server": self.server, "user": self.user, "domain": "",
            "address": self.ip, "mac-address": self.mac, "login-by": self.login_by,
            "uptime": format_duration(self.uptime(now)), "idle-time": "0s",
            "bytes-in": str(counters.bytes_in), "bytes-out": str(counters.bytes_out),
            "packets-in": str(counters.packets_in), "packets-out": str(counters.packets_out),
            "radius": "true", "blocked": "false",
        }
        left = self.time_left(now)
        if left is not None:
            row["session-time-left"] = format_duration(left)
        if self.idle_timeout is not None:
            row["idle-timeout"] = format_duration(self.idle_timeout)
        return row


@dataclass
class Host:
    """A device the hotspot has seen (`/ip/hotspot/host`)."""

    number: int
    mac: str
    ip: str
    server: str
    first_seen: float

    def row(self, now: float, authorized: bool) -> dict[str, str]:
        return {
            ".id": f"*{self.number:X}", "mac-address": self.mac, "address": self.ip,
            "to-address": self.ip, "server": self.server,
            "uptime": format_duration(max(0, int(now - self.first_seen))),
            "idle-time": "0s", "authorized": str(authorized).lower(), "bypassed": "false",
            "dynamic": "true",
        }


class HotspotTable:
    """Thread-safe active sessions and hosts; `.id` numbers only grow."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}  # by MAC
        self._hosts: dict[str, Host] = {}  # by MAC
        self._last_session_number = 0
        self._last_host_number = 0

    def see_host(self, mac: str, ip: str, server: str) -> None:
        """The hotspot sees `mac` at `ip`. An address belongs to one host: another host
        that held it has left (its DHCP lease went to this one)."""
        with self._lock:
            for other in [m for m, h in self._hosts.items() if h.ip == ip and m != mac]:
                del self._hosts[other]
            host = self._hosts.get(mac)
            if host is None:
                self._last_host_number += 1
                self._hosts[mac] = Host(self._last_host_number, mac, ip, server, self.clock())
            else:
                host.ip = ip

    def forget_host(self, mac: str) -> bool:
        """The device left the network (its lease ended): the host row goes."""
        with self._lock:
            return self._hosts.pop(mac, None) is not None

    def mac_for_ip(self, ip: str) -> str | None:
        with self._lock:
            for host in self._hosts.values():
                if host.ip == ip:
                    return host.mac
            return None

    def ensure_not_active(self, mac: str) -> None:
        with self._lock:
            if mac in self._sessions:
                raise AlreadyLoggedIn(mac)

    def add(self, session: Session) -> Session:
        with self._lock:
            if session.mac in self._sessions:
                raise AlreadyLoggedIn(session.mac)
            self._last_session_number += 1
            session.number = self._last_session_number
            if session.interim_interval:
                session.next_interim_at = session.logged_in_at + session.interim_interval
            self._sessions[session.mac] = session
            return session

    def remove_by_id(self, session_id: str) -> Session | None:
        with self._lock:
            for mac, session in self._sessions.items():
                if session.id == session_id:
                    return self._sessions.pop(mac)
            return None

    def find_session(self, user: str, ip: str, acct_session_id: str | None) -> Session | None:
        """The session a CoA names: User-Name + Framed-IP (+ Acct-Session-Id when sent)."""
        with self._lock:
            for session in self._sessions.values():
                if session.user.upper() == user.upper() and session.ip == ip and (
                        acct_session_id is None or acct_session_id == session.acct_session_id):
                    return session
            return None

    def clear_sessions(self) -> None:
        """A reboot: every session is gone, without accounting."""
        with self._lock:
            self._sessions.clear()

    def find(self, mac: str) -> Session | None:
        with self._lock:
            return self._sessions.get(mac)

    def sessions(self) -> list[Session]:
        with self._lock:
            return sorted(self._sessions.values(), key=lambda s: s.number)

    def rows(self) -> list[dict[str, str]]:
        now = self.clock()
        return [session.row(now) for session in self.sessions()]

    def host_rows(self) -> list[dict[str, str]]:
        now = self.clock()
        with self._lock:
            hosts = sorted(self._hosts.values(), key=lambda h: h.number)
            active = set(self._sessions)
        return [host.row(now, host.mac in active) for host in hosts]

    def expire(self, now: float) -> list[Session]:
        """Remove and return the sessions whose time has run out."""
        with self._lock:
            ended = [s for s in self._sessions.values()
                     if s.time_left(now) == 0 or s.over_limit(now)]
            for session in ended:
                del self._sessions[session.mac]
            return ended

    def due_interims(self, now: float) -> list[Session]:
        """Return sessions due an Interim-Update and move their next time on."""
        due = []
        with self._lock:
            for session in self._sessions.values():
                if session.next_interim_at is not None and now >= session.next_interim_at:
                    due.append(session)
                    while session.next_interim_at <= now:
                        session.next_interim_at += session.interim_interval or 1
        return due
