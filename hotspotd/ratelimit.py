"""Persistent rate limits for what anyone on the WiFi can trigger (voucher and recovery
attempts, owner logins; STK pushes are limited from the payments table, mpesa.push_limits).

A fixed window per key, counted in SQLite so a restart does not reset it. Keys are strings
chosen by the caller, e.g. `voucher:mac:AA:BB:...` or `admin-login:source:10.0.0.7`. A key
holding a phone number (`...:phone:2547...`, as earlier versions' push limits wrote) is
personal data: `ops.privacy` exports and erases such rows with the number and drops them
after a day.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hotspotd.store.db import Database


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds until the window resets (0 when allowed)
    count: int


class RateLimiter:
    def __init__(self, db: Database, now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._now = now

    def hit(self, key: str, *, limit: int, window: float) -> Verdict:
        """Count one attempt for `key`; refuse when `limit` attempts were made this window."""
        now = self._now()
        with self._db.write() as conn:
            row = conn.execute("SELECT window_start, count FROM rate_limits WHERE key = ?",
                               (key,)).fetchone()
            if row is None or now - row["window_start"] >= window:
                conn.execute("INSERT INTO rate_limits (key, window_start, count)"
                             " VALUES (?, ?, 1) ON CONFLICT (key) DO UPDATE SET"
                             " window_start = excluded.window_start, count = 1", (key, now))
                return Verdict(True, 0.0, 1)
            if row["count"] >= limit:
                return Verdict(False, row["window_start"] + window - now, row["count"])
            conn.execute("UPDATE rate_limits SET count = count + 1 WHERE key = ?", (key,))
            return Verdict(True, 0.0, row["count"] + 1)

    def peek(self, key: str, *, limit: int, window: float) -> Verdict:
        """Would the next attempt be allowed? Counts nothing."""
        now = self._now()
        row = self._db.query_one("SELECT window_start, count FROM rate_limits WHERE key = ?",
                                 (key,))
        if row is None or now - row["window_start"] >= window or row["count"] < limit:
            return Verdict(True, 0.0, row["count"] if row else 0)
        return Verdict(False, row["window_start"] + window - now, row["count"])

    def reset(self, key: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key = ?", (key,))
