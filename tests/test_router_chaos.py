"""Chaos: the router simulator reboots, drops CoA, times out and traps API calls, and
silently skips writes, at random, while purchases, top-ups, expiries and owner revocations
happen. Afterwards the router's active set equals the entitled devices that are present,
and no device stayed online longer than the bound after its time ran out.

Numbers (printed with -s, and stated in the closing note of issue 4): see CHAOS_* below.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.appliance import running_appliance

from hotspotd.app import Appliance
from hotspotd.ledger.grants import grant_time
from hotspotd.ledger.router_ops import enqueue_router_op

DEVICES = 20
CHAOS_SECONDS = 12.0
EXPIRY_BOUND = 30.0  # issue 4: expired devices are off within this many seconds
SEED = 4
FAULTS = {"api_timeout": 0.15, "api_trap": 0.05, "silent_write": 0.05, "drop_coa": 0.3}
ROUTER = {"timeout_seconds": 0.4, "coa_timeout_seconds": 0.2,
          "enforce_interval_seconds": 0.5, "reconcile_interval_seconds": 2}


@dataclass
class Tally:
    grants: int = 0
    revocations: int = 0
    reboots: int = 0
    samples: int = 0
    worst_overstay: float = 0.0
    overstays: list[tuple[str, float]] = field(default_factory=list)


def macs() -> list[str]:
    return [f"02:00:00:00:01:{n:02X}" for n in range(DEVICES)]


def ip_of(mac: str) -> str:
    return f"10.5.51.{int(mac[-2:], 16) + 10}"


def expiries(appliance: Appliance) -> dict[str, float]:
    return {row["mac"]: row["expires_at"] for row in appliance.db.query(
        "SELECT mac, expires_at FROM entitlements")}


def active_macs(appliance: Appliance) -> set[str]:
    return {row["mac-address"] for row in appliance.router_simulator.active_hosts()}


def watch(appliance: Appliance, tally: Tally, stop: threading.Event) -> None:
    """Sample the router: how long after its expiry is any device still online?"""
    while not stop.wait(0.1):
        online = active_macs(appliance)
        now = appliance.now()
        ends = expiries(appliance)
        tally.samples += 1
        for mac in online:
            overstay = now - ends.get(mac, 0.0) if mac in ends else 0.0
            if overstay > tally.worst_overstay:
                tally.worst_overstay = overstay
            if overstay > EXPIRY_BOUND:
                tally.overstays.append((mac, overstay))


def act(appliance: Appliance, rng: random.Random, tally: Tally) -> None:
    """One random thing: a purchase or top-up, an owner revocation, or a router reboot."""
    roll = rng.random()
    mac = rng.choice(macs())
    now = appliance.now()
    if roll < 0.75:
        with appliance.db.write() as conn:
            grant_time(conn, mac=mac, seconds=rng.randint(2, 12), now=now, plan_id=None,
                       rate_limit=rng.choice(["1M/2M", "2M/4M"]), source="chaos", ip=ip_of(mac))
        tally.grants += 1
    elif roll < 0.93:
        with appliance.db.write() as conn:
            conn.execute("UPDATE entitlements SET expires_at = ? WHERE mac = ?", (now, mac))
            enqueue_router_op(conn, mac=mac, ip=None, action="disconnect", now=now)
        tally.revocations += 1
    else:
        appliance.router_simulator.reboot()
        tally.reboots += 1
    appliance.outbox.wake()


def converged(appliance: Appliance) -> bool:
    now = appliance.now()
    ends = expiries(appliance)
    online = active_macs(appliance)
    must = {mac for mac, end in ends.items() if end > now + 3}  # well inside their time
    may = {mac for mac, end in ends.items() if end > now}
    return must <= online <= may


def test_router_converges_under_chaos(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    tally = Tally()
    with running_appliance(tmp_path, router=ROUTER) as appliance:
        sim = appliance.router_simulator
        for mac in macs():
            sim.add_host(mac, ip_of(mac))
        sim.faults.seed_with(SEED)
        sim.faults.set(**FAULTS)
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(appliance, tally, stop), daemon=True)
        watcher.start()
        started = time.monotonic()
        while time.monotonic() - started < CHAOS_SECONDS:
            act(appliance, rng, tally)
            time.sleep(rng.uniform(0.02, 0.15))
        # A last round of purchases, so some devices must end up online.
        for mac in macs()[:8]:
            with appliance.db.write() as conn:
                grant_time(conn, mac=mac, seconds=60, now=appliance.now(), plan_id=None,
                           rate_limit="1M/2M", source="chaos", ip=ip_of(mac))
            tally.grants += 1
        appliance.outbox.wake()
        sim.faults.clear()
        calm = time.monotonic()
        while not converged(appliance):
            assert time.monotonic() - calm < 25, (
                f"not converged: active {sorted(active_macs(appliance))}")
            time.sleep(0.1)
        converge_seconds = time.monotonic() - calm
        stop.set()
        watcher.join(2)
        print(f"\nchaos: {tally.grants} grants, {tally.revocations} revocations, "
              f"{tally.reboots} reboots, CoA dropped {sim._coa.dropped}, "
              f"{tally.samples} samples; worst time online after expiry "
              f"{tally.worst_overstay:.1f}s (bound {EXPIRY_BOUND:.0f}s); converged "
              f"{converge_seconds:.1f}s after the faults stopped; online at the end: "
              f"{len(active_macs(appliance))}")
        assert not tally.overstays, tally.overstays
        assert tally.reboots >= 1 and tally.revocations >= 1
