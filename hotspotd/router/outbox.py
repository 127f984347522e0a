"""The router outbox: every change the router must make is a row, applied with retries.

Writers call `hotspotd.ledger.router_ops.enqueue_router_op` inside their own transaction, so the
wanted change commits together with the grant that caused it; `RouterOutbox` applies pending
rows in order per device (`hotspotd.router.converge`: CoA first, the RouterOS API as
fallback), retrying with backoff while the router is unreachable. A daemon crash loses
nothing: pending rows are picked up again at start. The same thread runs the expiry
enforcer and the periodic reconcile (`hotspotd.router.reconcile`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from hotspotd.ledger import router_ops
from hotspotd.ledger.router_ops import RouterOp
from hotspotd.router.converge import CoaPort, Converger, RouterPort
from hotspotd.router.fleet import RouterSet
from hotspotd.router.gateway import RouterError
from hotspotd.router.reconcile import Reconciler

if TYPE_CHECKING:
    from hotspotd.store.db import Database

__all__ = ["RouterOutbox", "RouterPort"]

log = logging.getLogger(__name__)


class RouterOutbox:
    """Applies queued router changes in a worker thread, in order per device."""

    def __init__(self, db: Database, router: RouterSet, *, mac_password: str,
                 now: Callable[[], float], coa: CoaPort, enforce_interval: float,
                 reconcile_interval: float, before_apply: Callable[[], object],
                 poll_interval: float = 1.0) -> None:
        # before_apply runs before the router is told anything, so every RADIUS request
        # the router sends because of a change is answered from an up-to-date view.
        self._before_apply = before_apply
        self._db = db
        self._router = router
        self._now = now
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._converger = Converger(connection=db.connection, router=router, coa=coa,
                                    mac_password=mac_password, now=now,
                                    mark_stopped=self._mark_stopped)
        # One reconciler per router: each compares its own router's lists with the ledger.
        self.reconcilers = [Reconciler(
            write=db.write, read=db.connection, router=gateway, now=now, clock=time.monotonic,
            enforce_interval=enforce_interval, reconcile_interval=reconcile_interval)
            for _, gateway in router.members()]
        self.reconciler = self.reconcilers[0]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="router-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def running(self) -> bool:
        """The worker thread is up (for health: nothing reaches the router without it)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def depth(self) -> int:
        """Pending operations (for ops pages and metrics)."""
        return router_ops.pending_count(self._db)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._poll_interval)
            self._wake.clear()
            try:
                for reconciler in self.reconcilers:
                    reconciler.due()
                self.process_due()
            except Exception:  # the worker must outlive any one bad row; the row stays queued
                log.exception("router outbox pass failed")

    def process_due(self) -> int:
        """Apply every due operation once; returns how many were completed."""
        ops = router_ops.due_ops(self._db, self._now())
        if ops:
            self._before_apply()
        blocked: set[str] = set()
        done = 0
        for op in ops:
            if self._stopping.is_set():
                break
            if op.mac in blocked or router_ops.is_settled(self._db, op.id):
                continue
            if self._apply(op):
                done += 1
            else:
                blocked.add(op.mac)  # keep this device's later changes in order
        return done

    def _apply(self, op: RouterOp) -> bool:
        try:
            if op.action == "login":
                detail = self._converger.login(op.mac, op.ip)
            else:
                detail = self._converger.disconnect(op.mac)
        except RouterError as exc:
            self._retry_later(op, str(exc))
            return False
        self._finish(op, detail)
        return True

    def _mark_stopped(self, mac: str, cause: str) -> None:
        with self._db.write() as conn:
            conn.execute("UPDATE radius_sessions SET status = 'stopped', stopped_at = ?,"
                         " terminate_cause = COALESCE(terminate_cause, ?)"
                         " WHERE mac = ? AND status = 'online'", (self._now(), cause, mac))

    def _finish(self, op: RouterOp, detail: str) -> None:
        now = self._now()
        with self._db.write() as conn:
            router_ops.finish_op(conn, op, detail, now)
        log.info("router: %s %s: %s", op.action, op.mac, detail)

    def _retry_later(self, op: RouterOp, error: str) -> None:
        now = self._now()
        with self._db.write() as conn:
            attempts = router_ops.retry_op(conn, op, error, now)
        log.warning("router: %s %s failed (attempt %s): %s", op.action, op.mac, attempts, error)
