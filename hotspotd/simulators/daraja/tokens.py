"""OAuth tokens the simulator issues: one valid token per credential set at a time."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable


class TokenStore:
    """Issuing a token invalidates the previous one (Daraja may do so); tokens expire."""

    def __init__(self, ttl: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._current: tuple[str, float] | None = None  # (token, expires_at)
        self._issued_at = 0.0
        self.issued = 0

    def issue(self) -> str:
        token = secrets.token_urlsafe(21)[:28]
        with self._lock:
            self._current = (token, self._clock() + self.ttl)
            self._issued_at = self._clock()
            self.issued += 1
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            if self._current is None:
                return False
            current, expires_at = self._current
            return secrets.compare_digest(token, current) and self._clock() < expires_at

    def age(self) -> float:
        """Seconds since the current token was issued."""
        with self._lock:
            return self._clock() - self._issued_at

    def invalidate_all(self) -> None:
        with self._lock:
            self._current = None
