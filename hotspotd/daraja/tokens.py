"""One cached OAuth token per Daraja credential set, shared by the whole process.

Daraja may invalidate the previous token when a new one is issued, so two clients with
the same consumer key must not each keep their own: `shared_token_cache(base_url, key)`
hands every client the same `TokenCache`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

REFRESH_MARGIN = 60.0  # seconds: refresh a token when fewer than this remain

# fetch() -> (access_token, expires_in_seconds)
TokenFetcher = Callable[[], tuple[str, float]]


class TokenCache:
    """Holds one access token; concurrent callers needing a new one fetch it only once."""

    def __init__(self, *, refresh_margin: float = REFRESH_MARGIN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self, fetch: TokenFetcher) -> str:
        """Return the cached token, fetching a new one if none or if it expires soon."""
        with self._lock:
            if self._token is None or self._expires_at - self._clock() < self._refresh_margin:
                self._store(*fetch())
            assert self._token is not None
            return self._token

    def refresh(self, fetch: TokenFetcher) -> str:
        """Fetch a new token unconditionally (credential checks) and keep it."""
        with self._lock:
            self._store(*fetch())
            assert self._token is not None
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token; with `token`, only if it is still the cached one
        (so many callers rejected with the same stale token cause one refetch)."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None
                self._expires_at = 0.0

    def seconds_left(self) -> float | None:
        with self._lock:
            return None if self._token is None else self._expires_at - self._clock()

    def _store(self, token: str, expires_in: float) -> None:
        self._token = token
        self._expires_at = self._clock() + expires_in


_registry: dict[tuple[str, str], TokenCache] = {}
_registry_lock = threading.Lock()


def shared_token_cache(base_url: str, consumer_key: str) -> TokenCache:
    """The process-wide cache for one (Daraja host, consumer key)."""
    key = (base_url.rstrip("/"), consumer_key)
    with _registry_lock:
        cache = _registry.get(key)
        if cache is None:
            cache = _registry[key] = TokenCache()
        return cache
