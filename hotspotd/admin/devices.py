"""Devices as the owner sees them: online now, entitled, blocked, and session history."""

from __future__ import annotations

import sqlite3
from typing import Any

from hotspotd.store.db import Database


def devices_now(db: Database, now: float) -> list[dict[str, Any]]:
    """Devices online now or with time left: IP, MAC, plan, time left, data used."""
    rows = db.query(
        "SELECT d.mac, COALESCE(s.framed_ip, d.last_ip) AS ip, e.expires_at, p.name AS plan,"
        " s.status, s.input_octets, s.output_octets, s.started_at, b.reason AS blocked"
        " FROM (SELECT mac FROM entitlements WHERE expires_at > ?"
        "       UNION SELECT mac FROM radius_sessions WHERE status = 'online' AND mac IS NOT NULL"
        "      ) AS m"
        " LEFT JOIN devices d ON d.mac = m.mac"
        " LEFT JOIN entitlements e ON e.mac = m.mac"
        " LEFT JOIN plans p ON p.id = e.plan_id"
        " LEFT JOIN radius_sessions s ON s.mac = m.mac AND s.status = 'online'"
        " LEFT JOIN blocked_macs b ON b.mac = m.mac"
        " ORDER BY e.expires_at DESC LIMIT 500", (now,))
    return [_device(row, now) for row in rows if row["mac"]]


def _device(row: sqlite3.Row, now: float) -> dict[str, Any]:
    data = dict(row)
    data["seconds_left"] = max(0, int((row["expires_at"] or 0) - now))
    data["bytes_used"] = (row["input_octets"] or 0) + (row["output_octets"] or 0)
    data["online"] = row["status"] == "online"
    return data


def session_history(db: Database, limit: int = 100) -> list[sqlite3.Row]:
    return db.query("SELECT * FROM radius_sessions ORDER BY started_at DESC LIMIT ?", (limit,))


def blocked(db: Database) -> list[sqlite3.Row]:
    return db.query("SELECT * FROM blocked_macs ORDER BY blocked_at DESC")
