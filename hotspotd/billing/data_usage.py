"""How much of a plan's data cap a device has left.

The router enforces a cap per session (`Mikrotik-Total-Limit`) and forgets its counters when
it reboots or the session ends; the daemon keeps every session's counters (accounting), so a
new session is given the cap minus what the device already used since its current time began
(the start of the earliest grant still running). The same figure feeds RFC 8908's
`bytes-remaining` on the captive-portal API.
"""

from __future__ import annotations

import sqlite3


def bytes_used(conn: sqlite3.Connection, mac: str, now: float) -> int:
    """Octets in + out of the device's sessions seen since its current time began."""
    started = conn.execute("SELECT MIN(starts_at) FROM grants WHERE mac = ? AND expires_at > ?",
                           (mac, now)).fetchone()[0]
    if started is None:
        return 0
    return int(conn.execute(
        "SELECT COALESCE(SUM(input_octets + output_octets), 0) FROM radius_sessions"
        " WHERE mac = ? AND updated_at >= ?", (mac, started)).fetchone()[0])


def bytes_left(conn: sqlite3.Connection, mac: str, cap: int, now: float) -> int:
    """`cap` minus what the device used (never below 0)."""
    return max(0, int(cap) - bytes_used(conn, mac, now))
