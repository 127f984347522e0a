"""`/metrics`: Prometheus collectors that read the daemon's state at scrape time.

Nothing in the money path is touched to count: purchases, settlement delays, grants, router
and CoA outcomes are counted from the database (the truth), incrementally (only event rows
newer than the last scrape are read, so a year of history costs one scan at the first
scrape); RADIUS counters come from `RadiusServer.stats`; RADIUS latency and Daraja
requests/errors from the thin wrappers in `hotspotd.ops.instrument`. Every name starts with
`hotspotd_`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hotspotd.store.db import Database

SETTLEMENT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
EVENT_BATCH = 50_000
# Label values come from a fixed vocabulary: a rejection's reason text names TransIDs,
# CheckoutRequestIDs, amounts, addresses and whatever a malformed body said, none of which
# belongs in a metric (privacy, and one series per payment).
REJECTION_REASONS = (
    ("source address not in the allow-list", "source_not_allowed"),
    ("body too large", "body_too_large"),
    ("body is not JSON", "not_json"),
    ("malformed", "malformed"),
    ("arrived on the callback path of channel", "wrong_channel"),
    ("claims result", "result_contradicted"),
    ("claimed result", "result_contradicted"),
    ("failure for an unknown CheckoutRequestID", "unknown_checkout"),
    ("STK Query could not confirm", "unconfirmed"),
    ("claimed values", "values_differ"),
    ("Pull Transactions of channel", "not_in_pull"),
    ("C2B confirmation from an untrusted source", "unverifiable"),
)
_RESULT_CODE = re.compile(r"^[0-9A-Za-z._]{1,16}$")


def reason_label(reason: str | None) -> str:
    """A rejection's reason as one of a fixed set of label values ("other" if unknown)."""
    text = (reason or "").strip()
    return next((label for prefix, label in REJECTION_REASONS if text.startswith(prefix)),
                "other")


def result_code_label(code: object) -> str:
    """A Daraja result code ("0", "1032", "500.001.1001") or an error class name; anything
    else (long, or with spaces) is "other"."""
    text = str(code or "")
    return text if not text or _RESULT_CODE.match(text) else "other"


class EventTally:
    """Counts from the `events` table, kept up to date incrementally by row id."""

    def __init__(self) -> None:
        self.last_id = 0
        self.kinds: Counter[str] = Counter()
        self.purchases: Counter[tuple[str, str]] = Counter()
        self.delay_buckets = [0] * (len(SETTLEMENT_BUCKETS) + 1)
        self.delay_sum = 0.0
        self.lock = threading.Lock()

    def update(self, db: Database) -> None:
        with self.lock:
            while self._batch(db):
                pass

    def _batch(self, db: Database) -> bool:
        rows = db.query(
            "SELECT e.id, e.kind, e.at, e.detail, p.created_at FROM events e"
            " LEFT JOIN payments p ON p.id = e.payment_id AND e.kind = 'payment.settled'"
            " WHERE e.id > ? ORDER BY e.id LIMIT ?", (self.last_id, EVENT_BATCH))
        for row in rows:
            self.kinds[row["kind"]] += 1
            if row["kind"] in ("payment.settled", "push.rejected"):
                detail = json.loads(row["detail"] or "{}")
                status = detail.get("status", "failed")
                self.purchases[status, result_code_label(detail.get("result_code"))] += 1
                if row["created_at"] is not None:
                    self._observe(row["at"] - row["created_at"])
            elif row["kind"] == "payment.expired":
                self.purchases["expired", ""] += 1
        if rows:
            self.last_id = rows[-1]["id"]
        return len(rows) == EVENT_BATCH

    def _observe(self, delay: float) -> None:
        index = next((i for i, bound in enumerate(SETTLEMENT_BUCKETS) if delay <= bound),
                     len(SETTLEMENT_BUCKETS))
        self.delay_buckets[index] += 1
        self.delay_sum += max(delay, 0.0)


class ApplianceCollector(Collector):
    """Reads the appliance's state at scrape time. `sources` are callables so a missing
    piece (not started yet, or stopped) simply contributes nothing."""

    def __init__(self, db: Database, *, radius: Callable[[], Any],
                 now: Callable[[], float] = time.time,
                 extra: Callable[[], Iterator[Metric]] | None = None) -> None:
        self.db = db
        self.radius = radius
        self.now = now
        self.extra = extra
        self.tally = EventTally()

    def collect(self) -> Iterator[Metric]:
        self.tally.update(self.db)
        yield from self._purchases()
        yield from self._events()
        yield from self._tables()
        yield from self._radius()
        if self.extra is not None:
            yield from self.extra()

    def _purchases(self) -> Iterator[Metric]:
        tally = self.tally
        purchases = CounterMetricFamily(
            "hotspotd_purchases", "Purchases settled, by outcome and Daraja result code.",
            labels=["outcome", "result_code"])
        for (status, code), count in sorted(tally.purchases.items()):
            purchases.add_metric([status, code], count)
        yield purchases
        cumulative, buckets = 0, []
        for bound, count in zip((*SETTLEMENT_BUCKETS, float("inf")), tally.delay_buckets,
                                strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        yield HistogramMetricFamily(
            "hotspotd_settlement_delay_seconds",
            "Time from the payment row (before the STK push) to its final answer.",
            buckets=buckets, sum_value=tally.delay_sum)

    def _events(self) -> Iterator[Metric]:
        kinds = self.tally.kinds
        grants = CounterMetricFamily("hotspotd_grants", "Time grants made.", labels=["kind"])
        grants.add_metric(["payment"], kinds["grant.created"])
        grants.add_metric(["voucher"], kinds["voucher.redeemed"])
        grants.add_metric(["held"], kinds["grant.held"])
        grants.add_metric(["duplicate_refused"], kinds["grant.duplicate_refused"])
        yield grants
        router = CounterMetricFamily(
            "hotspotd_router_actions", "Router changes and CoA/Disconnect outcomes, by kind.",
            labels=["kind"])
        for kind, count in sorted(kinds.items()):
            if kind.startswith(("router.", "coa.", "disconnect.")):
                router.add_metric([kind], count)
        yield router
        pushes = CounterMetricFamily("hotspotd_stk_pushes", "STK pushes by answer.",
                                     labels=["answer"])
        for answer in ("accepted", "rejected", "uncertain"):
            pushes.add_metric([answer], kinds[f"push.{answer}"])
        yield pushes

    def _tables(self) -> Iterator[Metric]:
        now = self.now()
        outbox = self.db.query_one("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM"
                                   " router_ops WHERE state = 'pending'")
        yield GaugeMetricFamily("hotspotd_router_outbox_depth",
                                "Router changes waiting to be applied.", value=outbox["n"])
        oldest = now - outbox["oldest"] if outbox["oldest"] is not None else 0.0
        yield GaugeMetricFamily("hotspotd_router_outbox_oldest_age_seconds",
                                "Age of the oldest waiting router change.", value=oldest)
        yield GaugeMetricFamily("hotspotd_devices_online", "Devices with an open RADIUS session.",
                                value=self._count("SELECT COUNT(DISTINCT mac) FROM"
                                                  " radius_sessions WHERE status = 'online'"))
        yield GaugeMetricFamily("hotspotd_devices_entitled", "Devices with paid time left.",
                                value=self._count("SELECT COUNT(*) FROM entitlements WHERE"
                                                  " expires_at > ?", (now,)))
        yield GaugeMetricFamily("hotspotd_payments_pending", "Payments waiting for an answer.",
                                value=self._count("SELECT COUNT(*) FROM payments WHERE"
                                                  " status = 'pending'"))
        line = self.db.query_one("SELECT COUNT(*) AS n, MIN(queued_at) AS oldest FROM payments"
                                 " WHERE queued_at IS NOT NULL AND status = 'pending'")
        yield GaugeMetricFamily("hotspotd_push_queue_length",
                                "Purchases waiting in line for the Daraja request budget.",
                                value=line["n"])
        yield GaugeMetricFamily("hotspotd_push_queue_oldest_age_seconds",
                                "How long the first purchase in line has waited.",
                                value=now - line["oldest"] if line["oldest"] is not None else 0.0)
        yield from self._rejections()

    def _rejections(self) -> Iterator[Metric]:
        family = CounterMetricFamily("hotspotd_callback_rejections",
                                     "M-Pesa callbacks refused or unusable, by kind and reason.",
                                     labels=["kind", "reason"])
        try:
            rows = self.db.query("SELECT kind, reason, COUNT(*) AS n FROM callback_rejections"
                                 " GROUP BY kind, reason")
        except Exception:  # the table comes with migration 0003
            rows = []
        counts: Counter[tuple[str, str]] = Counter()
        for row in rows:
            counts[str(row["kind"]), reason_label(row["reason"])] += row["n"]
        for (kind, reason), count in sorted(counts.items()):
            family.add_metric([kind, reason], count)
        yield family

    def _count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        row = self.db.query_one(sql, params)
        return int(row[0]) if row else 0

    def _radius(self) -> Iterator[Metric]:
        server = self.radius()
        if server is None:
            return
        stats = server.stats
        requests = CounterMetricFamily("hotspotd_radius_requests",
                                       "RADIUS packets received, by outcome.", labels=["outcome"])
        for outcome in ("accepts", "rejects", "accounting", "duplicates"):
            requests.add_metric([outcome], getattr(stats, outcome))
        for reason, count in sorted(stats.dropped.items()):
            requests.add_metric([f"dropped_{reason}"], count)
        yield requests
        yield CounterMetricFamily("hotspotd_radius_packets", "RADIUS packets received.",
                                  value=stats.requests)


def build_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry of its own (never the global one): two appliances in one test process."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
