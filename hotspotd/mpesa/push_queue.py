"""The line of purchases waiting for the Daraja request budget: durable, FIFO, bounded.

A purchase whose STK push cannot get a slot of the one request budget within
`[daraja] push_max_wait_seconds` (or that Daraja answered with spike arrest) is not
refused: it is stored in line (`payments.queued_at`, push_state still `sending`, nothing
sent) and the customer reads "you are in line". While anyone is in line, new purchases join
the end of it instead of racing for slots, so nobody jumps ahead. The line is bounded when a
purchase is made (`push_limits.PushGuard`): at most `[limits] line_max` wait (by default what
the budget can push within `[settlement] queue_max_seconds`), each device at most its
`open_per_device` (1) open purchase, so one device holds one place however fast it asks.

`PushQueue` is one worker thread: it waits for the next slot of the budget (in the
budget's own first-come order, `RequestBudget.slot_in_hand`) while the payment is still in
line, then claims the oldest payment (clearing `queued_at` in one transaction: from then on
it is an ordinary push in flight, so a crash before its answer is stored ends it
`interrupted` at the next start and it is never pushed again) and sends it through
`PurchaseService.push_queued`. A payment still in line after `[settlement]
queue_max_seconds` ends `expired` with `HOTSPOTD_QUEUE_TIMEOUT`: no prompt was ever sent.
The line lives in SQLite, so a restart resumes it in the same order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from hotspotd.daraja.budget import BudgetExhausted, RequestBudget
from hotspotd.ledger.payment_line import oldest, queue_length
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0  # seconds between looks at an empty line (a new entry wakes it at once)
SLOT_WAIT = 3.0  # longest wait for a budget slot in one go (keeps stop() prompt)
IN_FLIGHT_PAUSE = 0.05  # an older purchase is still trying its own push: let it finish
DEFER_PAUSE = 1.0  # after a deferred push (Daraja busy or unreachable), before the next try


class QueuedPusher(Protocol):
    """What the worker needs from the purchase flow (mpesa.purchases.PurchaseService)."""

    def push_queued(self, payment_id: int) -> str: ...

    def earlier_push_in_flight(self, payment_id: int) -> bool: ...

    def expire_queue(self, now: float) -> list[int]: ...


class PushQueue:
    """The worker that sends queued pushes in arrival order as the budget allows."""

    def __init__(self, db: Database, pusher: QueuedPusher, *,
                 budget: RequestBudget, wake: threading.Event | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._pusher = pusher
        self._budget = budget
        self._wake = wake or threading.Event()
        self._now = now
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushed = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> PushQueue:
        self._thread = threading.Thread(target=self._run, name="push-queue", daemon=True)
        self._thread.start()
        waiting = queue_length(self._db.connection())
        if waiting:
            log.info("%s payment(s) in line for M-Pesa from before the restart", waiting)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                pause = self.run_once()
            except Exception:  # the payment stays in line or ended by a typed path
                log.exception("push queue: error; trying again shortly")
                pause = DEFER_PAUSE
            if pause > 0:
                self._wake.wait(pause)
                self._wake.clear()

    def run_once(self) -> float:
        """Expire overdue entries, then push the oldest if the budget has a slot now.

        Returns how long to wait before looking again (0: look again at once)."""
        self._pusher.expire_queue(self._now())
        payment_id = oldest(self._db)
        if payment_id is None:
            return IDLE_WAIT
        if self._pusher.earlier_push_in_flight(payment_id):
            return IN_FLIGHT_PAUSE
        try:
            with self._budget.slot_in_hand(SLOT_WAIT):
                if self._stopping.is_set():
                    return 0.0
                outcome = self._pusher.push_queued(oldest(self._db) or payment_id)
        except BudgetExhausted:
            return min(max(self._budget.wait_estimate() - SLOT_WAIT, 0.1), IDLE_WAIT)
        if outcome == "deferred":
            return DEFER_PAUSE
        if outcome in ("pushed", "uncertain"):
            self.pushed += 1
        return 0.0
