"""Memory under load: the real `hotspotd run` daemon with a year of history in its database.

Seeds a database with `--devices` entitled devices (10,000) and `--payments` payments
(1,000,000, with their grants; executemany in one transaction), then starts the daemon as
its own process (production backends: `daraja` against the Daraja simulator and `routeros`
against the MikroTik simulator, both running in this process, so the daemon's memory is the
daemon's alone) and keeps a steady load on it for `--seconds`:

- RADIUS Access-Requests (MAC login of random entitled devices) at `--radius-rate` per
  second, each timed from send to reply (that gives the RADIUS p50/p99);
- RADIUS accounting Interim-Updates at `--acct-rate` per second;
- purchases at `--purchase-rate` per second, each from a new phone on the WiFi (its own MAC
  and loopback address, in the MikroTik simulator's host table): POST /api/purchases from
  its address, approve on the simulator's phone page; the daemon settles them by STK Query,
  grants, logs the device in by the API;
- a `/metrics` scrape every 5 s, as Prometheus would.

The daemon's RSS is sampled from /proc every 0.2 s; the peak (VmHWM) is reported with the
latencies into `bench/results/memory_footprint.json`. Target: RSS under 150 MB.

Usage: .venv/bin/python bench/memory_footprint.py [--payments 1000000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from benchstats import percentile
from pyrad import packet as rp

import hotspotd
from hotspotd.ops.install import to_toml
from hotspotd.radius.dictionary import load_dictionary
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.simulators.phones import join_wifi
from hotspotd.store.db import Database

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "memory_footprint.json"
SECRET, MAC_PASSWORD, ROUTER_PASSWORD = "bench-radius-secret", "bench-mac-pw", "bench-router"
YEAR = 365 * 86400


def mac_of(index: int, prefix: str = "02:AA") -> str:
    return f"{prefix}:{index >> 16 & 0xFF:02X}:{index >> 8 & 0xFF:02X}:{index & 0xFF:02X}:01"


def seed(path: Path, *, devices: int, payments: int) -> float:
    """Plans, `payments` payments (70 % completed, with grants) over the past year, and
    `devices` devices entitled right now. Returns the seconds it took."""
    started = time.monotonic()
    Database(path).open().close()  # the schema, migrated
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("PRAGMA synchronous=OFF")
    now = time.time()
    conn.execute("BEGIN")
    # Secondary indexes are rebuilt after the bulk insert (a sort beats a million B-tree
    # inserts); the UNIQUE ones stay, as they must.
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND"
                           " tbl_name IN ('payments', 'grants') AND sql IS NOT NULL"
                           " AND sql NOT LIKE 'CREATE UNIQUE%'").fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute("INSERT INTO plans (id, name, price, duration_seconds, created_at) VALUES"
                 " (1, '1 hour', 20, 3600, 0), (2, '1 day', 50, 86400, 0)")
    rows = payment_rows(payments, now)
    conn.executemany(
        "INSERT INTO payments (id, public_id, plan_id, mac, phone, amount, status, push_state,"
        " checkout_request_id, result_code, receipt, created_at, settled_at) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    del rows
    conn.execute("INSERT INTO grants (mac, plan_id, payment_id, receipt, source, seconds,"
                 " starts_at, expires_at, created_at) SELECT mac, plan_id, id, receipt, 'stk',"
                 " 3600, settled_at, settled_at + 3600, settled_at FROM payments"
                 " WHERE status = 'completed'")
    conn.executemany("INSERT INTO devices (mac, last_ip, first_seen, last_seen) VALUES"
                     " (?, ?, ?, ?)", ((mac_of(i), f"10.{i >> 16 & 255}.{i >> 8 & 255}."
                                        f"{i & 255}", now, now) for i in range(devices)))
    conn.executemany("INSERT INTO entitlements (mac, expires_at, rate_limit, plan_id,"
                     " updated_at) VALUES (?, ?, '2M/5M', 2, ?)",
                     ((mac_of(i), now + 86400, now) for i in range(devices)))
    for _name, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.monotonic() - started


def payment_rows(payments: int, now: float) -> list[tuple[Any, ...]]:
    """A year of payments, oldest first: 70 % completed with a receipt, the rest failed."""
    rng = random.Random(7)
    rows = []
    for i in range(1, payments + 1):
        at = now - YEAR + i * (YEAR - 3600) / payments
        completed = rng.random() < 0.7
        rows.append((i, f"pay{i:08d}", 1 + i % 2, mac_of(i % 50_000, "02:BB"),
                     f"2547{10_000_000 + i % 5_000_000:08d}", 20 if i % 2 else 50,
                     "completed" if completed else "failed", "sent", f"ws_CO_{i:010d}",
                     "0" if completed else "1032", f"R{i:09d}" if completed else None,
                     at, at + 5))
    return rows


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RadiusLoad:
    """Access-Requests and accounting at fixed rates; latencies of the Access-Requests."""

    def __init__(self, auth_port: int, acct_port: int, devices: int) -> None:
        self.auth = ("127.0.0.1", auth_port)
        self.acct = ("127.0.0.1", acct_port)
        self.devices = devices
        self.dictionary = load_dictionary()
        self.latencies: list[float] = []
        self.answers = {"accept": 0, "reject": 0, "timeout": 0, "acct": 0}
        self.stop = threading.Event()

    def access_request(self, sock: socket.socket, index: int) -> None:
        mac = mac_of(index)
        request = rp.AuthPacket(code=rp.AccessRequest, secret=SECRET.encode(),
                                dict=self.dictionary, id=index % 256)
        request["User-Name"] = mac
        request["User-Password"] = request.PwCrypt(MAC_PASSWORD)
        request["Calling-Station-Id"] = mac
        request["NAS-IP-Address"] = "127.0.0.1"
        request.add_message_authenticator()
        data = request.RequestPacket()
        started = time.perf_counter()
        sock.sendto(data, self.auth)
        try:
            reply = sock.recv(4096)
        except TimeoutError:
            self.answers["timeout"] += 1
            return
        self.latencies.append(time.perf_counter() - started)
        self.answers["accept" if reply[0] == rp.AccessAccept else "reject"] += 1

    def accounting(self, sock: socket.socket, index: int) -> None:
        mac = mac_of(index)
        request = rp.AcctPacket(code=rp.AccountingRequest, secret=SECRET.encode(),
                                dict=self.dictionary, id=index % 256)
        for name, value in (("User-Name", mac), ("Calling-Station-Id", mac),
                            ("Acct-Status-Type", "Interim-Update"),
                            ("Acct-Session-Id", f"s{index:08x}"), ("NAS-IP-Address", "127.0.0.1"),
                            ("Framed-IP-Address", f"10.0.{index >> 8 & 255}.{index & 255}"),
                            ("Acct-Session-Time", 60)):
            request[name] = value
        sock.sendto(request.RequestPacket(), self.acct)
        try:
            sock.recv(4096)
            self.answers["acct"] += 1
        except TimeoutError:
            self.answers["timeout"] += 1

    def run(self, rate: float, send: Any) -> None:
        rng = random.Random(rate)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            next_at = time.monotonic()
            while not self.stop.is_set():
                send(sock, rng.randrange(self.devices))
                next_at += 1.0 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))


class Purchases:
    """Customers buying, each from a phone of its own on the router's WiFi: POST
    /api/purchases, then approve on the simulator's phone page."""

    def __init__(self, portal_url: str, phone_url: str, database: Path,
                 router: MikrotikSimulator) -> None:
        self.portal_url, self.phone_url, self.database = portal_url, phone_url, database
        self.router = router
        self.counts = {"sent": 0, "accepted": 0, "approved": 0, "errors": 0}
        self.stop = threading.Event()

    def run(self, rate: float) -> None:
        http = requests.Session()
        index = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            index += 1
            try:
                self.buy(http, index)
            except (requests.RequestException, sqlite3.Error):
                self.counts["errors"] += 1
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))

    def buy(self, http: requests.Session, index: int) -> None:
        self.counts["sent"] += 1
        device = join_wifi(self.router, mac_of(index, "02:CC"))
        try:
            response = device.post(self.portal_url + "api/purchases", timeout=30,
                                   json={"plan_id": 1, "phone": f"2547{20_000_000 + index:08d}"})
        finally:
            device.close()
        if response.status_code != 202:
            self.counts["errors"] += 1
            return
        self.counts["accepted"] += 1
        row = None
        deadline = time.monotonic() + 20  # a purchase may wait in line for its push
        while time.monotonic() < deadline and not self.stop.is_set():
            conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
            try:
                row = conn.execute("SELECT checkout_request_id FROM payments"
                                   " WHERE public_id = ?", (response.json()["id"],)).fetchone()
            finally:
                conn.close()
            if row and row[0]:
                break
            time.sleep(0.2)
        if row and row[0]:
            approved = http.post(f"{self.phone_url}/{row[0]}/approve", timeout=30,
                                 allow_redirects=False)
            self.counts["approved" if approved.status_code == 303 else "errors"] += 1


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def daemon_config(data_dir: Path, daraja: DarajaSimulator, router: MikrotikSimulator,
                  auth_port: int, acct_port: int) -> Path:
    api_host, api_port = router.api_address
    values = {
        "web": {"host": "127.0.0.1", "port": 0},
        "database": {"path": str(data_dir / "hotspotd.sqlite3")},
        "security": {"key_file": str(data_dir / "secret.key")},
        "daraja": {"backend": "daraja", "base_url": daraja.url, "consumer_key": "bench-ck",
                   "consumer_secret": "bench-cs", "passkey": "bench-pk"},
        "settlement": {"inline_query_delays": [1.5, 3.0], "reconcile_interval_seconds": 2},
        "radius": {"host": "127.0.0.1", "auth_port": auth_port, "acct_port": acct_port,
                   "secret": SECRET, "mac_password": MAC_PASSWORD, "clients": ["127.0.0.1"]},
        "router": {"backend": "routeros", "host": api_host, "api_port": api_port,
                   "password": ROUTER_PASSWORD},
        "backup": {"enabled": False},
    }
    path = data_dir / "hotspotd.toml"
    path.write_text(to_toml(values))
    path.chmod(0o600)
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="hotspotd-memory-"))
    database = data_dir / "hotspotd.sqlite3"
    seed_seconds = seed(database, devices=args.devices, payments=args.payments)
    print(f"seeded {args.payments} payments, {args.devices} entitled devices in"
          f" {seed_seconds:.1f} s ({database.stat().st_size / 1e6:.0f} MB)", flush=True)
    auth_port, acct_port = free_udp_port(), free_udp_port()
    daraja = DarajaSimulator(consumer_key="bench-ck", consumer_secret="bench-cs",
                             passkey="bench-pk", approve_delay=0.5)
    daraja.start("127.0.0.1", 0)
    router = MikrotikSimulator(api_user="hotspotd", api_password=ROUTER_PASSWORD,
                               radius_host="127.0.0.1", radius_auth_port=auth_port,
                               radius_acct_port=acct_port, radius_secret=SECRET)
    router.start("127.0.0.1", 0)
    from hotspotd.secretbox import create_key_file

    create_key_file(data_dir / "secret.key")
    config = daemon_config(data_dir, daraja, router, auth_port, acct_port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
    log = open(data_dir / "daemon.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen([sys.executable, "-m", "hotspotd.cli", "run", "--config",
                                str(config)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        return measure(args, process, data_dir, daraja, router, auth_port, acct_port,
                       seed_seconds)
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        router.stop()
        daraja.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def wait_up(process: subprocess.Popen[bytes], data_dir: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((data_dir / "daemon.log").read_text()[-3000:])
        runtime = data_dir / "runtime.json"
        if runtime.exists():
            return json.loads(runtime.read_text())
        time.sleep(0.1)
    raise SystemExit("the daemon did not come up in 120 s")


def measure(args: argparse.Namespace, process: subprocess.Popen[bytes], data_dir: Path,
            daraja: DarajaSimulator, router: MikrotikSimulator, auth_port: int,
            acct_port: int, seed_seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    runtime = wait_up(process, data_dir)
    startup = time.monotonic() - started
    idle = memory_kib(process.pid)
    radius = RadiusLoad(auth_port, acct_port, args.devices)
    buyers = Purchases(runtime["portal_url"], daraja.phone_url, data_dir / "hotspotd.sqlite3",
                       router)
    threads = [threading.Thread(target=radius.run, args=(args.radius_rate,
                                                         radius.access_request)),
               threading.Thread(target=radius.run, args=(args.acct_rate, radius.accounting)),
               threading.Thread(target=buyers.run, args=(args.purchase_rate,))]
    for thread in threads:
        thread.start()
    peak_rss, scrape_seconds = watch(process.pid, runtime, args.seconds)
    radius.stop.set()
    buyers.stop.set()
    for thread in threads:
        thread.join(30)
    completed = sqlite3.connect(data_dir / "hotspotd.sqlite3").execute(
        "SELECT COUNT(*) FROM payments WHERE public_id NOT LIKE 'pay%' AND status ="
        " 'completed'").fetchone()[0]
    return report(args, seed_seconds=seed_seconds, data_dir=data_dir, startup=startup,
                  rss_kib={"idle": idle["VmRSS"], "peak": peak_rss,
                           "hwm": memory_kib(process.pid)["VmHWM"]},
                  radius=radius, purchases={**buyers.counts, "completed": completed},
                  scrape_seconds=scrape_seconds)


def watch(pid: int, runtime: dict[str, Any], seconds: float) -> tuple[int, list[float]]:
    """Sample the daemon's RSS every 0.2 s and scrape /metrics every 5 s, for `seconds`
    (on the portal's listener /metrics takes the daemon's metrics token)."""
    token = runtime.get("metrics_token")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    metrics_url = runtime.get("admin_url", runtime["portal_url"]).split("/admin/")[0]
    peak_rss, scrape_seconds = 0, []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        peak_rss = max(peak_rss, memory_kib(pid)["VmRSS"])
        if time.monotonic() - started > 5 * (len(scrape_seconds) + 1):
            scrape_started = time.monotonic()
            requests.get(metrics_url.rstrip("/") + "/metrics", headers=headers,
                         timeout=60).raise_for_status()
            scrape_seconds.append(time.monotonic() - scrape_started)
        time.sleep(0.2)
    return peak_rss, scrape_seconds


def report(args: argparse.Namespace, *, seed_seconds: float, data_dir: Path, startup: float,
           rss_kib: dict[str, int], radius: RadiusLoad, purchases: dict[str, int],
           scrape_seconds: list[float]) -> dict[str, Any]:
    latencies = radius.latencies
    return {
        "hotspotd_version": hotspotd.__version__,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "parameters": dict(vars(args)),
        "seed_seconds": round(seed_seconds, 1),
        "database_mb": round((data_dir / "hotspotd.sqlite3").stat().st_size / 1e6, 1),
        "startup_seconds": round(startup, 2),
        "rss_mb": {"idle_after_start": round(rss_kib["idle"] / 1024, 1),
                   "peak_sampled": round(rss_kib["peak"] / 1024, 1),
                   "peak_vmhwm": round(rss_kib["hwm"] / 1024, 1), "target": 150},
        "radius": {"requests": len(latencies), **radius.answers,
                   "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                   "p99_ms": round(percentile(latencies, 99) * 1000, 2),
                   "max_ms": round(max(latencies, default=0) * 1000, 2)},
        "purchases": purchases,
        "metrics_scrape_seconds": {"count": len(scrape_seconds),
                                   "max": round(max(scrape_seconds, default=0), 2)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--radius-rate", type=float, default=100.0)
    parser.add_argument("--acct-rate", type=float, default=20.0)
    parser.add_argument("--purchase-rate", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    result = run(args)
    result["parameters"]["output"] = str(args.output)
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    ok = result["rss_mb"]["peak_vmhwm"] < 150
    print(f"peak RSS {result['rss_mb']['peak_vmhwm']} MB ({'under' if ok else 'OVER'} 150 MB);"
          f" RADIUS p99 {result['radius']['p99_ms']} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
