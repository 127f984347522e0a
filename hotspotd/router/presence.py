"""Which device is behind an IP address right now, from what the router reported.

Used by the captive-portal API (RFC 8908) to answer a request that carries only the
client's source address. The freshest fact wins: an online RADIUS accounting session with
that Framed-IP-Address, else the device whose `devices.last_ip` it was most recently.
"""

from __future__ import annotations

import sqlite3


def device_for_ip(conn: sqlite3.Connection, ip: str) -> str | None:
    """Return the MAC (AA:BB:CC:DD:EE:FF) currently using `ip`, or None if unknown."""
    if not ip:
        return None
    row = conn.execute(
        "SELECT mac FROM radius_sessions WHERE framed_ip = ? AND status = 'online'"
        " AND mac IS NOT NULL ORDER BY updated_at DESC LIMIT 1", (ip,)).fetchone()
    if row is not None:
        return str(row[0])
    row = conn.execute(
        "SELECT mac FROM devices WHERE last_ip = ? ORDER BY last_seen DESC LIMIT 1",
        (ip,)).fetchone()
    return str(row[0]) if row is not None else None
