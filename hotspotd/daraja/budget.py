"""One request budget for all the appliance's Daraja traffic (OAuth, pushes, queries, C2B).

A fixed pace (`per_minute`), handed out in arrival order: each caller reserves the next free
slot and waits for it, so a burst of purchases is served first come, first served. Callers
that can come back later (the reconciler's queries, Pull) ask with a short `max_wait` and
skip their turn when the budget is taken. A spike-arrest or quota answer from Daraja
pauses everybody, doubling the pause on each consecutive one (capped), and resets on the
next success.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import DarajaUnreachable

log = logging.getLogger(__name__)


class BudgetExhausted(DarajaUnreachable):
    """No request slot within the caller's wait: nothing was sent, retry later."""


class RequestBudget:
    def __init__(self, per_minute: float, *, backoff_start: float = 2.0,
                 backoff_max: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._strikes = 0
        self.used = 0
        self.backoffs = 0
        self._held = threading.local()  # a slot this thread already waited for

    @contextmanager
    def slot_in_hand(self, max_wait: float) -> Iterator[None]:
        """Wait for a slot now (BudgetExhausted beyond `max_wait`); the next `acquire` of
        this thread inside the block uses it instead of queueing again. Lets a caller wait
        its turn before it commits to a request (the push queue claims a payment only
        once its slot has come)."""
        self.acquire(max_wait)
        self._held.slot = True
        try:
            yield
        finally:
            self._held.slot = False

    def acquire(self, max_wait: float) -> None:
        """Take the next slot, waiting up to `max_wait` seconds; BudgetExhausted otherwise."""
        if getattr(self._held, "slot", False):
            self._held.slot = False
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot, self._paused_until)
            if slot - now > max_wait:
                raise BudgetExhausted(f"Daraja request budget taken for the next"
                                      f" {slot - now:.1f} s")
            self._next_slot = slot + self.interval
            self.used += 1
        if slot > now:
            self._sleep(slot - now)

    def back_off(self, reason: str) -> float:
        """Daraja said slow down: pause every caller; returns the pause in seconds."""
        with self._lock:
            pause = min(self.backoff_max, self.backoff_start * (2 ** self._strikes))
            self._strikes += 1
            self.backoffs += 1
            self._paused_until = max(self._paused_until, self._clock() + pause)
        log.warning("Daraja answered %s: pausing all Daraja requests for %.1f s", reason, pause)
        return pause

    def succeeded(self) -> None:
        with self._lock:
            self._strikes = 0

    def wait_estimate(self) -> float:
        with self._lock:
            return max(0.0, max(self._next_slot, self._paused_until) - self._clock())
