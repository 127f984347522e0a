"""Start and stop: the real `hotspotd run` daemon on a database with a year of history.

Seeds `--payments` payments (1,000,000) and `--devices` entitled devices (10,000) with
`memory_footprint.seed`, then starts `hotspotd run` as its own process, production backends
(`daraja` against the Daraja simulator, `routeros` against the MikroTik simulator, both in
this process) and a `NOTIFY_SOCKET` this bench listens on, as systemd would (`Type=notify`).
Each start is timed from the exec to `READY=1` on the notify socket (systemd's "started")
and to the first 200 of `GET /healthz?live` (polled every 10 ms); the daemon's log splits
it into exec → "starting" (interpreter, imports, config) and `Appliance.start`. Each stop
(after `--serve-seconds` of running) is timed from SIGTERM to the exit, which must be code
0 with `STOPPING=1` sent.

Rounds: one first start that compiles the bytecode (as installing the package does; not
counted), `--rounds` warm starts and stops, `--cold-rounds` with the database's pages
dropped from the page cache first (as after a reboot), `--poll-rounds` stopped while
`--long-polls` phones (their own addresses on the router's WiFi) wait on live status, as a
venue's portal pages always do, `--crash-rounds` of the crash path
(SIGKILL with a push in flight, stored as `sending`; the next start must close it as
failed: `recover_after_restart`), and one stop while the daily backup copies the database
(a minute after a start; `--no-backup-round` skips it).

Targets (issue 13): READY=1 < 3 s, clean stop < 2 s. Prints the figures and writes
`bench/results/start_stop.json` (p50 and max of each, and every round).

Usage: flock /tmp/bench.lock .venv/bin/python bench/start_stop.py [--payments 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
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
from memory_footprint import ROUTER_PASSWORD, SECRET, daemon_config, free_udp_port, seed
from notify_socket import NotifySocket, first_live_answer, free_tcp_port

import hotspotd
from hotspotd.ops.install import to_toml
from hotspotd.secretbox import create_key_file
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator
from hotspotd.simulators.phones import join_wifi

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "start_stop.json"
READY_TARGET, STOP_TARGET = 3.0, 2.0
START_TIMEOUT, STOP_TIMEOUT = 60.0, 30.0


class Bench:
    """The seeded data directory, the simulators, the notify socket; one daemon at a time."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.database = data_dir / "hotspotd.sqlite3"
        auth_port, acct_port = free_udp_port(), free_udp_port()
        self.daraja = DarajaSimulator(consumer_key="bench-ck", consumer_secret="bench-cs",
                                      passkey="bench-pk")
        self.daraja.start("127.0.0.1", 0)
        self.router = MikrotikSimulator(api_user="hotspotd", api_password=ROUTER_PASSWORD,
                                        radius_host="127.0.0.1", radius_auth_port=auth_port,
                                        radius_acct_port=acct_port, radius_secret=SECRET)
        self.router.start("127.0.0.1", 0)
        if not (data_dir / "secret.key").exists():
            create_key_file(data_dir / "secret.key")
        self.config = daemon_config(data_dir, self.daraja, self.router, auth_port, acct_port)
        self.web_port = free_tcp_port()
        self.backup_config = self._configs()
        self.notify = NotifySocket(data_dir)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("HOTSPOTD_") and k != "PYTHONDONTWRITEBYTECODE"}
        # An installed package has its bytecode compiled; here it is cached on the first
        # (uncounted) start, outside the working tree.
        self.env.update(NOTIFY_SOCKET=str(self.notify.path),
                        PYTHONPYCACHEPREFIX=str(data_dir / "pycache"))
        self.starts = 0

    def _configs(self) -> Path:
        """memory_footprint's configuration with a known web port (polled from the exec);
        and the same with the daily backup on (its first one a minute after the start)."""
        import tomllib

        values = tomllib.loads(self.config.read_text())
        values["web"]["port"] = self.web_port
        self.config.write_text(to_toml(values))
        values["backup"] = {"enabled": True, "directory": str(self.data_dir / "backups")}
        path = self.data_dir / "hotspotd-backup.toml"
        path.write_text(to_toml(values))
        path.chmod(0o600)
        return path

    def evict_database(self) -> None:
        """Drop the database's pages from the page cache, as after a reboot (the code's
        files stay cached)."""
        for path in (self.database, self.database.with_name(self.database.name + "-wal")):
            if path.exists():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)

    def launch(self, config: Path) -> tuple[subprocess.Popen[bytes], float, float]:
        self.starts += 1
        self.notify.clear()
        log = open(self.log_path(), "wb")  # noqa: SIM115 - the child holds it
        started, wall = time.monotonic(), time.time()
        process = subprocess.Popen([sys.executable, "-m", "hotspotd.cli", "run", "--config",
                                    str(config)], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=self.env)
        log.close()
        return process, started, wall

    def start(self, *, cold: bool = False, config: Path | None = None,
              ) -> tuple[subprocess.Popen[bytes], dict[str, float]]:
        """Launch; the seconds from the exec to READY=1 and to the first live 200, and the
        phases the daemon's log shows."""
        if cold:
            self.evict_database()
        process, started, wall = self.launch(config or self.config)
        url = f"http://127.0.0.1:{self.web_port}/healthz?live"
        try:
            live_at = first_live_answer(url, process, START_TIMEOUT)
            ready_at = self.notify.wait_for("READY=1", START_TIMEOUT)
            if ready_at is None:
                raise RuntimeError("no READY=1")
        except RuntimeError as exc:
            process.kill()
            process.wait()
            raise SystemExit(f"start {self.starts}: {exc}\n{self.log_tail()}") from None
        return process, {"ready": ready_at - started, "live": live_at - started,
                         **self.log_phases(wall)}

    def log_phases(self, exec_wall: float) -> dict[str, float]:
        """From the log: exec → "starting" (interpreter, imports, config) and "starting" →
        "is up" (Appliance.start: database, listeners, threads)."""
        stamps: dict[str, float] = {}
        for line in self.log_path().read_text(errors="replace").splitlines():
            for phase, words in (("starting", " starting with "), ("up", "hotspotd is up")):
                if words in line and phase not in stamps:
                    stamps[phase] = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f"
                                                      ).timestamp()
        if len(stamps) < 2:
            return {}
        return {"to_log_start": stamps["starting"] - exec_wall,
                "appliance_start": stamps["up"] - stamps["starting"]}

    def stop(self, process: subprocess.Popen[bytes]) -> dict[str, Any]:
        """SIGTERM; the seconds to the exit, its code, whether STOPPING=1 came."""
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        seconds = time.monotonic() - started
        stopping = self.notify.wait_for("STOPPING=1", 1.0) is not None
        return {"stop": seconds, "exit_code": code, "stopping_seen": stopping}

    def crash(self, process: subprocess.Popen[bytes], round_number: int) -> str:
        """A push in flight (stored as `sending`, no CheckoutRequestID), then SIGKILL."""
        public_id = f"crash{round_number:04d}"
        conn = sqlite3.connect(self.database, timeout=10)
        with conn:
            conn.execute("INSERT INTO payments (public_id, plan_id, mac, phone, amount,"
                         " status, push_state, created_at) VALUES (?, 1, '02:DD:00:00:00:01',"
                         " '254711000000', 20, 'pending', 'sending', ?)",
                         (public_id, time.time()))
        conn.close()
        process.send_signal(signal.SIGKILL)
        process.wait()
        return public_id

    def status_of(self, public_id: str) -> str:
        conn = sqlite3.connect(self.database, timeout=10)
        try:
            return str(conn.execute("SELECT status FROM payments WHERE public_id = ?",
                                    (public_id,)).fetchone()[0])
        finally:
            conn.close()

    def log_path(self) -> Path:
        return self.data_dir / f"daemon-{self.starts}.log"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path().read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.notify.close()
        self.router.stop()
        self.daraja.stop()


def printed(what: str, timing: dict[str, Any]) -> dict[str, Any]:
    phases = (f" (log: exec→starting {timing['to_log_start']:.2f} s, Appliance.start"
              f" {timing['appliance_start']:.2f} s)" if "appliance_start" in timing else "")
    stop = (f", stop {timing['stop']:.2f} s (exit {timing['exit_code']}, STOPPING=1"
            f" {'seen' if timing['stopping_seen'] else 'MISSING'})" if "stop" in timing else "")
    print(f"{what}: ready {timing['ready']:.2f} s, live {timing['live']:.2f} s{phases}{stop}",
          flush=True)
    return timing


def clean_rounds(bench: Bench, rounds: int, serve_seconds: float, *,
                 cold: bool = False) -> list[dict[str, Any]]:
    results = []
    for number in range(1, rounds + 1):
        process, timing = bench.start(cold=cold)
        time.sleep(serve_seconds)
        timing.update(bench.stop(process))
        results.append(printed(f"{'cold' if cold else 'warm'} {number}", timing))
    return results


def poll_rounds(bench: Bench, rounds: int, serve_seconds: float,
                phones: int) -> list[dict[str, Any]]:
    """Stops with portal pages waiting on live status, as a venue always has: `phones`
    devices on the WiFi, each long-polling its own time (up to 20 s)."""
    results = []
    for number in range(1, rounds + 1):
        process, timing = bench.start()
        waits = [threading.Thread(target=long_poll, args=(bench, f"02:EE:00:00:{number:02X}:"
                                                                 f"{i:02X}"))
                 for i in range(phones)]
        for wait in waits:
            wait.start()
        time.sleep(serve_seconds)
        timing.update(bench.stop(process))
        for wait in waits:
            wait.join(30)
        results.append(printed(f"with {phones} long polls {number}", timing))
    return results


def long_poll(bench: Bench, mac: str) -> None:
    phone = join_wifi(bench.router, mac)
    try:
        phone.get(f"http://127.0.0.1:{bench.web_port}/live/device/{mac}?wait=20", timeout=30)
    except requests.RequestException:
        pass  # cut off by the stop: the page polls again
    finally:
        phone.close()


def crash_rounds(bench: Bench, rounds: int, serve_seconds: float) -> list[dict[str, Any]]:
    """SIGKILL with a push in flight, then a start that must close it as failed."""
    results = []
    process, _ = bench.start()
    for number in range(1, rounds + 1):
        time.sleep(serve_seconds)
        interrupted = bench.crash(process, number)
        process, timing = bench.start()
        timing["interrupted_push_closed"] = bench.status_of(interrupted) == "failed"
        results.append(printed(f"after SIGKILL {number} (interrupted push closed:"
                               f" {timing['interrupted_push_closed']})", timing))
    timing = bench.stop(process)
    if timing["exit_code"] != 0:
        raise SystemExit(f"the last start did not stop cleanly: {timing}")
    return results


def backup_round(bench: Bench) -> dict[str, Any]:
    """SIGTERM while the daily backup copies the database (it starts a minute after the
    start): the stop must not wait for it, and leave no partial file. (A small database's
    backup may end before it is seen: then the stop is an ordinary one.)"""
    backups = bench.data_dir / "backups"
    shutil.rmtree(backups, ignore_errors=True)
    process, timing = bench.start(config=bench.backup_config)
    try:
        deadline = time.monotonic() + 120
        while not list(backups.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        timing["caught_in_progress"] = bool(list(backups.glob("*.partial")))
        time.sleep(0.5)  # well into the copy
    finally:
        timing.update(bench.stop(process))
    timing["left_in_backups"] = sorted(p.name for p in backups.glob("*"))
    timing["abandoned_logged"] = "backup abandoned" in bench.log_path().read_text()
    printed(f"stop during a backup (caught in progress: {timing['caught_in_progress']},"
            f" left behind: {timing['left_in_backups']})", timing)
    return timing


def summary(rounds: list[dict[str, Any]], name: str) -> dict[str, float]:
    values = [r[name] for r in rounds if name in r]
    return {"p50": round(percentile(values, 50), 3), "max": round(max(values, default=0), 3)}


def rounded(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
            for r in rounds]


def backup_abandoned(timing: dict[str, Any] | None) -> bool:
    """The stop during a backup left nothing behind and said so (vacuous if not run, or
    if the backup ended before the stop)."""
    if not timing or not timing["caught_in_progress"]:
        return True
    return timing["left_in_backups"] == [] and timing["abandoned_logged"]


def report(args: argparse.Namespace, seeding: dict[str, float],
           measured: dict[str, Any]) -> dict[str, Any]:
    warm, cold, crashed = measured["warm"], measured["cold"], measured["crash"]
    stopped = warm + cold + measured["polls"] + ([measured["backup"]] if measured["backup"]
                                                 else [])
    started = warm + cold + crashed
    figures = {f"{name}_{kind}": summary(rounds, name)
               for kind, rounds in (("warm", warm), ("cold", cold), ("after_crash", crashed))
               for name in ("ready", "live", "to_log_start", "appliance_start") if rounds}
    figures["stop"] = summary(warm + cold, "stop")
    figures["stop_with_long_polls"] = summary(measured["polls"], "stop")
    if measured["backup"]:
        figures["stop_during_backup"] = round(measured["backup"]["stop"], 3)
    ready_max = max(r["ready"] for r in started)
    return {
        "hotspotd_version": hotspotd.__version__,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average_after": os.getloadavg()},
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "database": seeding,
        "seconds": figures,
        "targets": {"ready": READY_TARGET, "stop": STOP_TARGET},
        "goals_met": {
            "ready": ready_max < READY_TARGET,
            "stop": max(r["stop"] for r in stopped) < STOP_TARGET,
            "clean_exit": all(r["exit_code"] == 0 and r["stopping_seen"] for r in stopped),
            "crash_recovered": all(r["interrupted_push_closed"] for r in crashed),
            "backup_abandoned": backup_abandoned(measured["backup"])},
        "first_start_compiling_bytecode": rounded([measured["first"]])[0],
        "rounds": {"warm": rounded(warm), "cold": rounded(cold),
                   "with_long_polls": rounded(measured["polls"]),
                   "after_crash": rounded(crashed),
                   "stop_during_backup": rounded([measured["backup"]] if measured["backup"]
                                                 else [])},
    }


def seeded(data_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    """Seed the database, unless `--data-dir` names one seeded by an earlier run."""
    database = data_dir / "hotspotd.sqlite3"
    seconds = 0.0
    if not database.exists():
        seconds = seed(database, devices=args.devices, payments=args.payments)
    counts = sqlite3.connect(database).execute(
        "SELECT (SELECT COUNT(*) FROM payments), (SELECT COUNT(*) FROM entitlements)").fetchone()
    print(f"{counts[0]} payments, {counts[1]} entitled devices (seeded in {seconds:.1f} s,"
          f" {database.stat().st_size / 1e6:.0f} MB)", flush=True)
    return {"payments": counts[0], "entitled_devices": counts[1],
            "seed_seconds": round(seconds, 1),
            "megabytes": round(database.stat().st_size / 1e6, 1)}


def measure(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    process, first = bench.start()  # compiles and caches the bytecode: not counted
    first.update(bench.stop(process))
    printed("first start (bytecode compiled, not counted)", first)
    return {"first": first,
            "warm": clean_rounds(bench, args.rounds, args.serve_seconds),
            "cold": clean_rounds(bench, args.cold_rounds, args.serve_seconds, cold=True),
            "polls": poll_rounds(bench, args.poll_rounds, args.serve_seconds, args.long_polls),
            "crash": crash_rounds(bench, args.crash_rounds, args.serve_seconds),
            "backup": backup_round(bench) if args.backup_round else None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="hotspotd-startstop-", dir="/tmp"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        seeding = seeded(data_dir, args)
        bench = Bench(data_dir)
        try:
            measured = measure(bench, args)
        finally:
            bench.close()
        return report(args, seeding, measured)
    finally:
        if args.keep or args.data_dir:
            print(f"data directory kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-rounds", type=int, default=5,
                        help="starts with the database evicted from the page cache")
    parser.add_argument("--poll-rounds", type=int, default=5,
                        help="stops with --long-polls phones waiting on live status")
    parser.add_argument("--long-polls", type=int, default=4,
                        help="phones long-polling (default: [portal] live_waiters, 4)")
    parser.add_argument("--crash-rounds", type=int, default=5)
    parser.add_argument("--no-backup-round", dest="backup_round", action="store_false",
                        help="skip the stop during a backup (it waits a minute for one)")
    parser.add_argument("--serve-seconds", type=float, default=2.0,
                        help="how long each start runs before it is stopped or killed")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--data-dir", type=Path,
                        help="a data directory to use and keep (seeded if it has no database)")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result["seconds"], indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    met, seconds = result["goals_met"], result["seconds"]
    print(f"READY=1 warm p50 {seconds['ready_warm']['p50']} s, max of every start"
          f" {'under' if met['ready'] else 'OVER'} {READY_TARGET} s; stop p50"
          f" {seconds['stop']['p50']} s max {seconds['stop']['max']} s (target"
          f" {STOP_TARGET} s); {met}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
