"""The router outbox: every change the router must make is a row, applied with retries.

Writers call `hotspotd.router.ops.enqueue_router_op` inside their own transaction, so the
wanted change commits together with the grant that caused it; `RouterOutbox` applies pending rows in
order per device, retrying with backoff while the router is unreachable. A daemon crash
loses nothing: pending rows are picked up again at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from hotspotd.billing.events import record_event
from hotspotd.billing.grants import get_entitlement
from hotspotd.router.gateway import RouterError
from hotspotd.router.ops import MAX_ATTEMPTS, RETRY_DELAYS, RouterOp

if TYPE_CHECKING:
    from hotspotd.store.db import Database

log = logging.getLogger(__name__)

class RouterPort(Protocol):
    """What the outbox needs from the router (hotspotd.router.gateway.RouterGateway)."""

    def login_host(self, *, mac: str, ip: str, user: str, password: str) -> None: ...

    def find_active(self, mac: str) -> Any: ...

    def remove_active(self, mac: str) -> bool: ...


class RouterOutbox:
    """Applies queued router changes in a worker thread, in order per device."""

    def __init__(self, db: Database, router: RouterPort, *, mac_password: str,
                 now: Callable[[], float] = time.time, poll_interval: float = 1.0) -> None:
        self._db = db
        self._router = router
        self._mac_password = mac_password
        self._now = now
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="router-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._poll_interval)
            self._wake.clear()
            try:
                self.process_due()
            except Exception:  # the worker must outlive any one bad row; the row stays queued
                log.exception("router outbox pass failed")

    def process_due(self) -> int:
        """Apply every due operation once; returns how many were completed."""
        rows = self._db.query(
            "SELECT id, mac, ip, action, attempts FROM router_ops WHERE state = 'pending'"
            " AND next_attempt_at <= ? ORDER BY id", (self._now(),))
        blocked: set[str] = set()
        done = 0
        for row in rows:
            op = RouterOp(row["id"], row["mac"], row["ip"], row["action"], row["attempts"])
            if op.mac in blocked or self._is_settled(op.id):
                continue
            if self._apply(op):
                done += 1
            else:
                blocked.add(op.mac)  # keep this device's later changes in order
        return done

    def _is_settled(self, op_id: int) -> bool:
        row = self._db.query_one("SELECT state FROM router_ops WHERE id = ?", (op_id,))
        return row is None or row["state"] != "pending"

    def _apply(self, op: RouterOp) -> bool:
        try:
            detail = self._login(op) if op.action == "login" else self._disconnect(op)
        except RouterError as exc:
            self._retry_later(op, str(exc))
            return False
        self._finish(op, detail)
        return True

    def _login(self, op: RouterOp) -> str:
        entitlement = get_entitlement(self._db.connection(), op.mac)
        if entitlement is None or entitlement.seconds_remaining(self._now()) <= 0:
            return "no time left: nothing to log in"
        ip = op.ip or self._last_ip(op.mac)
        if not ip:
            raise RouterError("the device's IP address is not known yet")
        if self._router.find_active(op.mac) is not None:
            # Until CoA lands, a new Session-Timeout reaches the router by logging in again.
            self._router.remove_active(op.mac)
        self._router.login_host(mac=op.mac, ip=ip, user=op.mac, password=self._mac_password)
        return f"logged in {op.mac} at {ip}"

    def _disconnect(self, op: RouterOp) -> str:
        removed = self._router.remove_active(op.mac)
        return "disconnected" if removed else "was not online"

    def _last_ip(self, mac: str) -> str | None:
        row = self._db.query_one("SELECT last_ip FROM devices WHERE mac = ?", (mac,))
        return row["last_ip"] if row else None

    def _finish(self, op: RouterOp, detail: str) -> None:
        now = self._now()
        with self._db.write() as conn:
            # One login covers every login queued for this device before it.
            conn.execute(
                "UPDATE router_ops SET state = 'done', done_at = ?, attempts = attempts + 1"
                " WHERE state = 'pending' AND mac = ? AND action = ? AND id <= ?",
                (now, op.mac, op.action, op.id))
            record_event(conn, now, f"router.{op.action}", mac=op.mac, op_id=op.id,
                         detail=detail)
        log.info("router: %s %s: %s", op.action, op.mac, detail)

    def _retry_later(self, op: RouterOp, error: str) -> None:
        now = self._now()
        attempts = op.attempts + 1
        state = "failed" if attempts >= MAX_ATTEMPTS else "pending"
        delay = RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)]
        with self._db.write() as conn:
            conn.execute("UPDATE router_ops SET attempts = ?, state = ?, next_attempt_at = ?,"
                         " last_error = ? WHERE id = ?",
                         (attempts, state, now + delay, error, op.id))
            if state == "failed":
                record_event(conn, now, "router.gave_up", mac=op.mac, op_id=op.id, error=error)
        log.warning("router: %s %s failed (attempt %s): %s", op.action, op.mac, attempts, error)
