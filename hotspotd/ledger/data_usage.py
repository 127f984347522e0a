"""How much data a device has left of what it bought.

Each grant carries its plan's data cap as sold (migration 0012). While a device's time runs,
its allowance is the sum of the caps of its grants still running (a stacked purchase adds its
cap), minus the octets in + out of every session the daemon has seen since the earliest of
those grants began; a running grant sold without a cap means no cap while it runs.

The router enforces a cap per session (`Mikrotik-Total-Limit`) and forgets its counters when
it reboots or the session ends; the daemon keeps every session's counters (accounting), so a
new session is given what is left. The same figure feeds RFC 8908's `bytes-remaining`.
"""

from __future__ import annotations

import sqlite3


def bytes_left(conn: sqlite3.Connection, mac: str, now: float) -> int | None:
    """Octets the device may still use (0 when used up), or None when it has no cap."""
    rows = conn.execute("SELECT starts_at, data_cap_bytes FROM grants"
                        " WHERE mac = ? AND expires_at > ?", (mac, now)).fetchall()
    if not rows or any(row[1] is None for row in rows):
        return None
    started = min(row[0] for row in rows)
    used = conn.execute(
        "SELECT COALESCE(SUM(input_octets + output_octets), 0) FROM radius_sessions"
        " WHERE mac = ? AND updated_at >= ?", (mac, started)).fetchone()[0]
    return max(0, sum(int(row[1]) for row in rows) - int(used))
