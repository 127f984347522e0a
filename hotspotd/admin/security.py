"""Login protection for the owner UI: lockout, CSRF tokens, local-network checks, masking."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from hotspotd.admin.options import AdminOptions
from hotspotd.daraja.msisdn import mask_msisdn
from hotspotd.ratelimit import RateLimiter

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def is_local_address(address: str | None) -> bool:
    """Loopback or private (RFC 1918 / ULA / link-local) source addresses only."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


@dataclass(frozen=True)
class LoginGate:
    """Wrong-password counting per username and per source address."""

    limiter: RateLimiter
    options: AdminOptions

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        per_user = self.options.login_attempts
        return [(f"admin-login:user:{username.strip().lower()}", per_user),
                (f"admin-login:ip:{address}", per_user * 4)]

    def locked_for(self, username: str, address: str) -> float:
        """Seconds until a login may be tried again; 0 when allowed now."""
        waits = [self.limiter.peek(key, limit=limit, window=self.options.lockout_seconds)
                 for key, limit in self._keys(username, address)]
        return max((w.retry_after for w in waits if not w.allowed), default=0.0)

    def failed(self, username: str, address: str) -> None:
        for key, limit in self._keys(username, address):
            self.limiter.hit(key, limit=limit, window=self.options.lockout_seconds)

    def succeeded(self, username: str) -> None:
        self.limiter.reset(self._keys(username, "")[0][0])


def mask_phone(phone: str | None) -> str:
    """254712345678 → 2547****5678 (the Daraja module's masking): recognisable, not callable."""
    return mask_msisdn(phone) if phone else ""
