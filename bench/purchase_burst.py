"""A burst of purchases at once, against the one Daraja request budget: queued, never dropped.

Runs the demo appliance in this process (daemon, Daraja simulator, MikroTik simulator on
loopback; the configuration's Daraja budget unless `--requests-per-minute` says otherwise)
and sends `--purchases` purchases at the same moment, each from its own device and for its
own phone number. Every device is a simulated phone on the WiFi: its own MAC and loopback
address (127.64.x.y), registered in the MikroTik simulator's host table, so the appliance
places each purchase by its source address as it would a real phone's.
A "phone" thread approves every STK prompt `--pin-delay` s after it reaches the simulator.

Reported:
- how the purchases were answered (202 at once / queued / refused) and how long the answer
  took (p50, p99, max);
- request -> prompt on the phone (the wait in line), request -> device online, and paid
  (prompt approved at the simulator) -> device online: settling money already paid must
  not wait behind the line of new prompts;
- fairness: pushes reaching the simulator out of arrival order (payment id order), counted
  as inversions; prompts per phone (must be exactly one each);
- how every payment ended, grants made, time until the last one was final, and Daraja
  requests per purchase.

Usage: python bench/purchase_burst.py [--purchases 200] [--requests-per-minute 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchstats import percentile

from hotspotd.app import Appliance
from hotspotd.commands.demo import demo_config
from hotspotd.ledger.plans import seed_demo_plans
from hotspotd.simulators.phones import SimulatedPhone, join_wifi

RESULTS = Path(__file__).resolve().parent / "results"


def figures(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": round(percentile(values, 50), 3), "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3)}


def phone(index: int) -> str:
    return f"2547{12000000 + index:08d}"


def mac(index: int) -> str:
    return f"02:B1:00:00:{index // 256:02X}:{index % 256:02X}"


class Phones(threading.Thread):
    """Approves every open prompt `pin_delay` s after the simulator received it."""

    def __init__(self, appliance: Appliance, pin_delay: float) -> None:
        super().__init__(daemon=True)
        self.sim = appliance.daraja_simulator
        self.pin_delay = pin_delay
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            now = time.time()
            for prompt in self.sim.prompts():
                if prompt["state"] == "pending" and now - prompt["created_at"] >= self.pin_delay:
                    try:
                        self.sim.resolve(prompt["checkout_request_id"], "approve")
                    except Exception as exc:  # already answered (a race with a query): fine
                        logging.debug("approve %s: %r", prompt["checkout_request_id"], exc)


def buy(portal: str, index: int, device: SimulatedPhone,
        start: threading.Event) -> dict[str, Any]:
    start.wait()
    sent = time.time()
    response = device.post(portal + "api/purchases", timeout=120,
                           json={"plan_id": 1, "phone": phone(index)})
    body = response.json() if response.headers.get("content-type", "").startswith(
        "application/json") else {}
    return {"index": index, "sent": sent, "answered": time.time(), "status": response.status_code,
            "queued": bool(body.get("queue_position")), "public_id": body.get("public_id")}


def wait_final(appliance: Appliance, count: int, timeout: float) -> float | None:
    """Seconds until every payment is final (None: not within `timeout`)."""
    started = time.time()
    while time.time() - started < timeout:
        open_ = appliance.db.query_one("SELECT COUNT(*) FROM payments WHERE status = 'pending'")
        total = appliance.db.query_one("SELECT COUNT(*) FROM payments")
        if total[0] >= count and open_[0] == 0:
            return time.time()
        time.sleep(0.2)
    return None


class OnlineWatch(threading.Thread):
    """Wall-clock time each device was first seen in the router's active list."""

    def __init__(self, appliance: Appliance) -> None:
        super().__init__(daemon=True)
        self.router = appliance.router_simulator
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            now = time.time()
            for host in self.router.active_hosts():
                self.seen.setdefault(host.get("mac-address", "").upper(), now)


def inversions(order: list[int]) -> int:
    return sum(1 for i, a in enumerate(order) for b in order[i + 1:] if a > b)


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = demo_config(Path(tempfile.mkdtemp(prefix="hotspotd-burst-")), "127.0.0.1", 0)
    config = config.replace("c2b", pull_interval_seconds=0)
    if args.requests_per_minute:
        config = config.replace("daraja", requests_per_minute=args.requests_per_minute)
    appliance = Appliance(config).start()
    phones, watch = Phones(appliance, args.pin_delay), OnlineWatch(appliance)
    try:
        with appliance.db.write() as conn:
            seed_demo_plans(conn, time.time())
        appliance.daraja_simulator.faults.drop_callbacks = args.callbacks == "off"
        phones.start()
        watch.start()
        start = threading.Event()
        portal = appliance.addresses["portal_url"]
        devices = [join_wifi(appliance.router_simulator, mac(i)) for i in range(args.purchases)]
        with ThreadPoolExecutor(args.purchases) as pool:
            futures = [pool.submit(buy, portal, i, devices[i], start)
                       for i in range(args.purchases)]
            time.sleep(0.5)  # every thread waits at the gate
            start.set()
            buys = [future.result() for future in futures]
        final_at = wait_final(appliance, args.purchases,
                              config.settlement.queue_max_seconds + 120)
        deadline = time.time() + 30
        while len(watch.seen) < len(buys) and time.time() < deadline:
            time.sleep(0.1)
        stats = appliance.daraja_simulator.stats()
        prompts = appliance.daraja_simulator.prompts()
        rows = appliance.db.query("SELECT id, phone, status, result_code FROM payments")
        grants = appliance.db.query_one("SELECT COUNT(*) FROM grants")[0]
    finally:
        phones.stop.set()
        watch.stop.set()
        appliance.stop()
    online = {i: watch.seen[mac(i)] for i in range(args.purchases) if mac(i) in watch.seen}
    first_sent = min(b["sent"] for b in buys)
    payment_of = {row["phone"]: row["id"] for row in rows}
    pushed_in = [payment_of[p["phone"]] for p in sorted(prompts, key=lambda p: p["created_at"])
                 if p["phone"] in payment_of]
    prompted = {p["phone"]: p["created_at"] for p in prompts}
    paid = {p["phone"]: p["resolved_at"] for p in prompts if p["receipt"]}
    per_phone = Counter(p["phone"] for p in prompts)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "purchases": args.purchases, "pin_delay": args.pin_delay, "callbacks": args.callbacks,
        "requests_per_minute": config.daraja.requests_per_minute,
        "queue_max_seconds": config.settlement.queue_max_seconds,
        "answers": dict(Counter(str(b["status"]) for b in buys)),
        "queued": sum(b["queued"] for b in buys),
        "answer_seconds": figures([b["answered"] - b["sent"] for b in buys]),
        "request_to_prompt_seconds": figures(
            [prompted[phone(b["index"])] - b["sent"] for b in buys
             if phone(b["index"]) in prompted]),
        "request_to_online_seconds": figures(
            [online[b["index"]] - b["sent"] for b in buys if b["index"] in online]),
        "paid_to_online_seconds": figures(
            [online[b["index"]] - paid[phone(b["index"])] for b in buys
             if b["index"] in online and phone(b["index"]) in paid]),
        "push_order_inversions": inversions(pushed_in),
        "phones_prompted": len(per_phone),
        "phones_prompted_more_than_once": sum(1 for n in per_phone.values() if n > 1),
        "payments": dict(Counter(f"{r['status']}:{r['result_code']}" for r in rows)),
        "grants": grants,
        "devices_online": len(online),
        "all_final_after_seconds": round(final_at - first_sent, 1) if final_at else None,
        "daraja_requests": stats,
        "daraja_requests_per_purchase": round(sum(stats.values()) / args.purchases, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=200)
    parser.add_argument("--pin-delay", type=float, default=1.0)
    parser.add_argument("--callbacks", choices=("on", "off"), default="on")
    parser.add_argument("--requests-per-minute", type=int, default=0,
                        help="Daraja budget (default: the configuration's)")
    parser.add_argument("--out", type=Path, default=RESULTS / "purchase_burst.json",
                        help="where to write the figures")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()
    lost = args.purchases - sum(n for code, n in result["answers"].items() if code == "202")
    twice = result["phones_prompted_more_than_once"]
    return 0 if not lost and not twice and result["all_final_after_seconds"] else 1


if __name__ == "__main__":
    sys.exit(main())
