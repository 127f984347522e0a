"""Abuse limits on STK pushes: anyone on the WiFi can reach the portal.

Per device and per phone: at most `per_device` / `per_phone` pushes per `window` seconds;
after `cancel_limit` cancelled prompts on one phone within `cancel_cooldown` seconds, that
phone gets no prompt until the cooldown ends (someone is pushing to a stranger who keeps
cancelling). Counted in SQLite through `RateLimiter`, so a restart does not reset them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


class PushGuard:
    def __init__(self, limiter: RateLimiter, limits: PushLimits) -> None:
        self._limiter = limiter
        self._limits = limits

    def check(self, *, mac: str, phone: str) -> None:
        """Count one push for this device and phone, or raise PushLimited (nothing counted
        for the phone when the device is already over its limit)."""
        limits = self._limits
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
        self._limiter.hit(f"push:cancel:{phone}", limit=self._limits.cancel_limit + 1,
                          window=self._limits.cancel_cooldown)


def _limited(retry_after: float) -> PushLimited:
    minutes = max(1, math.ceil(retry_after / 60))
    message = customer_message(LIMITED_CODE, "failed")
    return PushLimited(f"{message} (about {minutes} min)", retry_after)
