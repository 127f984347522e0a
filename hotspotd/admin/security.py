"""Login protection for the owner UI: per-(account, source) lockout, set-up code attempts,
CSRF tokens.

Wrong passwords are counted per username AND source address, and per source address for all
usernames; never per username alone, which would let anyone on the WiFi lock the owner out
by failing on purpose. An address that failed too often waits (`[admin] lockout_seconds`)
before it may try again, and is not even checked meanwhile (no password hashing for it).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from hotspotd.admin.options import AdminOptions
from hotspotd.ratelimit import RateLimiter

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SOURCE_FACTOR = 4  # wrong passwords per address for all usernames: 4x the per-account limit


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


@dataclass(frozen=True)
class LoginGate:
    """Wrong-password counting per (username, source address) and per source address."""

    limiter: RateLimiter
    options: AdminOptions

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        per_account = self.options.login_attempts
        name = username.strip().lower()[:64]
        return [(f"admin-login:account-source:{name}|{address}", per_account),
                (f"admin-login:source:{address}", per_account * SOURCE_FACTOR)]

    def locked_for(self, username: str, address: str) -> float:
        """Seconds until this username may be tried again from `address`; 0: now."""
        waits = [self.limiter.peek(key, limit=limit, window=self.options.lockout_seconds)
                 for key, limit in self._keys(username, address)]
        return max((w.retry_after for w in waits if not w.allowed), default=0.0)

    def failed(self, username: str, address: str) -> None:
        for key, limit in self._keys(username, address):
            self.limiter.hit(key, limit=limit, window=self.options.lockout_seconds)

    def succeeded(self, username: str, address: str) -> None:
        self.limiter.reset(self._keys(username, address)[0][0])


@dataclass(frozen=True)
class SetupCodeGate:
    """Wrong first-run set-up codes, counted per source address."""

    limiter: RateLimiter
    options: AdminOptions

    def _key(self, address: str) -> str:
        return f"admin-setup-code:source:{address}"

    def locked_for(self, address: str) -> float:
        verdict = self.limiter.peek(self._key(address), limit=self.options.login_attempts,
                                    window=self.options.lockout_seconds)
        return 0.0 if verdict.allowed else verdict.retry_after

    def failed(self, address: str) -> None:
        self.limiter.hit(self._key(address), limit=self.options.login_attempts,
                         window=self.options.lockout_seconds)
