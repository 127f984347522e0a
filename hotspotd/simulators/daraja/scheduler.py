"""Delayed work for the simulator (auto-answers, late callbacks) on one timer thread and
a small worker pool, all cancelled by `stop()`."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, workers: int = 4, name: str = "daraja-sim") -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._thread = threading.Thread(target=self._run, name=f"{name}-timer", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` on a worker after `delay` seconds (unless stopped first)."""
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), action))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify()
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                        not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, action = heapq.heappop(self._queue)
            try:
                self._pool.submit(self._guarded, action)
            except RuntimeError:  # pool shut down by stop()
                return

    @staticmethod
    def _guarded(action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            log.exception("simulator task failed")
