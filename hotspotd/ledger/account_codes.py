"""Short per-device account codes for paying from the M-Pesa menu (C2B).

A code is 5 characters from an alphabet without 0/O, 1/I/L (easy to read off a screen and
type on a feature phone). It is created on first use and never changes for that device.
"""

from __future__ import annotations

import secrets
import sqlite3
import time

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 5
_ATTEMPTS = 20


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalise_code(text: str) -> str:
    """What the customer typed, as stored: upper case, no spaces or dashes."""
    return "".join(ch for ch in str(text).upper() if ch not in " -.")


def account_code_for(conn: sqlite3.Connection, mac: str, now: float | None = None) -> str:
    """The device's account code, created (inside the caller's connection) on first call."""
    row = conn.execute("SELECT code FROM account_codes WHERE mac = ?", (mac,)).fetchone()
    if row is not None:
        return str(row[0])
    created_at = time.time() if now is None else now
    for _ in range(_ATTEMPTS):
        conn.execute("INSERT OR IGNORE INTO account_codes (code, mac, created_at)"
                     " VALUES (?, ?, ?)", (new_code(), mac, created_at))
        row = conn.execute("SELECT code FROM account_codes WHERE mac = ?", (mac,)).fetchone()
        if row is not None:
            return str(row[0])
    raise RuntimeError("could not allocate a unique account code")


def device_for_account_code(conn: sqlite3.Connection, code: str) -> str | None:
    """The MAC a code belongs to, or None."""
    row = conn.execute("SELECT mac FROM account_codes WHERE code = ?",
                       (normalise_code(code),)).fetchone()
    return str(row[0]) if row else None
