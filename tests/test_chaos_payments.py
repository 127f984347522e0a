"""Issue 3 chaos test: N purchases through the real daemon (a subprocess) against the Daraja
simulator over HTTP, with random faults: lost, late and duplicate callbacks, STK payments
also confirmed by C2B, spike arrest, pushes that time out after reaching the phone, and the
daemon SIGKILLed and restarted at random moments. At the end: every payment final, granted
time per device equal to the completed plans, no receipt granted twice, every approved
prompt's money found.

Each device is a phone on the daemon's simulated WiFi (its own loopback address); the daemon
places every purchase by that address. The router simulator lives inside the daemon and
forgets its hosts when the daemon is killed, so the phones join again after each restart,
as real phones would still be on a router that never went down. A purchase that reaches a
restarted daemon before its phone has rejoined is retried like one that hit a dead daemon;
otherwise an honest phone is never refused as "not on the WiFi".
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from support.daemon import Daemon, DaemonError
from support.phones import daemon_phone
from support.wait import wait_until

from hotspotd.daraja.client import DarajaClient
from hotspotd.daraja.errors import DarajaError
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.phones import SimulatedPhone

N = int(os.environ.get("HOTSPOTD_CHAOS_N", "200"))
KILLS = 3
SEED = int(os.environ.get("HOTSPOTD_CHAOS_SEED", str(random.SystemRandom().randrange(10**6))))
PHONES = ["254708374149"] * 3 + ["254700000000"] * 3 + [
    "254700000001", "254700000017", "254700000019", "254700000020", "254700000032",
    "254700000037", "254700000099"]  # mostly approving; 99 never answers
DEVICES = [f"AA:BB:CC:77:00:{n:02d}" for n in range(20)]
PLANS = ((10, 1800), (20, 3600))
FAULTS = {"drop_probability": 0.3, "duplicate_probability": 0.3, "delay_max": 1.0,
          "spike_arrest_probability": 0.03, "c2b_for_stk": True, "hang_seconds": 1.5}


def start_daemon(tmp_path: Path, sim: DarajaSimulator, creds: dict[str, str]) -> Daemon:
    daemon = Daemon(tmp_path / "data", {
        "daraja": {"backend": "daraja", "base_url": sim.url, "timeout_seconds": 1.0,
                   "requests_per_minute": 30000, "push_max_wait_seconds": 10.0, **creds},
        "settlement": {"inline_query_delays": [0.3], "query_backoff_seconds": [0.3, 0.6, 1.0],
                       "reconcile_interval_seconds": 1, "pending_expiry_seconds": 8},
        "limits": {"push_per_device": 10000, "push_per_phone": 10000, "cancel_limit": 10000,
                   "open_per_device": 10000},  # the abuse limits are not under test here
        "c2b": {"pull_interval_seconds": 2},
    })
    return daemon


class Wifi:
    """The devices' phones on the daemon's WiFi; `ready` while every one is joined to the
    running start's router simulator, `generation` counts the joins."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.generation = 0
        self.phones: dict[str, SimulatedPhone] = {}
        self._lock = threading.Lock()

    def rejoin(self, daemon: Daemon) -> None:
        phones = {mac: daemon_phone(daemon, mac) for mac in DEVICES}  # same addresses
        with self._lock:
            self.phones, self.generation = phones, self.generation + 1
        self.ready.set()

    def phone(self, mac: str) -> tuple[SimulatedPhone, int]:
        with self._lock:
            return self.phones[mac], self.generation

    def rejoined_since(self, generation: int) -> bool:
        """The daemon restarted after `generation` (its phones rejoining or rejoined)."""
        with self._lock:
            return not self.ready.is_set() or self.generation != generation


def restart(daemon: Daemon, client: DarajaClient, wifi: Wifi) -> None:
    daemon.start()
    wifi.rejoin(daemon)
    root = daemon.callback_url().rsplit("/", 1)[0]  # .../callbacks/<token>
    for _ in range(20):  # the simulator's random spike arrest hits the test's client too
        try:
            client.register_c2b_urls(confirmation_url=root + "/c2b/confirmation",
                                     validation_url=root + "/c2b/validation")
            return
        except DarajaError:
            time.sleep(0.1)
    raise AssertionError("could not register the C2B URLs")


def test_chaos(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    print(f"chaos: N={N} seed={SEED} kills={KILLS} faults={FAULTS}")
    creds = {"consumer_key": secrets.token_urlsafe(8), "consumer_secret": secrets.token_urlsafe(8),
             "passkey": secrets.token_hex(16), "shortcode": "174379"}
    sim = DarajaSimulator(consumer_key=creds["consumer_key"],
                          consumer_secret=creds["consumer_secret"], passkey=creds["passkey"],
                          approve_delay=0.1, auto_resolve_delay=0.1)
    sim.start()
    sim.faults.update(**FAULTS)
    client = DarajaClient(base_url=sim.url, consumer_key=creds["consumer_key"],
                          consumer_secret=creds["consumer_secret"], shortcode="174379",
                          passkey=creds["passkey"])
    daemon = start_daemon(tmp_path, sim, creds)
    plan_ids = [daemon.seed_plan(name=f"p{price}", price=price, duration_seconds=seconds)
                for price, seconds in PLANS]
    lock = threading.Lock()
    answers: Counter[str] = Counter()
    wifi = Wifi()
    try:
        restart(daemon, client, wifi)
        done = threading.Event()
        killer = threading.Thread(target=kill_now_and_then, args=(
            daemon, client, wifi, rng.random(), done, answers, lock))
        killer.start()
        with ThreadPoolExecutor(8) as pool:
            for _ in range(N):
                pool.submit(purchase, daemon, sim, wifi, rng.choice(plan_ids),
                            rng.choice(PHONES), rng.choice(DEVICES), rng.random() < 0.05,
                            answers, lock)
                time.sleep(0.02)
        done.set()
        killer.join()
        assert answers["403"] == 0, answers  # an honest phone on the WiFi is always placed
        if not daemon.running:
            restart(daemon, client, wifi)
        sim.faults.update(drop_probability=0.0, spike_arrest_probability=0.0)
        wait_until(lambda: not daemon.query("SELECT id FROM payments WHERE status = 'pending'"),
                   timeout=60, interval=0.5, message="every payment to end")
        wait_until(lambda: not unfound_money(daemon, sim), timeout=30, interval=0.5,
                   message="every approved prompt's money to be found")
        check_invariants(daemon, sim)
        stats = sim.stats()
        payments = daemon.query("SELECT status, COUNT(*) AS n FROM payments GROUP BY status")
        print(f"chaos result: answers={dict(answers)} payments={payments}"
              f" daraja requests={stats}")
    finally:
        daemon.close()
        sim.stop()


def purchase(daemon: Daemon, sim: DarajaSimulator, wifi: Wifi, plan_id: int, phone: str,
             mac: str, hang: bool, answers: Counter[str], lock: threading.Lock) -> None:
    if hang:
        sim.faults.update(timeout_next=1)
    for _ in range(100):  # the customer taps again while the daemon restarts
        wifi.ready.wait(30)
        device, generation = wifi.phone(mac)
        try:
            response = device.post(daemon.url("/api/purchases"), timeout=15,
                                   json={"plan_id": plan_id, "phone": phone})
            outcome = str(response.status_code)
            if not (outcome == "403" and wifi.rejoined_since(generation)):
                break
            outcome = "403 before the phone rejoined"
        except (requests.RequestException, DaemonError) as exc:  # killed or restarting
            outcome = type(exc).__name__
        with lock:
            answers[outcome] += 1
        time.sleep(0.2)
    with lock:
        answers[outcome] += 1


def kill_now_and_then(daemon: Daemon, client: DarajaClient, wifi: Wifi, seed: float,
                      done: threading.Event, answers: Counter[str],
                      lock: threading.Lock) -> None:
    try:
        _kill_now_and_then(daemon, client, wifi, seed, done, answers, lock)
    except BaseException as exc:  # surfaced by the test through `answers`
        with lock:
            answers[f"killer failed: {exc!r}"[:300]] += 1
        raise


def _kill_now_and_then(daemon: Daemon, client: DarajaClient, wifi: Wifi, seed: float,
                       done: threading.Event, answers: Counter[str],
                       lock: threading.Lock) -> None:
    rng = random.Random(seed)
    for _ in range(KILLS):
        if done.wait(rng.uniform(1.0, 3.0)):
            return
        wifi.ready.clear()  # the router simulator dies with the daemon
        daemon.kill()
        with lock:
            answers["kills"] += 1
        time.sleep(rng.uniform(0.0, 0.5))
        restart(daemon, client, wifi)


def unfound_money(daemon: Daemon, sim: DarajaSimulator) -> list[str]:
    """Approved prompts whose payment did not complete (and whose money is not held)."""
    completed = {(row["checkout_request_id"], row["reference"]) for row in daemon.query(
        "SELECT checkout_request_id, reference FROM payments WHERE status = 'completed'")}
    by_checkout = {c for c, _ in completed}
    by_reference = {r for _, r in completed}
    held = {row["receipt"] for row in daemon.query("SELECT receipt FROM unmatched_payments")}
    return [p["receipt"] for p in sim.prompts() if p["result_code"] == 0
            and p["checkout_request_id"] not in by_checkout
            and p["account_reference"] not in by_reference and p["receipt"] not in held]


def check_invariants(daemon: Daemon, sim: DarajaSimulator) -> None:
    rows: list[dict[str, Any]] = daemon.query("SELECT * FROM payments")
    assert rows and all(row["status"] != "pending" for row in rows)
    assert all(row["result_code"] for row in rows)  # Daraja's code or our own, kept
    expected: Counter[str] = Counter()
    for row in daemon.query("SELECT p.mac, pl.duration_seconds FROM payments p JOIN plans pl"
                            " ON pl.id = p.plan_id WHERE p.status = 'completed'"):
        expected[row["mac"]] += row["duration_seconds"]
    granted: Counter[str] = Counter()
    for row in daemon.query("SELECT mac, seconds FROM grants"):
        granted[row["mac"]] += row["seconds"]
    assert granted == expected
    twice = daemon.query("SELECT receipt FROM grants WHERE receipt IS NOT NULL"
                         " GROUP BY receipt HAVING COUNT(*) > 1")
    assert twice == []
    per_payment = daemon.query("SELECT payment_id FROM grants WHERE payment_id IS NOT NULL"
                               " GROUP BY payment_id HAVING COUNT(*) > 1")
    assert per_payment == []
    receipts = [p["receipt"] for p in sim.prompts() if p["result_code"] == 0]
    assert len(set(receipts)) == len(receipts)
