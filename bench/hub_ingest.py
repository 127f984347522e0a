"""Hub ingest: many simulated appliances each shipping a busy day to one hub.

Starts a throwaway PostgreSQL cluster (tests/support/postgres.py) or uses `--dsn`, runs
the real hub (`hotspotd hub serve`, HTTPS, a subprocess), enrols `--appliances` venues
through /v1/enroll, and gives each a thread that behaves like the appliance's shipper: its
journal grows at a steady rate (the busy day compressed into `--duration` seconds) and it
posts batches of up to 500 events, moving on only when the hub acknowledges, and waits
`--ship-interval` after a batch that was not full, as hotspotd/hub/shipper.py does.

A busy day per appliance: `--payments` sales (each: payment inserted, payment completed,
grant, new device = 4 journal rows) and `--accounting` accounting-derived events. The
journal has no RADIUS-session kind yet, so those are modelled as `device` events with a
fresh MAC each (the same size and the same cost at the hub: an event row and a projection
upsert).

Reported: offered and achieved ingest rate (events/s), replication lag per event (from the
moment it joined the appliance's journal to the hub's acknowledgement) p50/p99/max, hub
process CPU (user+system seconds, and % of one core over the run), PostgreSQL's CPU (all
its processes), the database size, and that every seq arrived exactly once.

Usage: flock /tmp/bench.lock python bench/hub_ingest.py [--appliances 50] [--payments 2000]
       [--accounting 20000] [--duration 300] [--out bench/results/hub_ingest.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests
from benchstats import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.hub import HubProcess  # noqa: E402
from support.postgres import PostgresCluster  # noqa: E402

from hotspotd.hub.enrolment import create_venue  # noqa: E402
from hotspotd.hub.pgstore import HubStore  # noqa: E402
from hotspotd.hub.protocol import BATCHES_PATH, ENROL_PATH, MAX_EVENTS, make_batch  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu() -> float:
    """User+system seconds of every process named postgres (the cluster's)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def day_events(index: int, payments: int, accounting: int) -> list[tuple[str, Any, dict]]:
    """One appliance's busy day as (kind, entity_id, body), sales and accounting mixed."""
    sales: list[tuple[str, Any, dict]] = []
    for n in range(1, payments + 1):
        mac = f"02:{index:02X}:{n // 65536:02X}:{n // 256 % 256:02X}:{n % 256:02X}:01"
        payment = {"id": n, "public_id": f"p{n}", "plan_id": 1, "mac": mac,
                   "phone_masked": "2547*****149", "amount": 20, "status": "pending",
                   "result_code": None, "receipt": None, "paid_amount": None,
                   "channel": "default", "created_at": 0.0, "settled_at": None}
        done = {**payment, "status": "completed", "result_code": "0",
                "receipt": f"R{index:03d}{n:07d}", "paid_amount": 20, "settled_at": 1.0}
        grant = {"id": n, "mac": mac, "plan_id": 1, "payment_id": n, "voucher_id": None,
                 "receipt": done["receipt"], "source": "stk", "seconds": 3600,
                 "starts_at": 1.0, "expires_at": 3601.0, "created_at": 1.0}
        sales += [("payment", n, payment), ("payment", n, done), ("grant", n, grant),
                  ("device", mac, {"mac": mac, "first_seen": 1.0})]
    extra = [("device", f"06:{index:02X}:{n // 65536:02X}:{n // 256 % 256:02X}:"
              f"{n % 256:02X}:02", {"mac": f"acct-{index}-{n}", "first_seen": 1.0})
             for n in range(accounting)]
    # Interleave: one sale's rows every (accounting / payments) accounting rows.
    mixed, step = [], max(1, len(extra) // max(1, len(sales)))
    for i, event in enumerate(sales):
        mixed.append(event)
        mixed.extend(extra[i * step:(i + 1) * step])
    mixed.extend(extra[len(sales) * step:])
    return mixed


class SimulatedAppliance(threading.Thread):
    """A journal filled at a steady rate, shipped like hotspotd/hub/shipper.py does."""

    def __init__(self, appliance_id: int, key: str, url: str, cert: str,
                 events: list[tuple[str, Any, dict]], start_at: float, duration: float,
                 ship_interval: float) -> None:
        super().__init__(daemon=True)
        self.ship_interval = ship_interval
        self.appliance_id, self.key, self.url, self.cert = appliance_id, key, url, cert
        self.events, self.start_at, self.duration = events, start_at, duration
        self.lags: list[float] = []
        self.batches = 0
        self.error: str | None = None

    def _written(self, now: float) -> int:
        """How many of the day's rows exist in the journal by `now`."""
        share = min(1.0, max(0.0, (now - self.start_at) / self.duration))
        return int(len(self.events) * share)

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        shipped, idle = 0, False
        while shipped < len(self.events):
            if idle:  # the shipper's rule: a batch that was not full -> wait the interval
                time.sleep(self.ship_interval)
            available = self._written(time.time())
            idle = available - shipped < MAX_EVENTS
            if available <= shipped:
                continue
            last = min(available, shipped + MAX_EVENTS)
            batch = [{"seq": seq, "at": self._joined(seq), "kind": kind, "entity_id": entity,
                      "body": body} for seq, (kind, entity, body)
                     in enumerate(self.events[shipped:last], start=shipped + 1)]
            try:
                answer = session.post(self.url.rstrip("/") + BATCHES_PATH,
                                      json=make_batch(self.appliance_id, batch),
                                      headers={"Authorization": f"Bearer {self.key}"},
                                      timeout=60, verify=self.cert)
            except requests.RequestException as exc:
                self.error = f"{type(exc).__name__}"
                time.sleep(1)
                continue
            if answer.status_code != 200:
                self.error = answer.text[:200]
                time.sleep(1)
                continue
            acked_at = time.time()
            self.lags += [acked_at - event["at"] for event in batch]
            shipped = answer.json()["acked"]
            self.batches += 1

    def _joined(self, seq: int) -> float:
        """When row `seq` joined the journal under the steady rate."""
        return self.start_at + self.duration * (seq - 1) / len(self.events)


def enrol_all(store: HubStore, url: str, cert: str, count: int) -> list[tuple[int, str]]:
    enrolled = []
    for index in range(count):
        token = create_venue(store, f"Venue {index:03d}")
        answer = requests.post(url.rstrip("/") + ENROL_PATH, json={"token": token},
                               verify=cert, timeout=30).json()
        enrolled.append((answer["appliance"], answer["key"]))
    return enrolled


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    cluster = None if args.dsn else PostgresCluster.start()
    dsn = args.dsn or cluster.create_database("bench")
    hub = HubProcess(workdir / "hub", dsn).start()
    store = HubStore(dsn).open()
    try:
        keys = enrol_all(store, hub.url, str(hub.cert), args.appliances)
        days = [day_events(i, args.payments, args.accounting) for i in range(args.appliances)]
        hub_cpu0, pg_cpu0 = cpu_seconds(hub.process.pid), postgres_cpu()
        start = time.time() + 1.0
        threads = [SimulatedAppliance(appliance_id, key, hub.url, str(hub.cert), day, start,
                                      args.duration, args.ship_interval)
                   for (appliance_id, key), day in zip(keys, days, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.time() - start
        hub_cpu, pg_cpu = cpu_seconds(hub.process.pid) - hub_cpu0, postgres_cpu() - pg_cpu0
        with psycopg.connect(dsn) as conn:
            stored, distinct = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT (appliance_id, seq)) FROM events").fetchone()
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    finally:
        store.close()
        hub.stop()
        if cluster is not None:
            cluster.stop()
    lags = sorted(lag for thread in threads for lag in thread.lags)
    total = sum(len(day) for day in days)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "appliances": args.appliances, "payments_per_appliance": args.payments,
        "accounting_events_per_appliance": args.accounting,
        "events": total, "stored": stored, "stored_exactly_once": stored == distinct == total,
        "duration_s": args.duration, "ship_interval_s": args.ship_interval,
        "elapsed_s": round(elapsed, 1),
        "offered_events_per_s": round(total / args.duration),
        "ingest_events_per_s": round(total / elapsed),
        "batches": sum(thread.batches for thread in threads),
        "lag_s": {"p50": round(percentile(lags, 50), 3), "p99": round(percentile(lags, 99), 3),
                  "max": round(lags[-1], 3) if lags else 0.0},
        "hub_cpu_s": round(hub_cpu, 1),
        "hub_cpu_percent_of_one_core": round(100 * hub_cpu / elapsed, 1),
        "postgres_cpu_s": round(pg_cpu, 1),
        "postgres_size_mb": round(size / 1e6, 1),
        "bytes_per_event_in_postgres": round(size / max(1, stored)),
        "errors_seen": sorted({thread.error for thread in threads if thread.error}),
        "machine_cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appliances", type=int, default=50)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--accounting", type=int, default=20000)
    parser.add_argument("--duration", type=float, default=300.0,
                        help="seconds the busy day is compressed into")
    parser.add_argument("--ship-interval", type=float, default=5.0,
                        help="[hub] ship_interval_seconds of the appliances")
    parser.add_argument("--dsn", help="an existing, empty PostgreSQL database")
    parser.add_argument("--out", type=Path, default=RESULTS / "hub_ingest.json")
    result = run(parser.parse_args())
    print(json.dumps(result, indent=2))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
