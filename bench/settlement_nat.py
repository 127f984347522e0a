"""Settlement behind NAT vs. with callbacks: "paid at the simulator" -> "device online".

Runs the demo appliance in this process (daemon, Daraja simulator, MikroTik simulator on
loopback; default settlement timings and Daraja budget unless overridden) and plays
`--concurrency` customers buying `--purchases` plans, each with its own device and phone
number. Each device is a simulated phone on the WiFi (its own MAC and loopback address,
registered in the MikroTik simulator's host table): the appliance places its purchase by
its source address. Each customer approves the STK prompt on the simulator after
`--pin-delay` s.

- paid: the simulator resolves the prompt (`resolved_at`, wall clock of this process);
- online: the MikroTik simulator lists the device in `/ip/hotspot/active` (polled every
  20 ms).

`--callbacks off` drops every STK callback at the simulator (the appliance behind NAT:
settled by STK Query only); `--callbacks on` delivers them (they are untrusted without an
allow-list, so each is confirmed by one STK Query before it grants). Also reported: Daraja
requests (OAuth + push + query + Pull) per purchase.

Usage: python bench/settlement_nat.py [--purchases 40] [--concurrency 4] [--callbacks off]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchstats import percentile

from hotspotd.app import Appliance
from hotspotd.commands.demo import demo_config
from hotspotd.ledger.plans import seed_demo_plans
from hotspotd.simulators.phones import join_wifi

RESULTS = Path(__file__).resolve().parent / "results"


def one_purchase(appliance: Appliance, index: int, pin_delay: float) -> dict[str, Any]:
    mac = f"02:00:00:00:{index // 256:02X}:{index % 256:02X}"
    phone = f"2547{11000000 + index:08d}"
    portal = appliance.addresses["portal_url"]
    sim, router = appliance.daraja_simulator, appliance.router_simulator
    device = join_wifi(router, mac)
    response = device.post(portal + "api/purchases", timeout=60,
                           json={"plan_id": 1, "phone": phone})
    response.raise_for_status()
    checkout = None
    waited_until = time.time() + 300  # the purchase may wait in line for its push
    while checkout is None and time.time() < waited_until:
        checkout = next((p["checkout_request_id"] for p in sim.prompts()
                         if p["phone"] == phone), None)
        if checkout is None:
            time.sleep(0.05)
    if checkout is None:
        return {"mac": mac, "paid_to_online": None}
    time.sleep(pin_delay)
    sim.resolve(checkout, "approve")
    paid_at = next(p["resolved_at"] for p in sim.prompts() if p["phone"] == phone)
    deadline = time.time() + 300
    while time.time() < deadline:
        if any(host.get("mac-address", "").upper() == mac for host in router.active_hosts()):
            return {"mac": mac, "paid_to_online": time.time() - paid_at}
        time.sleep(0.02)
    return {"mac": mac, "paid_to_online": None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = demo_config(Path(tempfile.mkdtemp(prefix="hotspotd-bench-")), "127.0.0.1", 0)
    config = config.replace("c2b", pull_interval_seconds=args.pull_interval)
    if args.requests_per_minute:
        config = config.replace("daraja", requests_per_minute=args.requests_per_minute)
    appliance = Appliance(config).start()
    try:
        with appliance.db.write() as conn:
            seed_demo_plans(conn, time.time())
        appliance.daraja_simulator.faults.drop_callbacks = args.callbacks == "off"
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(lambda i: one_purchase(appliance, i, args.pin_delay),
                                    range(args.purchases)))
        stats = appliance.daraja_simulator.stats()
    finally:
        appliance.stop()
    delays = [r["paid_to_online"] for r in results if r["paid_to_online"] is not None]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "callbacks": args.callbacks, "purchases": args.purchases,
        "concurrency": args.concurrency, "pin_delay": args.pin_delay,
        "requests_per_minute": config.daraja.requests_per_minute,
        "settlement": {"inline_query_delays": list(config.settlement.inline_query_delays),
                       "query_backoff_seconds": list(config.settlement.query_backoff_seconds)},
        "not_online": len(results) - len(delays),
        "paid_to_online_seconds": {"p50": round(percentile(delays, 50), 3),
                                   "p99": round(percentile(delays, 99), 3),
                                   "mean": round(statistics.mean(delays), 3),
                                   "max": round(max(delays), 3)},
        "daraja_requests": stats,
        "daraja_requests_per_purchase": round(sum(stats.values()) / args.purchases, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pin-delay", type=float, default=1.0)
    parser.add_argument("--callbacks", choices=("on", "off"), default="off")
    parser.add_argument("--requests-per-minute", type=int, default=0,
                        help="Daraja budget (default: the configuration's)")
    parser.add_argument("--pull-interval", type=int, default=0,
                        help="Pull Transactions interval (default 0: off, not counted)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = run(args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"settlement_nat_callbacks_{args.callbacks}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0 if not result["not_online"] else 1


if __name__ == "__main__":
    sys.exit(main())
