"""Purchase latency: N purchases through the demo appliance, callback receipt → device online.

Runs the whole demo appliance in this process (`Appliance(demo_config(...))`: daemon, Daraja
simulator, MikroTik simulator, all on loopback), then plays `--concurrency` customers at
once, each buying a plan for its own device with its own M-Pesa number. Each device is a
simulated phone on the WiFi: its own MAC and loopback address (127.64.x.y) registered in the
MikroTik simulator's host table; the appliance places its requests by their source address.

1. `POST /api/purchases` `{"plan_id", "phone"}` from the device's address to the real
   portal API over HTTP (the daemon stores the payment and sends the STK push to the Daraja
   simulator before it answers, or puts it in line for the Daraja budget: the customer
   then waits for the push);
2. after `--pin-delay` seconds, approves the prompt on the simulator's phone page over HTTP
   (`POST /phone/<CheckoutRequestID>/approve`), as the customer entering the PIN;
3. waits until the MikroTik simulator has the device in `/ip/hotspot/active`.

Clock: `time.monotonic()` in this process for every timestamp. Two light probes record
them without changing behaviour: the Daraja simulator's callback delivery (the moment it
starts the POST to the daemon = callback receipt on loopback, and the moment the daemon
acknowledged it) and the MikroTik simulator's `login_host` (the moment it returns, the
host is in the active table = online). See bench/README.md for the definitions.

Usage: python bench/purchase_latency.py [--purchases 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from benchstats import percentile

import hotspotd
from hotspotd.app import Appliance
from hotspotd.commands.demo import demo_config
from hotspotd.ledger.plans import seed_demo_plans
from hotspotd.router.gateway import RouterGateway
from hotspotd.simulators.daraja import simulator as daraja_simulator_module
from hotspotd.simulators.phones import SimulatedPhone, join_wifi

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "purchase_latency.json"
HTTP_TIMEOUT = 30.0
PERCENTILES = (50, 90, 99)

DEFINITIONS = {
    "callback_to_online": "Daraja simulator starts the STK callback POST to the daemon "
                          "(= receipt, loopback) -> MikroTik simulator's login_host returned "
                          "for the MAC (host in /ip/hotspot/active)",
    "callback_to_ack": "callback POST started -> daemon's HTTP answer received (the payment "
                       "is settled and the grant committed before the daemon answers)",
    "purchase_request": "round trip of POST /api/purchases (payment stored, STK push sent "
                        "and accepted)",
    "purchase_to_online": "POST /api/purchases sent -> device online; includes --pin-delay",
}


# -- probes -------------------------------------------------------------------------------

class Probes:
    """Timestamps from inside the simulators, keyed by CheckoutRequestID or MAC."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.callback_sent: dict[str, float] = {}
        self.callback_acked: dict[str, float] = {}
        self.callback_posts: dict[str, int] = {}
        self.online_at: dict[str, float] = {}
        self.logins: dict[str, int] = {}
        self._online_events: dict[str, threading.Event] = {}

    def watch_mac(self, mac: str) -> threading.Event:
        with self._lock:
            return self._online_events.setdefault(mac, threading.Event())

    def install(self, appliance: Appliance) -> None:
        self._wrap_callback_delivery()
        self._wrap_router_login(appliance.router_simulator)

    def _wrap_callback_delivery(self) -> None:
        original = daraja_simulator_module.deliver

        def timed_deliver(url: str, body: dict[str, Any], copies: int,
                          record: Callable[[bool], None], session: Any = None) -> None:
            checkout_id = body["Body"]["stkCallback"]["CheckoutRequestID"]
            sent = time.monotonic()
            try:
                original(url, body, copies, record, session)
            finally:
                acked = time.monotonic()
                with self._lock:
                    self.callback_sent.setdefault(checkout_id, sent)
                    self.callback_acked.setdefault(checkout_id, acked)
                    self.callback_posts[checkout_id] = (
                        self.callback_posts.get(checkout_id, 0) + copies)

        daraja_simulator_module.deliver = timed_deliver  # resolve() looks it up per call

    def _wrap_router_login(self, router: Any) -> None:
        original = router.login_host

        def timed_login(**kwargs: Any) -> Any:
            session = original(**kwargs)
            online = time.monotonic()
            with self._lock:
                self.online_at.setdefault(session.mac, online)
                self.logins[session.mac] = self.logins.get(session.mac, 0) + 1
                event = self._online_events.setdefault(session.mac, threading.Event())
            event.set()
            return session

        router.login_host = timed_login  # the RouterOS API handler calls router.login_host


# -- one customer ---------------------------------------------------------------------------

@dataclass
class Purchase:
    index: int
    device: SimulatedPhone
    phone: str
    started_at: float = 0.0
    answered_at: float = 0.0
    http_status: int = 0
    public_id: str = ""
    checkout_request_id: str = ""
    online: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def mac(self) -> str:
        return self.device.mac


def customer(router: Any, index: int) -> Purchase:
    """Customer `index`: a phone of its own on the WiFi (distinct MAC and address, in the
    router's host table) and its own M-Pesa number."""
    device = join_wifi(router, f"02:B0:00:00:{index >> 8 & 0xFF:02X}:{index & 0xFF:02X}")
    phone = f"2547{11_000_000 + index:08d}"  # no auto-answer: approved on the phone page
    return Purchase(index, device, phone)


class Customers:
    """Plays the customers: buy over the portal API, approve on the phone, wait online."""

    def __init__(self, appliance: Appliance, probes: Probes, *, plan_id: int,
                 pin_delay: float, online_timeout: float) -> None:
        self.portal_url = appliance.addresses["portal_url"].rstrip("/")
        self.phone_url = appliance.addresses["daraja_url"].rstrip("/") + "/phone"
        self.db = appliance.db
        self.probes = probes
        self.plan_id = plan_id
        self.pin_delay = pin_delay
        self.online_timeout = online_timeout
        self._local = threading.local()

    def _http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def buy(self, purchase: Purchase) -> Purchase:
        online = self.probes.watch_mac(purchase.mac)
        try:
            self._post_purchase(purchase)
            if not purchase.errors:
                time.sleep(self.pin_delay)
                self._approve(purchase)
        except requests.RequestException as exc:
            purchase.errors.append(f"HTTP error: {exc.__class__.__name__}: {exc}")
        if not purchase.errors:
            purchase.online = online.wait(self.online_timeout)
            if not purchase.online:
                purchase.errors.append(f"not online after {self.online_timeout:.0f} s")
        return purchase

    def _post_purchase(self, purchase: Purchase) -> None:
        body = {"plan_id": self.plan_id, "phone": purchase.phone}
        purchase.started_at = time.monotonic()
        response = purchase.device.post(f"{self.portal_url}/api/purchases", json=body,
                                        timeout=HTTP_TIMEOUT)
        purchase.answered_at = time.monotonic()
        purchase.http_status = response.status_code
        if response.status_code != 202:
            purchase.errors.append(f"POST /api/purchases: HTTP {response.status_code} "
                                   f"{response.text.strip()[:200]}")
            return
        purchase.public_id = response.json()["id"]
        checkout = self._pushed(purchase.public_id)
        if not checkout:
            purchase.errors.append(f"no STK push within {self.online_timeout:.0f} s")
            return
        purchase.checkout_request_id = checkout

    def _pushed(self, public_id: str) -> str:
        """The payment's CheckoutRequestID once its push is out: at once, or after its wait
        in line for the Daraja budget ("" if not within the timeout)."""
        deadline = time.monotonic() + self.online_timeout
        while True:
            row = self.db.query_one(
                "SELECT checkout_request_id FROM payments WHERE public_id = ?", (public_id,))
            if row is not None and row["checkout_request_id"]:
                return str(row["checkout_request_id"])
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.02)

    def _approve(self, purchase: Purchase) -> None:
        response = self._http().post(
            f"{self.phone_url}/{purchase.checkout_request_id}/approve",
            allow_redirects=False, timeout=HTTP_TIMEOUT)
        if response.status_code != 303:
            purchase.errors.append(f"phone page approve: HTTP {response.status_code}")


# -- checks -------------------------------------------------------------------------------

def check_database(appliance: Appliance, purchases: Sequence[Purchase]) -> list[str]:
    """Every purchase completed with exactly one grant; no grant without a payment."""
    problems = []
    rows = appliance.db.query(
        "SELECT p.public_id, p.status, p.settled_by, p.receipt,"
        " (SELECT COUNT(*) FROM grants g WHERE g.payment_id = p.id) AS grants,"
        " (SELECT COUNT(*) FROM grants g WHERE g.receipt = p.receipt) AS receipt_grants"
        " FROM payments p")
    by_id = {row["public_id"]: row for row in rows}
    for purchase in purchases:
        row = by_id.get(purchase.public_id)
        if row is None:
            problems.append(f"#{purchase.index} {purchase.mac}: no payment row")
        elif row["status"] != "completed" or row["grants"] != 1 or row["receipt_grants"] != 1:
            problems.append(f"#{purchase.index} {purchase.mac}: payment {row['status']} "
                            f"with {row['grants']} grant(s), receipt {row['receipt']} "
                            f"in {row['receipt_grants']} grant(s)")
    total_grants = appliance.db.query_one("SELECT COUNT(*) AS n FROM grants")["n"]
    if len(rows) != len(purchases) or total_grants != len(purchases):
        problems.append(f"{len(rows)} payments and {total_grants} grants in the database "
                        f"for {len(purchases)} purchases")
    return problems


def check_router(appliance: Appliance, probes: Probes,
                 purchases: Sequence[Purchase]) -> list[str]:
    """As an outsider: every device is in /ip/hotspot/active over the RouterOS API."""
    router = appliance.addresses["router"]
    gateway = RouterGateway(host=router["api_host"], port=router["api_port"],
                            user=router["user"], password=router["password"])
    try:
        active = {host.mac for host in gateway.active_hosts()}
    finally:
        gateway.close()
    problems = [f"#{p.index} {p.mac}: not in /ip/hotspot/active"
                for p in purchases if p.mac not in active]
    problems += [f"#{p.index} {p.mac}: logged in {probes.logins.get(p.mac, 0)} times"
                 for p in purchases if probes.logins.get(p.mac, 0) != 1]
    return problems


def settled_by(appliance: Appliance) -> dict[str, int]:
    rows = appliance.db.query("SELECT settled_by, COUNT(*) AS n FROM payments"
                              " GROUP BY settled_by")
    return {str(row["settled_by"]): row["n"] for row in rows}


# -- figures ------------------------------------------------------------------------------

def summarise(values_seconds: Sequence[float]) -> dict[str, float | int]:
    values = sorted(v * 1000.0 for v in values_seconds)
    if not values:
        return {"count": 0}
    summary: dict[str, float | int] = {"count": len(values), "min_ms": round(values[0], 1)}
    for pct in PERCENTILES:
        summary[f"p{pct}_ms"] = round(percentile(values, pct), 1)
    summary["max_ms"] = round(values[-1], 1)
    summary["mean_ms"] = round(sum(values) / len(values), 1)
    return summary


def latencies(probes: Probes, purchases: Sequence[Purchase]) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {name: [] for name in DEFINITIONS}
    for p in purchases:
        if p.answered_at:
            series["purchase_request"].append(p.answered_at - p.started_at)
        online = probes.online_at.get(p.mac)
        sent = probes.callback_sent.get(p.checkout_request_id)
        acked = probes.callback_acked.get(p.checkout_request_id)
        if online is not None:
            series["purchase_to_online"].append(online - p.started_at)
        if online is not None and sent is not None:
            series["callback_to_online"].append(online - sent)
        if acked is not None and sent is not None:
            series["callback_to_ack"].append(acked - sent)
    return series


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation()}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, check=True,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def render(result: dict[str, Any]) -> str:
    params = result["parameters"]
    lines = [f"purchase latency: {params['purchases']} purchases, concurrency "
             f"{params['concurrency']}, pin delay {params['pin_delay_seconds']} s, "
             f"{result['wall_seconds']} s wall",
             f"{'metric':<22}{'n':>5}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}  (ms)"]
    for name, s in result["metrics"].items():
        if s.get("count"):
            lines.append(f"{name:<22}{s['count']:>5}{s['p50_ms']:>10}{s['p90_ms']:>10}"
                         f"{s['p99_ms']:>10}{s['max_ms']:>10}")
        else:
            lines.append(f"{name:<22}{0:>5}")
    lines.append(f"settled by: {result['settled_by']}; failures: {result['failure_count']}")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=200, help="default: %(default)s")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="customers buying at the same time (default: %(default)s)")
    parser.add_argument("--pin-delay", type=float, default=1.0,
                        help="seconds between the purchase answer and approving the prompt "
                             "on the phone page (default: %(default)s)")
    parser.add_argument("--plan-id", type=int, default=1, help="default: %(default)s")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds each device may take to come online after approval "
                             "(default: %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="results JSON (default: bench/results/purchase_latency.json)")
    args = parser.parse_args(argv)
    if args.purchases < 1 or args.purchases > 60_000 or args.concurrency < 1:
        parser.error("--purchases must be 1..60000 and --concurrency at least 1")
    return args


def start_appliance(data_dir: Path) -> Appliance:
    config = demo_config(data_dir, "127.0.0.1", 0)
    appliance = Appliance(config).start()
    with appliance.db.write() as conn:
        seed_demo_plans(conn, appliance.now())
    return appliance


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    appliance = start_appliance(data_dir)
    try:
        probes = Probes()
        probes.install(appliance)
        customers = Customers(appliance, probes, plan_id=args.plan_id,
                              pin_delay=args.pin_delay, online_timeout=args.timeout)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.concurrency,
                                thread_name_prefix="customer") as pool:
            purchases = list(pool.map(customers.buy,
                                      [customer(appliance.router_simulator, index)
                                       for index in range(args.purchases)]))
        wall = time.monotonic() - started
        failures = [f"#{p.index} {p.mac}: {'; '.join(p.errors)}" for p in purchases if p.errors]
        failures += check_database(appliance, purchases)
        failures += check_router(appliance, probes, purchases)
        return build_result(args, appliance, probes, purchases, wall, failures)
    finally:
        appliance.stop()


def build_result(args: argparse.Namespace, appliance: Appliance, probes: Probes,
                 purchases: Sequence[Purchase], wall: float,
                 failures: list[str]) -> dict[str, Any]:
    series = latencies(probes, purchases)
    return {
        "benchmark": "purchase_latency",
        "ok": not failures,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "hotspotd_version": hotspotd.__version__,
        "git_commit": git_commit(),
        "parameters": {"purchases": args.purchases, "concurrency": args.concurrency,
                       "pin_delay_seconds": args.pin_delay, "plan_id": args.plan_id,
                       "online_timeout_seconds": args.timeout,
                       "phones": "one distinct 2547110xxxxx number per purchase, "
                                 "approved on the simulator's phone page"},
        "machine": machine(),
        "wall_seconds": round(wall, 2),
        "purchases_per_second": round(len(purchases) / wall, 2) if wall else None,
        "definitions": DEFINITIONS,
        "metrics": {name: summarise(series[name]) for name in DEFINITIONS},
        "settled_by": settled_by(appliance),
        "completed_online": sum(p.online for p in purchases),
        "failure_count": len(failures),
        "failures": failures[:100],
    }


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write atomically: a `.tmp` beside it (git-ignored), then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="hotspotd-bench-") as data_dir:
        result = run(args, Path(data_dir))
    print(render(result))
    write_result(args.output, result)
    print(f"results written to {args.output}")
    if result["failures"]:
        print("FAILED:", *result["failures"], sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
