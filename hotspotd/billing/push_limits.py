"""Abuse limits on STK pushes: anyone on the WiFi can reach the portal.

Per device and per phone: at most `per_device` / `per_phone` pushes per `window` seconds;
after `cancel_limit` cancelled prompts on one phone within `cancel_cooldown` seconds, that
phone gets no prompt until the cooldown ends (someone is pushing to a stranger who keeps
cancelling). Counted in SQLite through `RateLimiter`, so a restart does not reset them.
The owner's Settings page can change the limits at run time (table `settings`, keys
`limits.*`): they are read at each check, over the configured ones.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, replace

from hotspotd.billing.customer_messages import LIMITED_CODE, customer_message
from hotspotd.billing.errors import BillingError
from hotspotd.ratelimit import RateLimiter


class PushLimited(BillingError):
    code = "too_many_requests"
    status = 429
    result_code = LIMITED_CODE  # for the customer's words in another language

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PushLimits:
    per_device: int = 5
    per_phone: int = 5
    window: float = 600.0
    cancel_limit: int = 3
    cancel_cooldown: float = 600.0


# settings key (owner UI) -> PushLimits field
SETTING_FIELDS = {"limits.push_per_device": "per_device", "limits.push_per_phone": "per_phone",
                  "limits.push_window_seconds": "window", "limits.cancel_limit": "cancel_limit",
                  "limits.cancel_cooldown_seconds": "cancel_cooldown"}


def with_stored_settings(conn: sqlite3.Connection, limits: PushLimits) -> PushLimits:
    """`limits` with the owner's stored settings applied (already checked when saved)."""
    rows = conn.execute("SELECT key, value FROM settings WHERE key LIKE 'limits.%'").fetchall()
    changes = {SETTING_FIELDS[key]: json.loads(value) for key, value in rows
               if key in SETTING_FIELDS}
    for name in ("window", "cancel_cooldown"):
        if name in changes:
            changes[name] = float(changes[name])
    return replace(limits, **changes) if changes else limits


class PushGuard:
    def __init__(self, limiter: RateLimiter, limits: PushLimits) -> None:
        self._limiter = limiter
        self._limits = limits

    @property
    def limits(self) -> PushLimits:
        """The limits in force now: configured, with the owner's settings over them."""
        db = getattr(self._limiter, "_db", None)  # the limiter's database holds the settings
        if db is None:
            return self._limits
        return with_stored_settings(db.connection(), self._limits)

    def check(self, *, mac: str, phone: str) -> None:
        """Count one push for this device and phone, or raise PushLimited (nothing counted
        for the phone when the device is already over its limit)."""
        limits = self.limits
        cooldown = self._limiter.peek(f"push:cancel:{phone}", limit=limits.cancel_limit,
                                      window=limits.cancel_cooldown)
        if not cooldown.allowed:
            raise _limited(cooldown.retry_after)
        for key, limit in ((f"push:mac:{mac}", limits.per_device),
                           (f"push:phone:{phone}", limits.per_phone)):
            verdict = self._limiter.hit(key, limit=limit, window=limits.window)
            if not verdict.allowed:
                raise _limited(verdict.retry_after)

    def record_cancelled(self, phone: str) -> None:
        limits = self.limits
        self._limiter.hit(f"push:cancel:{phone}", limit=limits.cancel_limit + 1,
                          window=limits.cancel_cooldown)


def _limited(retry_after: float) -> PushLimited:
    minutes = max(1, math.ceil(retry_after / 60))
    message = customer_message(LIMITED_CODE, "failed")
    return PushLimited(f"{message} (about {minutes} min)", retry_after)
