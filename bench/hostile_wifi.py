"""Honest customers beside one hostile client: paid -> online with no attacker, then while
the attacker runs each attack in turn, in the same run against the same daemon.

The whole appliance is the real `hotspotd run` process with its embedded simulators
(Daraja and MikroTik; production settlement timings, Daraja budget and limits unless
`--requests-per-minute` says otherwise), started by this script on a fresh database.

Honest customers: `--purchases` per phase, one arriving every `--interval` s (default 2: a
few buy at a time; 30 a minute take some 60 of the default Daraja budget's 100 requests a
minute, a push and a query each). Each is a new phone on the WiFi: its own MAC and
loopback address, joined through the router simulator's `POST /hosts`, buying plan 1 with
`POST /api/purchases` from its address for its own number (2547300xxxxx); a refusal that
says when to come back (429 or 503 with Retry-After) is tried again then, as a person
would. This script's phone-page watcher approves each honest prompt `--pin-delay` s after
it reached the simulator; strangers' prompts are never answered.

- paid: the simulator resolved the approved prompt (`resolved_at` in `/phone.json`);
- online: the router simulator lists the device in `/active.json` (polled every 50 ms);
- lost: an honest purchase not online within `--timeout` s of its first request.

The attacker (bench/hostile_attacks.py) is ONE device, another process at its own address
with its own MACs; its phases: slow connections, body flood, login flood, prompt spam (last,
as the purchases it got in line outlive it). Per phase: honest paid -> online p50/p99, the
ratio of p99 to the quiet run's (goal <= 2), honest purchases lost (goal 0), STK prompts
the simulator received for numbers other than the honest buyers' (counted per number from
`/phone.json`), the attacker's answers by status, and the daemon's /metrics counters that
moved. Results: bench/results/hostile_wifi.json.

Usage: python bench/hostile_wifi.py [--purchases 30] [--interval 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from hostile_report import metrics_moved, payments_by_side, render, summarise, verdicts

from hotspotd.config import load_config
from hotspotd.ledger.plans import seed_demo_plans
from hotspotd.ops.install import to_toml
from hotspotd.simulators.phones import SimulatedPhone, next_phone_address
from hotspotd.store.db import Database

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PHASES = ("quiet", "slow_connections", "body_flood", "login_flood", "prompt_spam")
LIMIT_OPTIONS = {"web": ("connections_per_client", "max_connections", "header_timeout_seconds",
                         "body_timeout_seconds", "idle_timeout_seconds", "max_body_bytes",
                         "max_header_bytes"),
                 "daraja": ("requests_per_minute",), "settlement": ("queue_max_seconds",),
                 "portal": ("voucher_attempts", "attempt_window_seconds"),
                 "radius": ("require_message_authenticator",)}
METRIC_WORDS = ("limited", "refused", "rejected", "radius_requests", "purchases",
                "daraja_requests", "daraja_errors", "stk_pushes", "callback_rejections",
                "push_queue_length", "budget_waiting")


# -- the daemon ---------------------------------------------------------------------------

class Daemon:
    """`hotspotd run` on a fresh data directory, with both embedded simulators."""

    def __init__(self, data_dir: Path, requests_per_minute: int) -> None:
        self.data_dir = data_dir
        self.config_path = data_dir / "hotspotd.toml"
        values: dict[str, dict[str, Any]] = {
            "web": {"host": "127.0.0.1", "port": 0},
            "database": {"path": str(data_dir / "hotspotd.sqlite3")},
            "daraja": {"backend": "simulator"},
            "radius": {"host": "127.0.0.1", "auth_port": 0, "acct_port": 0,
                       "clients": ["127.0.0.1"]},
            "router": {"backend": "simulator"},
            "simulators": {"host": "127.0.0.1", "daraja_port": 0, "router_api_port": 0},
            "backup": {"enabled": False}}
        if requests_per_minute:
            values["daraja"]["requests_per_minute"] = requests_per_minute
        self.config_path.write_text(to_toml(values))
        self.config_path.chmod(0o600)
        self.process: subprocess.Popen[bytes] | None = None
        self.runtime: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        db = Database(self.data_dir / "hotspotd.sqlite3").open()
        with db.write() as conn:
            seed_demo_plans(conn, time.time())
        db.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
        with open(self.data_dir / "daemon.log", "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hotspotd.cli", "run", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        runtime_path = self.data_dir / "runtime.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit((self.data_dir / "daemon.log").read_text()[-3000:])
            if runtime_path.exists():
                self.runtime = json.loads(runtime_path.read_text())
                if requests.get(self.runtime["portal_url"] + "healthz", timeout=5).ok:
                    return self.runtime
            time.sleep(0.1)
        raise SystemExit("the daemon did not come up within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def limits(self) -> dict[str, dict[str, Any]]:
        """The figures of the limits in effect (defaults unless this script set them)."""
        values = load_config(self.config_path, env={}).values()
        chosen = {section: {name: values[section][name] for name in names
                            if name in values.get(section, {})}
                  for section, names in LIMIT_OPTIONS.items()}
        chosen["limits"] = dict(values.get("limits", {}))
        return chosen

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics (management side, with the daemon's token) worth a look."""
        base = self.runtime.get("admin_url", self.runtime["portal_url"]).split("/admin/")[0]
        token = self.runtime.get("metrics_token")
        try:
            text = requests.get(base.rstrip("/") + "/metrics", timeout=30, headers={
                "Authorization": f"Bearer {token}"} if token else {}).text
        except requests.RequestException:
            return {}
        samples = {}
        for line in text.splitlines():
            key, _, value = line.rpartition(" ")
            name = key.split("{")[0]
            if (key and not line.startswith("#") and not name.endswith("_created")
                    and any(word in name for word in METRIC_WORDS)):
                try:
                    samples[key] = float(value)
                except ValueError:
                    continue
        return samples


# -- watching the simulators ------------------------------------------------------------------

class Observer(threading.Thread):
    """Polls the simulators: approves honest prompts after `pin_delay`, notes who is online."""

    def __init__(self, runtime: dict[str, Any], pin_delay: float) -> None:
        super().__init__(daemon=True)
        self.phone_url = runtime["phone_url"].rstrip("/")
        self.active_url = runtime["router_status_url"].rstrip("/") + "/active.json"
        self.pin_delay = pin_delay
        self.honest: set[str] = set()
        self.online: dict[str, float] = {}  # MAC -> first seen in /ip/hotspot/active
        self.prompts: list[dict[str, Any]] = []
        self.approved: set[str] = set()
        self.stop = threading.Event()
        self.http = requests.Session()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self._look()
            except (requests.RequestException, ValueError):
                continue  # the simulators share the daemon's process: try again

    def _look(self) -> None:
        now = time.time()
        for row in self.http.get(self.active_url, timeout=10).json():
            self.online.setdefault(str(row.get("mac-address", "")).upper(), now)
        self.prompts = self.http.get(self.phone_url + ".json", timeout=10).json()
        for prompt in self.prompts:
            checkout = prompt["checkout_request_id"]
            if (prompt["state"] == "pending" and prompt["phone"] in self.honest
                    and checkout not in self.approved
                    and now - prompt["created_at"] >= self.pin_delay):
                self.approved.add(checkout)
                self.http.post(f"{self.phone_url}/{checkout}/approve", timeout=10,
                               allow_redirects=False)


# -- honest customers -------------------------------------------------------------------------

def honest_purchase(runtime: dict[str, Any], observer: Observer, mac: str, number: str,
                    timeout: float) -> dict[str, Any]:
    """A new phone joins the WiFi and buys; tried again when told when; waits to be online."""
    phone = SimulatedPhone(mac, next_phone_address())
    requests.post(runtime["router_status_url"].rstrip("/") + "/hosts", timeout=10,
                  json={"mac": mac, "address": phone.address}).raise_for_status()
    observer.honest.add(number)
    first = time.time()
    deadline = first + timeout
    row: dict[str, Any] = {"mac": mac, "number": number, "first_request": first, "answers": []}
    while time.time() < deadline:
        started = time.time()
        try:
            response = phone.post(runtime["portal_url"] + "api/purchases", timeout=30,
                                  json={"plan_id": 1, "phone": number})
            answer, wait = str(response.status_code), response.headers.get("Retry-After")
        except requests.RequestException as exc:
            answer, wait = f"error:{type(exc).__name__}", "1"
        row["answers"].append(answer)
        row.setdefault("first_answer_seconds", time.time() - started)
        if answer == "202" or not (answer in ("429", "503") or answer.startswith("error")):
            break
        time.sleep(min(float(wait or 2), max(0.0, deadline - time.time())))
    while row["answers"][-1] == "202" and time.time() < deadline and mac not in observer.online:
        time.sleep(0.05)
    row["online_at"] = observer.online.get(mac)
    phone.close()
    return row


def run_honest(runtime: dict[str, Any], observer: Observer, phase_no: int,
               args: argparse.Namespace) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(args.purchases) as pool:
        futures = []
        for index in range(args.purchases):
            mac = f"02:48:{phase_no:02X}:00:{index >> 8:02X}:{index & 255:02X}"
            number = f"2547300{phase_no}{index:04d}"
            futures.append(pool.submit(honest_purchase, runtime, observer, mac, number,
                                       args.timeout))
            time.sleep(args.interval)
        return [future.result() for future in futures]


# -- one phase --------------------------------------------------------------------------------

def start_attacker(attack: str, runtime_path: Path, out: Path,
                   args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(BENCH / "hostile_attacks.py"), attack, "--runtime",
               str(runtime_path), "--out", str(out), "--connections", str(args.connections),
               "--claimed-mb", str(args.claimed_mb), "--rate", str(args.login_rate),
               "--macs", str(args.attacker_macs)]
    return subprocess.Popen(command, stderr=subprocess.PIPE)


def stop_attacker(process: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    if not out.exists():
        return {"error": f"exit {process.returncode}: {stderr.decode()[-1500:]}"}
    return json.loads(out.read_text())


def run_phase(phase_no: int, attack: str, daemon: Daemon, observer: Observer,
              args: argparse.Namespace, work: Path) -> dict[str, Any]:
    print(f"phase {phase_no}: {attack}", flush=True)
    before = daemon.metrics()
    window_start = time.time()  # prompts to strangers count from the attacker's start
    attacker, out = None, work / f"attacker-{attack}.json"
    if attack != "quiet":
        attacker = start_attacker(attack, daemon.data_dir / "runtime.json", out, args)
    try:
        time.sleep(args.ramp if attacker else 0)
        started = time.time()
        rows = run_honest(daemon.runtime, observer, phase_no, args)
        ended = time.time()
    finally:
        report = stop_attacker(attacker, out) if attacker else None
    after = daemon.metrics()
    time.sleep(1.0)
    return {"attack": attack, "window_start": window_start, "started": started, "ended": ended,
            "honest_rows": rows, "attacker": report,
            "metrics_moved": metrics_moved(before, after)}


# -- main -------------------------------------------------------------------------------------

def drain(database: Path, seconds_left: float) -> None:
    """Give the attacker's purchases still in line up to `seconds_left` to go out or end."""
    deadline = time.time() + seconds_left
    while time.time() < deadline:
        if not payments_by_side(database)["attacker"].get("in_line"):
            return
        time.sleep(1.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="hotspotd-hostile-"))
    daemon = Daemon(work, args.requests_per_minute)
    runtime = daemon.start()
    observer = Observer(runtime, args.pin_delay)
    observer.start()
    raw: list[dict[str, Any]] = []
    try:
        for number, attack in enumerate(args.phases):
            raw.append(run_phase(number, attack, daemon, observer, args, work))
        drain(Path(runtime["database"]), args.drain)
        time.sleep(0.5)
        prompts = observer.prompts
        payments = payments_by_side(Path(runtime["database"]))
        limits = daemon.limits()
    finally:
        observer.stop.set()
        daemon.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ends = [phase["window_start"] for phase in raw[1:]] + [time.time()]
    one_device = int(limits["limits"].get("push_per_device", 0))
    phases = {phase["attack"]: summarise(phase, prompts, observer.honest, end, one_device)
              for phase, end in zip(raw, ends, strict=True)}
    met = verdicts(phases)
    return {"benchmark": "hostile_wifi",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "machine": {"platform": platform.platform(), "python": platform.python_version(),
                        "cpus": os.cpu_count(), "load_average": os.getloadavg()},
            "appliance": "hotspotd run subprocess, embedded Daraja and MikroTik simulators",
            "parameters": {k: v for k, v in vars(args).items() if k not in ("out", "keep")},
            "limits": limits, "phases": phases, "goals_met": met,
            "payments_at_end": payments, "work_dir": str(work) if args.keep else None}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=30, help="honest ones per phase")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between honest customers' arrivals")
    parser.add_argument("--pin-delay", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="an honest purchase not online this long after its request is lost")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--ramp", type=float, default=3.0,
                        help="seconds the attacker runs before the honest customers come")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="seconds the attacker's purchases in line get to go out at the end")
    parser.add_argument("--requests-per-minute", type=int, default=0,
                        help="Daraja budget (default: the configuration's)")
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--claimed-mb", type=int, default=300)
    parser.add_argument("--login-rate", type=float, default=1000.0)
    parser.add_argument("--attacker-macs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "hostile_wifi.json")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data directory (database, daemon log, attacker reports)")
    args = parser.parse_args(argv)
    if args.phases[0] != "quiet":
        parser.error("the first phase must be quiet (the others are compared with it)")
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"goals met: {result['goals_met']}; results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
