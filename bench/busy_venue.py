"""A busy venue on one core: the real `hotspotd run` pinned to one CPU through an evening.

The daemon runs as its own process under `taskset -c <--daemon-core>` (a Pi-class budget:
one core) with the production backends, `daraja` against a DarajaSimulator and `routeros`
against a MikrotikSimulator; both simulators, the phones and this script run pinned to the
other core (`--load-core`), and so do the router's RADIUS traffic (bench/venue_load.py, its
own process) and py-spy. The database is seeded (bench/memory_footprint.py's `seed`) with
`--payments` payments of history and `--online` devices with time, and those devices are
logged in at the simulated router before the evening starts. Then, at once:

- the router's RADIUS traffic: an Interim-Update per online device every 60 s (spread
  evenly) and `--login-rate` MAC logins a second (half with time, half without);
- `--purchases` customers arriving evenly over `--burst-seconds`, each a phone of its own
  (own MAC and loopback address in the router simulator's host table) buying through the
  portal's form and following its status page's long polls; the phone approves the prompt
  `--pin-delay` s after it arrives;
- online customers' phones viewing the portal (`--page-rate` a second) and a few with the
  M-Pesa menu open (long polls of /live/device);
- a /metrics scrape every 15 s with the daemon's Bearer token.

`--callbacks on`: `[web] public_url` is an https address and the simulator's callbacks reach
the daemon through a stand-in for the venue's tunnel (the URL's prefix is rewritten to the
daemon's local address); they are untrusted (no allow-list), so each is confirmed by one STK
Query. `--callbacks off`: no public_url, the simulator drops every callback (Safaricom
cannot reach the venue), STK Query settles. `both` runs the two, one after the other.

Measured: RADIUS send -> answer p50/p99 (the load process), paid (the phone approves at the
simulator) -> online (the router simulator's login returned: the device is in
/ip/hotspot/active) p50/p99, the daemon's CPU (/proc, and per thread and module by py-spy
sampling only running threads), peak RSS (VmHWM), and what was lost. Results:
bench/results/busy_venue_callbacks_{on,off}.json.

Exit status 1 if anything was lost (a purchase not completed or not online, a RADIUS
request unanswered); the targets are reported in `goals_met`.

Usage: flock /tmp/bench.lock .venv/bin/python bench/busy_venue.py [--callbacks both]
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
from benchstats import percentile
from memory_footprint import (
    MAC_PASSWORD,
    ROUTER_PASSWORD,
    SECRET,
    free_udp_port,
    mac_of,
    memory_kib,
    seed,
)
from venue_load import Browsing, Buyer
from venue_profile import Profiler, cpu_seconds

import hotspotd.simulators.daraja.simulator as daraja_module
from hotspotd.ops.install import to_toml
from hotspotd.secretbox import create_key_file
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.simulators.phones import SimulatedPhone, join_wifi, next_phone_address

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PUBLIC_URL = "https://wifi.venue.example"
TARGETS = {"radius_p99_ms": 20.0, "paid_to_online_p99_s": {"on": 2.0, "off": 6.0},
           "peak_rss_mb": 100.0}


class Venue:
    """The simulators in this process, with light probes that time without changing what
    they do: when each phone approved its prompt, when each device came online."""

    def __init__(self, args: argparse.Namespace, callbacks: str) -> None:
        self.auth_port, self.acct_port = free_udp_port(), free_udp_port()
        self.daraja = DarajaSimulator(consumer_key="bench-ck", consumer_secret="bench-cs",
                                      passkey="bench-pk")
        self.router = MikrotikSimulator(
            api_user="hotspotd", api_password=ROUTER_PASSWORD, radius_host="127.0.0.1",
            radius_auth_port=self.auth_port, radius_acct_port=self.acct_port,
            radius_secret=SECRET, interim_interval=10**9)  # venue_load sends the interims
        self.pin_delay, self.callbacks = args.pin_delay, callbacks
        self.buyers: set[str] = set()  # phone numbers of the bench's customers
        self.paid: dict[str, float] = {}  # phone number -> approved at
        self.online: dict[str, float] = {}  # MAC -> in /ip/hotspot/active at
        self.portal_url = ""
        self.daraja.faults.drop_callbacks = callbacks == "off"
        self._deliver = daraja_module.deliver

    def start(self) -> Venue:
        self.daraja.start("127.0.0.1", 0)
        self.router.start("127.0.0.1", 0)
        login, push = self.router.login_host, self.daraja.handle_push

        def login_host(**fields: Any) -> Any:
            session = login(**fields)
            self.online.setdefault(session.mac, time.time())
            return session

        def handle_push(authorization: str | None, body: Any) -> dict[str, str]:
            answer = push(authorization, body)
            number = str(body.get("PhoneNumber", "")) if isinstance(body, dict) else ""
            if number in self.buyers and answer.get("CheckoutRequestID"):
                threading.Timer(self.pin_delay, self._approve,
                                (number, answer["CheckoutRequestID"])).start()
            return answer

        self.router.login_host = login_host  # type: ignore[method-assign]
        self.daraja.handle_push = handle_push  # type: ignore[method-assign]
        daraja_module.deliver = self._tunnel  # type: ignore[assignment]
        return self

    def _approve(self, number: str, checkout: str) -> None:
        self.paid[number] = time.time()
        self.daraja.resolve(checkout, "approve")

    def _tunnel(self, url: str, *args: Any, **kwargs: Any) -> None:
        """The venue's tunnel: the public https address leads to the daemon's port."""
        if url.startswith(PUBLIC_URL):
            url = self.portal_url.rstrip("/") + url[len(PUBLIC_URL):]
        self._deliver(url, *args, **kwargs)

    def stop(self) -> None:
        daraja_module.deliver = self._deliver  # type: ignore[assignment]
        self.router.stop()
        self.daraja.stop()


def daemon_config(work: Path, venue: Venue, callbacks: str) -> Path:
    api_host, api_port = venue.router.api_address
    values = {
        "web": {"host": "127.0.0.1", "port": 0,
                "public_url": PUBLIC_URL if callbacks == "on" else ""},
        "database": {"path": str(work / "hotspotd.sqlite3")},
        "security": {"key_file": str(work / "secret.key")},
        "daraja": {"backend": "daraja", "base_url": venue.daraja.url,
                   "consumer_key": "bench-ck", "consumer_secret": "bench-cs",
                   "passkey": "bench-pk"},
        "radius": {"host": "127.0.0.1", "auth_port": venue.auth_port,
                   "acct_port": venue.acct_port, "secret": SECRET,
                   "mac_password": MAC_PASSWORD, "clients": ["127.0.0.1"],
                   "interim_interval_seconds": 60},
        "router": {"backend": "routeros", "host": api_host, "api_port": api_port,
                   "password": ROUTER_PASSWORD, "coa_port": venue.router.coa_address[1]},
        "backup": {"enabled": False},
    }
    path = work / "hotspotd.toml"
    path.write_text(to_toml(values))
    path.chmod(0o600)
    return path


def start_daemon(work: Path, config: Path, core: int) -> tuple[subprocess.Popen[bytes],
                                                                 dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
    with open(work / "daemon.log", "wb") as log:
        process = subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-m",
                                    "hotspotd.cli", "run", "--config", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((work / "daemon.log").read_text()[-3000:])
        runtime = work / "runtime.json"
        if runtime.exists():
            values = json.loads(runtime.read_text())
            if requests.get(values["portal_url"] + "healthz", timeout=5).ok:
                return process, values
        time.sleep(0.2)
    raise SystemExit("the daemon did not come up within 120 s")


def log_in_online(venue: Venue, count: int) -> tuple[list[dict[str, Any]],
                                                     list[SimulatedPhone]]:
    """The evening's customers already online: each device at its own loopback address,
    logged in at the router (RADIUS to the daemon, accounting Start)."""
    def one(index: int) -> tuple[dict[str, Any], SimulatedPhone]:
        phone = SimulatedPhone(mac_of(index), next_phone_address())
        session = venue.router.login_host(user=phone.mac, password=MAC_PASSWORD,
                                          mac=phone.mac, ip=phone.address)
        return ({"mac": session.mac, "ip": session.ip, "session_id": session.acct_session_id,
                 "nas_port": session.nas_port, "logged_in_at": time.time()}, phone)

    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(one, range(count)))
    while venue.router.accounting_backlog():  # the accounting Starts still being sent
        time.sleep(0.2)
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


class Watch(threading.Thread):
    """RSS every 0.5 s; a /metrics scrape every 15 s, timed."""

    def __init__(self, pid: int, runtime: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_rss, self.scrapes = pid, 0, []
        base = runtime.get("admin_url", runtime["portal_url"]).split("/admin/")[0]
        self.url = base.rstrip("/") + "/metrics"
        self.headers = {"Authorization": f"Bearer {runtime['metrics_token']}"}
        self.stop = threading.Event()

    def run(self) -> None:
        next_scrape = time.monotonic()
        while not self.stop.wait(0.5):
            self.peak_rss = max(self.peak_rss, memory_kib(self.pid)["VmRSS"])
            if time.monotonic() >= next_scrape:
                next_scrape += 15
                started = time.perf_counter()
                try:
                    status = requests.get(self.url, headers=self.headers, timeout=30).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                self.scrapes.append((status, time.perf_counter() - started))


def start_radius(work: Path, args: argparse.Namespace, venue: Venue,
                 sessions: list[dict[str, Any]]) -> subprocess.Popen[bytes]:
    spec = {"auth_port": venue.auth_port, "acct_port": venue.acct_port, "secret": SECRET,
            "mac_password": MAC_PASSWORD, "login_rate": args.login_rate,
            "unknown_share": 0.5, "interim_seconds": args.interim_seconds,
            "sessions": sessions}
    (work / "radius-spec.json").write_text(json.dumps(spec))
    return subprocess.Popen(["taskset", "-c", str(args.load_core), sys.executable,
                             str(BENCH / "venue_load.py"), "radius",
                             str(work / "radius-spec.json"), str(work / "radius-out.json")])


def buy_all(args: argparse.Namespace, venue: Venue, runtime: dict[str, Any]) -> list[Any]:
    def customer(index: int) -> dict[str, Any]:
        number = f"2547120{index:05d}"
        venue.buyers.add(number)
        phone = join_wifi(venue.router, f"02:B5:00:00:{index >> 8:02X}:{index & 255:02X}")
        return Buyer(phone, number, runtime["portal_url"], args.timeout).run()

    with ThreadPoolExecutor(args.purchases) as pool:
        futures = []
        for index in range(args.purchases):
            futures.append(pool.submit(customer, index))
            time.sleep(args.burst_seconds / args.purchases)
        return [future.result() for future in futures]


def evening(args: argparse.Namespace, callbacks: str, work: Path) -> dict[str, Any]:
    seconds = seed(work / "hotspotd.sqlite3", devices=args.online, payments=args.payments)
    print(f"[{callbacks}] seeded {args.payments} payments, {args.online} devices with time in"
          f" {seconds:.0f} s", flush=True)
    create_key_file(work / "secret.key")
    venue = Venue(args, callbacks).start()
    process, runtime = start_daemon(work, daemon_config(work, venue, callbacks),
                                    args.daemon_core)
    venue.portal_url = runtime["portal_url"]
    try:
        sessions, phones = log_in_online(venue, args.online)
        print(f"[{callbacks}] {len(sessions)} devices online; the evening starts", flush=True)
        radius = start_radius(work, args, venue, sessions)
        profiler = Profiler(process.pid, work / "profile.raw", args.load_core, args.profile)
        cpu_before, started = cpu_seconds(process.pid), time.monotonic()
        watch = Watch(process.pid, runtime)
        watch.start()
        browsing = Browsing(runtime["portal_url"], phones, args.page_rate,
                            args.menu_watchers).start()
        time.sleep(args.settle)
        rows = buy_all(args, venue, runtime)
        while time.monotonic() - started < args.min_seconds:
            time.sleep(0.5)
        cpu_used, elapsed = cpu_seconds(process.pid) - cpu_before, time.monotonic() - started
        profile = profiler.finish()
        radius.send_signal(signal.SIGTERM)
        radius.wait(60)
        watch.stop.set()
        browse = browsing.finish()
        hwm = memory_kib(process.pid)["VmHWM"]
        stored = stored_purchases(work / "hotspotd.sqlite3", [r.get("public_id") for r in rows])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        venue.stop()
    return report(args, callbacks, work, rows=rows, venue=venue, stored=stored,
                  radius=json.loads((work / "radius-out.json").read_text()),
                  cpu={"seconds": cpu_used, "window": elapsed, "profile": profile},
                  rss={"peak_sampled_kib": watch.peak_rss, "vmhwm_kib": hwm},
                  scrapes=watch.scrapes, browse=browse)


def stored_purchases(database: Path, public_ids: list[str | None]) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    counts: dict[str, int] = {}
    for public_id in public_ids:
        row = conn.execute("SELECT p.status, (SELECT COUNT(*) FROM grants g WHERE"
                           " g.payment_id = p.id) FROM payments p WHERE public_id = ?",
                           (public_id,)).fetchone()
        key = "missing" if row is None else f"{row[0]}, {row[1]} grant(s)"
        counts[key] = counts.get(key, 0) + 1
    conn.close()
    return counts


def ms(values: list[float]) -> dict[str, float]:
    return {"count": len(values), "p50_ms": round(percentile(values, 50) * 1000, 2),
            "p99_ms": round(percentile(values, 99) * 1000, 2),
            "max_ms": round(max(values, default=0.0) * 1000, 2)}


def report(args: argparse.Namespace, callbacks: str, work: Path, *, rows: list[Any],
           venue: Venue, stored: dict[str, int], radius: dict[str, Any], cpu: dict[str, Any],
           rss: dict[str, int], scrapes: list[Any], browse: dict[str, Any]) -> dict[str, Any]:
    delays = [venue.online[r["mac"]] - venue.paid[r["number"]] for r in rows
              if r["number"] in venue.paid and r["mac"] in venue.online]
    auth, acct = radius["auth"], radius["acct"]
    lost = {"purchases_not_online": len(rows) - len(delays),
            "pages_not_connected": sum(r.get("phase") != "connected" for r in rows),
            "payments_not_completed": len(rows) - stored.get("completed, 1 grant(s)", 0),
            "radius_auth_unanswered": auth["lost"], "radius_acct_unanswered": acct["lost"]}
    figures = {"radius_access_p50_ms": ms(auth["latencies"])["p50_ms"],
               "radius_access_p99_ms": ms(auth["latencies"])["p99_ms"],
               "radius_accounting_p99_ms": ms(acct["latencies"])["p99_ms"],
               "paid_to_online_p50_s": round(percentile(delays, 50), 3),
               "paid_to_online_p99_s": round(percentile(delays, 99), 3),
               "cpu_share_of_core": round(cpu["seconds"] / cpu["window"], 3),
               "peak_rss_mb": round(rss["vmhwm_kib"] / 1024, 1)}
    met = {"radius_p99": figures["radius_access_p99_ms"] < TARGETS["radius_p99_ms"],
           "paid_to_online_p99": figures["paid_to_online_p99_s"]
           < TARGETS["paid_to_online_p99_s"][callbacks],
           "peak_rss": figures["peak_rss_mb"] < TARGETS["peak_rss_mb"],
           "nothing_lost": not any(lost.values())}
    log_text = (work / "daemon.log").read_text(errors="replace")
    return {
        "benchmark": "busy_venue", "callbacks": callbacks,
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "git_commit": git_commit(),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "parameters": {k: v for k, v in vars(args).items() if k not in ("out_dir", "keep")},
        "figures": figures, "targets": TARGETS, "goals_met": met, "lost": lost,
        "radius": {"access": {**ms(auth["latencies"]), "codes": auth["codes"],
                              "sent": auth["sent"]},
                   "accounting": {**ms(acct["latencies"]), "sent": acct["sent"]}},
        "purchases": {"count": len(rows), "stored": stored, "paid": len(venue.paid),
                      "online": len(delays),
                      "answers": sorted({a for r in rows for a in r["answers"]}),
                      "live_polls": sum(r["polls"] for r in rows),
                      "live_polls_told_busy": sum(r["busy"] for r in rows),
                      "request_to_online_p99_s": round(percentile(
                          [venue.online[r["mac"]] - r["started"] for r in rows
                           if r["mac"] in venue.online], 99), 2)},
        "daraja_requests": venue.daraja.stats(),
        "browsing": {**{k: v for k, v in browse.items() if k != "page_seconds"},
                     "page_view": ms(browse["page_seconds"])},
        "metrics_scrapes": {"count": len(scrapes), "statuses": sorted({str(s) for s, _ in
                                                                        scrapes}),
                            "max_ms": round(max((d for _, d in scrapes), default=0) * 1000)},
        "cpu": {"window_seconds": round(cpu["window"], 1),
                "daemon_cpu_seconds": round(cpu["seconds"], 2), "profile": cpu["profile"]},
        "rss_mb": {"peak_sampled": round(rss["peak_sampled_kib"] / 1024, 1),
                   "vmhwm": figures["peak_rss_mb"]},
        "daemon_log": {"errors": log_text.count(" ERROR "),
                       "tracebacks": log_text.count("Traceback"),
                       "warnings": log_text.count(" WARNING ")},
    }


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def summary(result: dict[str, Any]) -> str:
    f, met = result["figures"], result["goals_met"]
    lines = [f"callbacks {result['callbacks']}: RADIUS p50 {f['radius_access_p50_ms']} ms,"
             f" p99 {f['radius_access_p99_ms']} ms; paid -> online p50"
             f" {f['paid_to_online_p50_s']} s, p99 {f['paid_to_online_p99_s']} s; daemon CPU"
             f" {f['cpu_share_of_core']:.0%} of its core; peak RSS {f['peak_rss_mb']} MB;"
             f" lost {result['lost']}; goals met {met}"]
    for group, share in list(result["cpu"]["profile"].get("by_thread", {}).items())[:8]:
        lines.append(f"  {group:<28} {share:6.1%} of a core")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", choices=("on", "off", "both"), default="both")
    parser.add_argument("--online", type=int, default=2000)
    parser.add_argument("--payments", type=int, default=100_000, help="history in the db")
    parser.add_argument("--interim-seconds", type=float, default=60.0)
    parser.add_argument("--login-rate", type=float, default=10.0)
    parser.add_argument("--purchases", type=int, default=100)
    parser.add_argument("--burst-seconds", type=float, default=60.0)
    parser.add_argument("--pin-delay", type=float, default=1.0)
    parser.add_argument("--page-rate", type=float, default=2.0)
    parser.add_argument("--menu-watchers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds of RADIUS and browsing before the first purchase")
    parser.add_argument("--min-seconds", type=float, default=120.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="per purchase")
    parser.add_argument("--daemon-core", type=int, default=1)
    parser.add_argument("--load-core", type=int, default=0)
    parser.add_argument("--profile", choices=("py-spy", "none"), default="py-spy")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.load_core})
    ok = True
    for callbacks in ("on", "off") if args.callbacks == "both" else (args.callbacks,):
        work = Path(tempfile.mkdtemp(prefix=f"hotspotd-venue-{callbacks}-"))
        try:
            result = evening(args, callbacks, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        out = args.out_dir / f"busy_venue_callbacks_{callbacks}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(summary(result), f"\nresults written to {out}", flush=True)
        ok = ok and result["goals_met"]["nothing_lost"]
    return 0 if ok else 1  # the targets are reported; a loss is a failure


if __name__ == "__main__":
    sys.exit(main())
