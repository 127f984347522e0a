"""Owner alerts: conditions checked on a schedule, sent through a notifier, rate limited.

Each condition (router unreachable, Daraja failing, payments failing, disk low) is either
a message (the problem, in words) or None. An alert is sent when it starts and repeated at
most every `repeat_minutes` while it lasts; a one-time "resolved" follows when it clears.
The state lives in `alert_state`, so a restart neither re-sends nor forgets. Optional
customer receipts (SMS) follow `payment.settled` events through a cursor in `ops_cursors`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotspotd.ops.notifiers import LogNotifier, Notifier, NotifyError
from hotspotd.store.db import Database

log = logging.getLogger(__name__)

HOUR = 3600.0
RECEIPT_CURSOR = "sms_receipts"


@dataclass(frozen=True)
class AlertOptions:
    recipients: tuple[str, ...] = ()
    repeat_seconds: float = 3600.0
    router_stuck_seconds: float = 300.0
    daraja_failures: int = 3
    payment_failure_ratio: float = 0.5
    payment_failure_minimum: int = 10
    disk_free_bytes: int = 200 * 1024 * 1024
    customer_receipts: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> AlertOptions:
        return cls(tuple(cfg.recipients), cfg.repeat_minutes * 60.0,
                   float(cfg.router_stuck_seconds), cfg.daraja_failures,
                   cfg.payment_failure_ratio, cfg.payment_failure_minimum,
                   cfg.disk_free_mb * 1024 * 1024, cfg.customer_receipts)


class AlertMonitor:
    def __init__(self, db: Database, notifier: Notifier, options: AlertOptions, *,
                 data_dir: Path, now: Callable[[], float],
                 receipts: Notifier | None = None) -> None:
        self.db, self.notifier, self.options = db, notifier, options
        self.data_dir, self.now = data_dir, now
        self.receipts = receipts
        self.conditions: dict[str, Callable[[float], str | None]] = {
            "router_unreachable": self.router_unreachable,
            "daraja_failing": self.daraja_failing,
            "payments_failing": self.payments_failing,
            "disk_low": self.disk_low,
        }

    # -- the conditions ---------------------------------------------------------------------
    def router_unreachable(self, now: float) -> str | None:
        row = self.db.query_one(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest, MAX(last_error) AS error FROM"
            " router_ops WHERE state = 'pending' AND attempts > 0")
        if not row["n"] or now - row["oldest"] < self.options.router_stuck_seconds:
            return None
        return (f"{row['n']} router change(s) waiting for {int(now - row['oldest'])} s;"
                f" last error: {row['error']}. Check the router's power, cable and API user.")

    def daraja_failing(self, now: float) -> str | None:
        limit = self.options.daraja_failures
        rows = self.db.query("SELECT kind, detail FROM events WHERE kind IN ('push.accepted',"
                             " 'push.rejected', 'push.uncertain') AND at > ? ORDER BY id DESC"
                             " LIMIT ?", (now - HOUR, limit))
        if len(rows) < limit or any(r["kind"] == "push.accepted" for r in rows):
            return None
        detail = json.loads(rows[0]["detail"] or "{}")
        last = detail.get("result_desc") or detail.get("reason") or rows[0]["kind"]
        return (f"the last {limit} STK pushes failed (latest: {last}). Check the Daraja"
                " credentials with `hotspotd check` and the internet uplink.")

    def payments_failing(self, now: float) -> str | None:
        row = self.db.query_one(
            "SELECT COUNT(*) AS n, SUM(status IN ('failed', 'expired')) AS bad FROM payments"
            " WHERE created_at > ? AND status != 'pending'", (now - HOUR,))
        total, bad = row["n"] or 0, row["bad"] or 0
        if total < self.options.payment_failure_minimum:
            return None
        if bad / total <= self.options.payment_failure_ratio:
            return None
        return f"{bad} of the last hour's {total} payments failed or expired."

    def disk_low(self, now: float) -> str | None:
        free = shutil.disk_usage(self.data_dir).free
        if free >= self.options.disk_free_bytes:
            return None
        return f"only {free // (1024 * 1024)} MB free for {self.data_dir}; delete old backups."

    # -- evaluation, rate limiting ------------------------------------------------------------
    def run_once(self) -> dict[str, str | None]:
        """Evaluate every condition and send what is due; returns the conditions' state."""
        now = self.now()
        found: dict[str, str | None] = {}
        for key, condition in self.conditions.items():
            try:
                found[key] = condition(now)
            except Exception:  # one broken check must not silence the others
                log.exception("alert check %s failed", key)
                continue
            self._update(key, found[key], now)
        if self.options.customer_receipts and self.receipts is not None:
            self.send_receipts()
        return found

    def _update(self, key: str, message: str | None, now: float) -> None:
        state = self.db.query_one("SELECT * FROM alert_state WHERE key = ?", (key,))
        was_active = bool(state and state["active"])
        if message is None:
            if was_active:
                self._set(key, active=0, message=None, now=now, sent=self._send(
                    f"resolved: {key.replace('_', ' ')}", "back to normal."))
            return
        last_sent = state["last_sent_at"] if state else None
        due = not was_active or last_sent is None or \
            now - last_sent >= self.options.repeat_seconds
        sent = self._send(key.replace("_", " "), message) if due else False
        self._set(key, active=1, message=message, now=now, sent=sent)

    def _send(self, subject: str, text: str) -> bool:
        log.warning("alert: %s: %s", subject, text)
        if isinstance(self.notifier, LogNotifier):
            return True
        try:
            self.notifier.send(list(self.options.recipients), subject, text)
        except NotifyError as exc:
            log.error("alert %r not delivered through %s: %s", subject, self.notifier.name, exc)
            return False
        return True

    def _set(self, key: str, *, active: int, message: str | None, now: float,
             sent: bool) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO alert_state (key, active, message, first_seen_at, last_sent_at,"
                " sent_count, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO"
                " UPDATE SET message = excluded.message, updated_at = excluded.updated_at,"
                " first_seen_at = CASE WHEN excluded.active AND NOT active THEN"
                " excluded.first_seen_at ELSE first_seen_at END, active = excluded.active,"
                " last_sent_at = COALESCE(excluded.last_sent_at, last_sent_at),"
                " sent_count = sent_count + excluded.sent_count",
                (key, active, message, now, now if sent else None, int(sent), now))

    # -- customer receipts ------------------------------------------------------------------
    def send_receipts(self) -> int:
        """SMS each customer whose payment completed since the last run; returns how many."""
        cursor = self.db.query_one("SELECT value FROM ops_cursors WHERE name = ?",
                                   (RECEIPT_CURSOR,))
        if cursor is None:  # first run: start from now, never text last year's customers
            newest = self.db.query_one("SELECT COALESCE(MAX(id), 0) FROM events")[0]
            self._move_cursor(newest)
            return 0
        rows = self.db.query(
            "SELECT e.id, p.phone, p.amount, p.receipt FROM events e JOIN payments p ON"
            " p.id = e.payment_id WHERE e.id > ? AND e.kind = 'payment.settled' AND"
            " p.status = 'completed' ORDER BY e.id LIMIT 100", (cursor[0],))
        sent = 0
        for row in rows:
            try:
                assert self.receipts is not None
                self.receipts.send([row["phone"]], "WiFi receipt",
                                   f"KES {row['amount']} received, M-Pesa {row['receipt']}."
                                   " You are online. Thank you!")
                sent += 1
            except NotifyError as exc:
                log.warning("receipt SMS for event %s not sent: %s", row["id"], exc)
            self._move_cursor(row["id"])
        return sent

    def _move_cursor(self, value: int) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT INTO ops_cursors (name, value, updated_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                         " updated_at = excluded.updated_at",
                         (RECEIPT_CURSOR, value, self.now()))
