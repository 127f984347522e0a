"""Owner UI with a year of history: seed N payments (default 500,000), then time the
dashboard and the payment searches over real HTTP, logged in as the owner.

Runs the whole demo appliance in this process (`Appliance(demo_config(...))`, loopback,
OS-chosen ports). The payments are spread evenly over 365 days before now: 80 % completed
(each with its receipt and its grant), 12 % cancelled, 5 % failed, 3 % expired; 20,000
distinct phone numbers and devices. Each page is fetched `--repeat` times (default 20)
after one warm-up; p50 / p90 / max are printed and written, with the machine, the
parameters and a timestamp, to bench/results/admin/dashboard.json. The very first dashboard
view, which fills the cached daily summary (past days; `admin.daily_summary`), is timed on its
own. The seeded data directory is deleted at the end (`--keep` keeps it).

Usage: python bench/admin_dashboard.py [--payments 500000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchstats import percentile  # noqa: E402

from hotspotd.admin.accounts import create_account  # noqa: E402
from hotspotd.app import Appliance  # noqa: E402
from hotspotd.commands.demo import demo_config  # noqa: E402
from hotspotd.ledger.plans import seed_demo_plans  # noqa: E402
from hotspotd.store.db import Database  # noqa: E402

RESULT = ROOT / "bench" / "results" / "admin" / "dashboard.json"
PRICES = {1: (10, 1800), 2: (20, 3600), 3: (80, 86400), 4: (400, 604800)}
STATUSES = ["completed"] * 80 + ["cancelled"] * 12 + ["failed"] * 5 + ["expired"] * 3
PASSWORD = "bench owner password"


def seed(db: Database, count: int, now: float) -> float:
    """Insert `count` payments (and grants for the completed ones); returns seconds taken."""
    started = time.monotonic()
    step = 365 * 86400 / count
    with db.write() as conn:
        seed_demo_plans(conn, now)
        payments, grants = [], []
        for index in range(count):
            at = now - 365 * 86400 + index * step
            plan = 1 + index % 4
            price, seconds = PRICES[plan]
            status = STATUSES[index % len(STATUSES)]
            mac = f"02:BE:{(index % 20000) >> 8:02X}:{index % 256:02X}:{plan:02X}:00"
            receipt = f"B{index:09d}" if status == "completed" else None
            payments.append((index + 1, f"bench{index}", plan, mac, f"2547{index % 20000:08d}",
                             price, status, "sent", receipt, price if receipt else None,
                             f"ws_CO_{index}", "0" if receipt else "1032", at, at + 5))
            if receipt:
                grants.append((mac, plan, index + 1, receipt, "stk", seconds, at + 5,
                               at + 5 + seconds, at + 5))
        conn.executemany(
            "INSERT INTO payments (id, public_id, plan_id, mac, phone, amount, status,"
            " push_state, receipt, paid_amount, checkout_request_id, result_code, created_at,"
            " settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", payments)
        conn.executemany(
            "INSERT INTO grants (mac, plan_id, payment_id, receipt, source, seconds,"
            " starts_at, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", grants)
    db.connection().execute("ANALYZE")
    return time.monotonic() - started


def login(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
    session.post(base + "login", timeout=30, data={"username": "owner", "password": PASSWORD,
                                                     "csrf_token": token})
    return session


def timed(session: requests.Session, url: str, repeat: int) -> dict[str, Any]:
    first = session.get(url, timeout=60)
    assert first.status_code == 200, (url, first.status_code)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    times.sort()
    return {"p50_ms": round(percentile(times, 50), 1),
            "p90_ms": round(percentile(times, 90), 1),
            "max_ms": round(times[-1], 1), "bytes": len(first.content)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the seeded data directory")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="hotspotd-admin-bench-"))
    now = time.time()
    db = Database(data_dir / "hotspotd.sqlite3").open()
    seconds = seed(db, args.payments, now)
    create_account(db, username="owner", password=PASSWORD, now=now)
    db.close()
    size_mb = os.path.getsize(data_dir / "hotspotd.sqlite3") / 1e6
    print(f"seeded {args.payments} payments in {seconds:.1f} s ({size_mb:.0f} MB)")
    appliance = Appliance(demo_config(data_dir, "127.0.0.1", 0)).start()
    try:
        base = appliance.addresses["portal_url"] + "admin/"
        session = login(base)  # lands on the dashboard: empty the summary it just filled
        appliance.db.connection().execute("DELETE FROM daily_revenue")
        appliance.db.connection().execute("DELETE FROM daily_revenue_state")
        started = time.perf_counter()
        assert session.get(base, timeout=120).status_code == 200
        first_view_ms = round((time.perf_counter() - started) * 1000, 1)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        pages = {
            "dashboard": "",
            "payments (newest 100)": "payments",
            "search by phone": "payments?phone=0700012345",
            "search by receipt": "payments?receipt=B000250000",
            "search status+date range": f"payments?status=failed&from=2026-01-01&to={today}",
            "search by device MAC": "payments?code=02:BE:30:39:01:00",
            "devices": "devices",
        }
        figures = {name: timed(session, base + path, args.repeat) for name, path in pages.items()}
    finally:
        appliance.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"{'dashboard, first view':28s} {first_view_ms:7.1f} ms (fills the daily summary)")
    for name, figure in figures.items():
        print(f"{name:28s} p50 {figure['p50_ms']:7.1f} ms  p90 {figure['p90_ms']:7.1f} ms"
              f"  max {figure['max_ms']:7.1f} ms")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "parameters": {"payments": args.payments, "repeat": args.repeat},
        "seed_seconds": round(seconds, 1), "database_mb": round(size_mb, 1),
        "dashboard_first_view_ms": first_view_ms, "pages": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
