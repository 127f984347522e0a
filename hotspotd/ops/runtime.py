"""The appliance's own upkeep, wired in by `hotspotd.app`: health with reasons, `/metrics`,
and the scheduled jobs (daily backup with rotation, retention, owner alerts).

`ApplianceOps` is built by the wiring code once the pieces it watches exist (the RADIUS
server, the router outbox, the scheduler, the Daraja budget), each passed in; a piece whose
thread is not running yet is reported as such rather than crashing a probe.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hotspotd.daraja.budget import RequestBudget
from hotspotd.ops import backup, privacy
from hotspotd.ops.alerts import AlertMonitor, AlertOptions
from hotspotd.ops.metrics import ApplianceCollector, exposition
from hotspotd.ops.notifiers import AfricasTalkingSms, Notifier
from hotspotd.store.db import Database, interrupted_when

log = logging.getLogger(__name__)


class ApplianceOps:
    """Health, metrics and upkeep over the pieces it is given (all required)."""

    def __init__(self, config: Any, db: Database, *, data_dir: Path, now: Callable[[], float],
                 registry: CollectorRegistry, notifier: Notifier, radius: Any, outbox: Any,
                 scheduler: Any, budget: RequestBudget) -> None:
        self.config = config
        self.db = db
        self.data_dir = data_dir
        self.now = now
        self.registry = registry
        self.radius, self.outbox, self.scheduler, self.budget = radius, outbox, scheduler, budget
        self.backup_dir = Path(config.backup.directory or data_dir / "backups")
        self.collector = ApplianceCollector(self.db, radius=lambda: radius, now=now,
                                            extra=self._extra_metrics)
        registry.register(self.collector)
        receipts = notifier if isinstance(notifier, AfricasTalkingSms) else None
        self.alerts = AlertMonitor(self.db, notifier, AlertOptions.from_config(config.alerts),
                                   data_dir=data_dir, now=now, receipts=receipts)
        self._metrics_lock = threading.Lock()
        # Set when the daemon stops: long upkeep (a backup, the retention sweep) ends early
        # rather than hold up the stop; it runs again after the next start.
        self.stopping = threading.Event()

    # -- health --------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """What makes the daemon unfit to serve (empty: fine). Withholds the watchdog."""
        return [f"{name}: {value}" for name, value in self.health().items()
                if isinstance(value, str)]

    def health(self) -> dict[str, object]:
        """name -> True (fine), a reason (not ready), or {"warning": reason} (degraded)."""
        checks: dict[str, object] = {"database": self._database()}
        checks["radius"] = True if self.radius.running() else \
            "the RADIUS server is not running"
        checks["router_outbox"] = True if self.outbox.running() else \
            "the router outbox is not running"
        checks["scheduler"] = True if self.scheduler.running else \
            "the scheduler (settlement, backups) is not running"
        for name, reason in self._warnings().items():
            checks[name] = {"warning": reason} if reason else True
        return checks

    def _database(self) -> object:
        try:
            self.db.query_one("SELECT 1 FROM schema_migrations LIMIT 1")
        except Exception as exc:
            return f"the database does not answer: {exc}"
        return True

    def _warnings(self) -> dict[str, str | None]:
        now = self.now()
        try:
            router = self.alerts.router_unreachable(now)
        except Exception as exc:
            router = f"cannot read the router outbox: {exc}"
        return {"router": router, "disk": self.alerts.disk_low(now)}

    # -- metrics -------------------------------------------------------------------------
    def metrics(self) -> bytes:
        with self._metrics_lock:
            return exposition(self.registry)

    def _extra_metrics(self) -> Iterator[Metric]:
        usage = shutil.disk_usage(self.data_dir)
        yield GaugeMetricFamily("hotspotd_disk_free_bytes",
                                "Free space on the data directory's file system.",
                                value=usage.free)
        yield GaugeMetricFamily("hotspotd_last_backup_timestamp_seconds",
                                "When the newest backup was written (0: none).",
                                value=self.newest_backup())
        active = self.db.query_one("SELECT COUNT(*) FROM alert_state WHERE active = 1")[0]
        yield GaugeMetricFamily("hotspotd_alerts_active", "Owner alerts currently raised.",
                                value=active)
        yield from self._budget_metrics()

    def _budget_metrics(self) -> Iterator[Metric]:
        """The Daraja request budget by class: settlement (STK Query, Pull) and new work
        (pushes, registrations). Slots used show the split; waiting shows saturation."""
        budget = self.budget
        settle, new = budget.waiting()
        waiting = GaugeMetricFamily("hotspotd_daraja_budget_waiting",
                                    "Daraja requests waiting for a budget slot, by class.",
                                    labels=["class"])
        used = CounterMetricFamily("hotspotd_daraja_budget_slots",
                                   "Daraja budget slots handed out, by class.", labels=["class"])
        for name, now_waiting, slots in (
                ("settlement", settle, budget.used_for_settlement),
                ("new", new, budget.used - budget.used_for_settlement)):
            waiting.add_metric([name], now_waiting)
            used.add_metric([name], slots)
        yield waiting
        yield used

    # -- scheduled jobs ------------------------------------------------------------------
    def schedule(self, scheduler: Any) -> None:
        """Backups every interval (the first one when due: a Pi that reboots daily still
        gets its backups), retention daily (first a minute after start), alerts."""
        soon = datetime.now() + timedelta(minutes=1)
        if self.config.backup.enabled:
            scheduler.add_job(self.backup_now, "interval",
                              hours=self.config.backup.interval_hours, id="backup",
                              next_run_time=max(self._next_backup_due(), soon))
        scheduler.add_job(self.retention_now, "interval", hours=24, id="privacy-retention",
                          next_run_time=soon)
        scheduler.add_job(self.alerts.run_once, "interval",
                          seconds=self.config.alerts.check_interval_seconds, id="alerts")

    def newest_backup(self) -> float:
        """When the newest backup was written (0: none)."""
        if not self.backup_dir.is_dir():
            return 0.0
        return max((p.stat().st_mtime for p in self.backup_dir.glob(f"{backup.PREFIX}*"
                                                                    f"{backup.SUFFIX}")),
                   default=0.0)

    def _next_backup_due(self) -> datetime:
        due = self.newest_backup() + self.config.backup.interval_hours * 3600.0
        return datetime.now() + timedelta(seconds=max(due - time.time(), 0.0))

    def backup_now(self) -> backup.BackupInfo | None:
        try:
            return backup.scheduled_backup(self.db.path, self.backup_dir,
                                           keep=self.config.backup.keep,
                                           now=self.now(), stop=self.stopping)
        except backup.BackupCancelled:
            log.info("scheduled backup abandoned: stopping (it is due again at the next start)")
            return None
        except Exception:
            log.exception("scheduled backup into %s failed", self.backup_dir)
            return None

    def retention_now(self) -> int:
        """Erase what retention says; a stop interrupts the sweep (its transaction rolls
        back, the next start's sweep does it)."""
        try:
            with interrupted_when(self.stopping, self.db.connection()):
                erased = privacy.apply_retention(self.db, retention_days=self.config.privacy
                                                 .retention_days, now=self.now())
        except sqlite3.OperationalError:
            if not self.stopping.is_set():
                raise
            log.info("retention sweep interrupted: stopping (it runs again after the next"
                     " start)")
            return 0
        if erased:
            log.info("retention: personal data erased from %s old row(s)", erased)
        return erased
