"""One request budget for all the appliance's Daraja traffic (OAuth, pushes, queries, C2B).

A fixed pace (`per_minute`). Callers wait in line for a slot, first come first served
within their class. Two classes: *settlement* (`priority=True`: STK queries and Pull, which
settle money a customer may already have paid) and *new work* (pushes, registrations).
When both classes are waiting, settlement takes `SETTLEMENT_TURNS` slots for each one of
new work: a burst of new purchases cannot keep a paid customer offline, and a backlog of
queries cannot stop new prompts either.

A caller gives up with BudgetExhausted when its slot would come later than `max_wait`:
at once when the line ahead of it already says so, else when the wait runs out. Callers
that can come back later (the reconciler's queries, Pull) ask with a short `max_wait` and
skip their turn; a settlement caller's wait counts from the next free slot, so at a slow
pace its turn still comes. A spike-arrest or quota answer from Daraja pauses everybody,
doubling the pause on each consecutive one (capped), and resets on the next success.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import DarajaUnreachable

log = logging.getLogger(__name__)


SETTLEMENT_TURNS = 2  # slots settlement takes in a row while new work waits


class BudgetExhausted(DarajaUnreachable):
    """No request slot within the caller's wait: nothing was sent, retry later."""


@dataclass(eq=False)
class _Ticket:
    priority: bool  # settlement; the line within each class is the list order
    deadline: float


class RequestBudget:
    def __init__(self, per_minute: float, *, backoff_start: float = 2.0,
                 backoff_max: float = 60.0) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self._turn = threading.Condition(threading.Lock())
        self._waiting: list[_Ticket] = []
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._settle_run = 0  # slots settlement took since new work last took one
        self._strikes = 0
        self.used = 0
        self.used_for_settlement = 0
        self.backoffs = 0
        self._held = threading.local()  # a slot this thread already waited for
        self._closed = False

    def close(self) -> None:
        """The daemon is stopping: every caller waiting for a slot, and every later one,
        gets BudgetExhausted at once (what it would have done is in the database, and the
        next start resumes it) instead of holding up the stop until its turn."""
        with self._turn:
            self._closed = True
            self._turn.notify_all()

    def set_rate(self, per_minute: float) -> None:
        """A new pace (the owner changed the Daraja rate); slots already taken stand."""
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        with self._turn:
            self.interval = 60.0 / per_minute
            self._turn.notify_all()

    @contextmanager
    def slot_in_hand(self, max_wait: float, *, priority: bool = False) -> Iterator[None]:
        """Wait for a slot now (BudgetExhausted beyond `max_wait`); the next `acquire` of
        this thread inside the block uses it instead of queueing again. Lets a caller wait
        its turn before it commits to a request (the push queue claims a payment only
        once its slot has come)."""
        self.acquire(max_wait, priority=priority)
        self._held.slot = True
        try:
            yield
        finally:
            self._held.slot = False

    def acquire(self, max_wait: float, *, priority: bool = False) -> None:
        """Take a slot, waiting in line up to `max_wait` seconds (a settlement caller:
        `max_wait` beyond the next free slot); BudgetExhausted otherwise."""
        if getattr(self._held, "slot", False):
            self._held.slot = False
            return
        with self._turn:
            if self._closed:
                raise BudgetExhausted("stopping: no more Daraja requests")
            now = time.monotonic()
            start = max(now, self._next_slot, self._paused_until)
            allowed = max_wait + (start - now if priority else 0.0)
            expected = start - now + self._ahead(priority) * self.interval
            if expected > allowed:
                raise BudgetExhausted(f"Daraja request budget taken for the next"
                                      f" {expected:.1f} s")
            ticket = _Ticket(priority, now + allowed)
            self._waiting.append(ticket)
            try:
                self._wait_for_turn(ticket)
            finally:
                self._waiting.remove(ticket)
                self._turn.notify_all()

    def _wait_for_turn(self, ticket: _Ticket) -> None:
        while True:
            if self._closed:
                raise BudgetExhausted("stopping: no more Daraja requests")
            now = time.monotonic()
            start = max(now, self._next_slot, self._paused_until)
            mine = self._head() is ticket
            if mine and start <= now:
                self._next_slot = now + self.interval
                self._settle_run = self._settle_run + 1 if ticket.priority else 0
                self.used += 1
                self.used_for_settlement += ticket.priority
                return
            if now >= ticket.deadline:
                raise BudgetExhausted("no Daraja request slot came within the wait")
            until = min(start, ticket.deadline) if mine else ticket.deadline
            self._turn.wait(max(until - now, 0.001))

    def _head(self) -> _Ticket | None:
        """Whose turn it is: the oldest settlement caller, unless settlement has had its
        turns in a row and new work waits; then the oldest new-work caller."""
        settle = next((t for t in self._waiting if t.priority), None)
        new = next((t for t in self._waiting if not t.priority), None)
        if settle is None or new is None:
            return settle or new
        return settle if self._settle_run < SETTLEMENT_TURNS else new

    def _ahead(self, priority: bool) -> int:
        """How many waiting callers would be served before a newcomer of this class."""
        settle = sum(1 for t in self._waiting if t.priority)
        new = len(self._waiting) - settle
        run, ahead = self._settle_run, 0
        settle, new = settle + priority, new + (not priority)  # the newcomer joins its line
        while True:  # play the turns out
            settles = settle > 0 and (new == 0 or run < SETTLEMENT_TURNS)
            if settles == priority and (settle if priority else new) == 1:
                return ahead  # the newcomer is the only one left in its line: its turn
            if settles:
                settle, run = settle - 1, run + 1
            else:
                new, run = new - 1, 0
            ahead += 1

    def back_off(self, reason: str) -> float:
        """Daraja said slow down: pause every caller; returns the pause in seconds."""
        with self._turn:
            pause = min(self.backoff_max, self.backoff_start * (2 ** self._strikes))
            self._strikes += 1
            self.backoffs += 1
            self._paused_until = max(self._paused_until, time.monotonic() + pause)
        log.warning("Daraja answered %s: pausing all Daraja requests for %.1f s", reason, pause)
        return pause

    def succeeded(self) -> None:
        with self._turn:
            self._strikes = 0

    def waiting(self) -> tuple[int, int]:
        """Callers waiting for a slot now: (settlement, new work)."""
        with self._turn:
            settle = sum(1 for t in self._waiting if t.priority)
            return settle, len(self._waiting) - settle

    def wait_estimate(self) -> float:
        """Seconds until a newcomer of the new-work class would get a slot."""
        with self._turn:
            now = time.monotonic()
            start = max(now, self._next_slot, self._paused_until)
            return start - now + self._ahead(False) * self.interval
