"""RADIUS Access-Request throughput and latency: the whole `hotspotd run` daemon beside
FreeRADIUS 3, in the same run.

The daemon as the router meets it: `hotspotd run` as its own process, every thread started,
production backends (`daraja`, `routeros`) pointed at simulators in this process, 10,000
entitled devices seeded in SQLite (`radius_servers.WholeDaemon`). FreeRADIUS 3 holds the
same users in its `files` module. Both are driven by FreeRADIUS's `radclient` with request
files of at most 5,000 MAC logins (User-Name = Calling-Station-Id, PAP, Message-
Authenticator), 64 in flight (`-p 64`), no retransmissions (`-r 1`), so a lost request
shows up as lost; every file goes to one server then the other, in turns. Per server and
file: a quiet run (`-q -s`) measures throughput from wall-clock time and radclient's own
lost count; a traced run (`-x`, line-buffered, every line time-stamped on arrival) gives
per-request latency from "Sent ... Id N" to "Received ... Id N".
Results: bench/results/radius_throughput.json. See bench/README.md.

`--component` measures instead the RADIUS component alone (`RadiusServer` + `AccessPolicy`
in a bare process, no other thread of the daemon): a diagnostic, written to
bench/results/radius_component.json.

    .venv/bin/python bench/radius_throughput.py            # needs radclient, freeradius
    apt-get install -y freeradius freeradius-utils         # if missing: else FreeRADIUS is
                                                           # skipped, and said so
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import radius_servers as servers  # noqa: E402
from benchstats import percentile
from memory_footprint import MAC_PASSWORD, SECRET

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
SENT = re.compile(r"^Sent Access-Request Id (\d+)")
RECEIVED = re.compile(r"^Received Access-\w+ Id (\d+)")
LOST = re.compile(r"Lost\s*:\s*(\d+)")
APPROVED = re.compile(r"Accepted\s*:\s*(\d+)")


def write_request_files(directory: Path, macs: list[str], per_file: int) -> list[Path]:
    files = []
    for start in range(0, len(macs), per_file):
        path = directory / f"requests-{start // per_file}.txt"
        path.write_text("\n".join(
            f'User-Name = "{mac}", User-Password = "{MAC_PASSWORD}",'
            f' Calling-Station-Id = "{mac}", Framed-IP-Address = {servers.device_ip(i)},'
            ' NAS-Identifier = "bench", Service-Type = Login-User,'
            " Message-Authenticator = 0x00\n"
            for i, mac in enumerate(macs[start:start + per_file], start)))
        files.append(path)
    return files


def radclient(port: int, path: Path, parallel: int, extra: list[str]) -> list[str]:
    return [shutil.which("radclient") or "/usr/bin/radclient", *extra, "-f", str(path),
            "-p", str(parallel), "-r", "1", "-t", "5", f"127.0.0.1:{port}", "auth", SECRET]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def quiet_run(port: int, path: Path, parallel: int) -> dict[str, float]:
    client_before = children_cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(radclient(port, path, parallel, ["-q", "-s"]), capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - started
    client = children_cpu_seconds() - client_before
    lost = LOST.search(done.stdout)
    approved = APPROVED.search(done.stdout)
    return {"seconds": elapsed, "lost": int(lost[1]) if lost else -1,
            "approved": int(approved[1]) if approved else 0, "client_cpu_seconds": client}


def traced_run(port: int, path: Path, parallel: int) -> list[float]:
    """Latencies (ms) of every answered request, from radclient's -x trace."""
    command = ["stdbuf", "-oL", *radclient(port, path, parallel, ["-x"])]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, bufsize=1)
    assert process.stdout is not None
    outstanding: dict[str, float] = {}
    latencies = []
    for line in process.stdout:
        now = time.perf_counter()
        if (sent := SENT.match(line)) is not None:
            outstanding[sent[1]] = now
        elif (received := RECEIVED.match(line)) is not None:
            started = outstanding.pop(received[1], None)
            if started is not None:
                latencies.append((now - started) * 1000)
    process.wait()
    return latencies


class Tally:
    """What one server did over every run."""

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self.pid = pid
        self.requests = self.lost = self.approved = 0
        self.seconds = self.cpu_seconds = self.client_cpu_seconds = 0.0
        self.latencies: list[float] = []
        self.runs_per_s: list[float] = []  # each quiet run's requests per second, in order

    def run_file(self, port: int, path: Path, parallel: int) -> None:
        count = sum(1 for line in path.open() if line.strip())
        cpu_before = cpu_seconds(self.pid)
        quiet = quiet_run(port, path, parallel)
        self.cpu_seconds += cpu_seconds(self.pid) - cpu_before
        self.requests += count
        self.seconds += quiet["seconds"]
        self.runs_per_s.append(round(count / quiet["seconds"]))
        self.client_cpu_seconds += quiet["client_cpu_seconds"]
        self.lost += int(quiet["lost"]) if quiet["lost"] >= 0 else count
        self.approved += int(quiet["approved"])
        self.latencies += traced_run(port, path, parallel)

    def result(self) -> dict[str, Any]:
        latencies = self.latencies or [0.0]
        result = {"requests": self.requests, "approved": self.approved, "lost": self.lost,
                  "throughput_per_s": round(self.requests / self.seconds, 1),
                  "runs_per_s": self.runs_per_s,
                  "server_cpu_us_per_request": round(
                      self.cpu_seconds / self.requests * 1e6, 1),
                  "radclient_cpu_us_per_request": round(
                      self.client_cpu_seconds / self.requests * 1e6, 1),
                  # radclient's CPU over the quiet runs' wall-clock time: near 1, the
                  # client is what limits the rate (see bench/README.md)
                  "radclient_busy_share": round(self.client_cpu_seconds / self.seconds, 2),
                  "latency_ms": {"p50": round(percentile(latencies, 50), 2),
                                 "p99": round(percentile(latencies, 99), 2),
                                 "max": round(max(latencies), 2),
                                 "count": len(self.latencies)}}
        print(f"{self.name:>10}: {result['throughput_per_s']:>8.1f} req/s, p50"
              f" {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms,"
              f" lost {self.lost} of {self.requests},"
              f" {result['server_cpu_us_per_request']} us server CPU per request"
              f" (radclient {result['radclient_cpu_us_per_request']} us)", flush=True)
        return result


def start_component(db_path: Path) -> tuple[subprocess.Popen[str], int]:
    """The RADIUS component alone in a child process (`--component`, a diagnostic)."""
    process = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "radius_servers.py"), str(db_path), SECRET,
         MAC_PASSWORD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORTS "):
        raise RuntimeError(f"hotspotd RADIUS server did not start: {line!r}")
    return process, int(line.split()[1])


def start_hotspotd(args: argparse.Namespace, directory: Path, macs: list[str],
                   stack: contextlib.ExitStack) -> tuple[Tally, int]:
    """The server under test: the whole daemon, or with `--component` the component."""
    if args.component:
        servers.fill_database(directory / "bench.sqlite3", macs)
        process, port = start_component(directory / "bench.sqlite3")
        stack.callback(process.communicate, "", 30)
        return Tally("hotspotd", process.pid), port
    daemon = stack.enter_context(servers.WholeDaemon(directory / "daemon", devices=len(macs)))
    print(f"hotspotd run: pid {daemon.pid}, {len(macs)} entitled devices, RADIUS auth port"
          f" {daemon.auth_port}", flush=True)
    return Tally("hotspotd", daemon.pid), daemon.auth_port


def start_freeradius(directory: Path, macs: list[str],
                     stack: contextlib.ExitStack) -> tuple[Tally, int]:
    port = servers.free_udp_pair()
    raddb = servers.prepare_freeradius(directory, macs, SECRET, MAC_PASSWORD, port)
    process = servers.start_freeradius(raddb, directory / "freeradius.log")
    stack.callback(process.wait, 10)
    stack.callback(process.terminate)
    return Tally("FreeRADIUS", process.pid), port


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both servers up side by side; each file goes to one then the other, in turns."""
    macs = servers.device_macs(args.devices)
    skipped = "--skip-freeradius" if args.skip_freeradius else (
        None if servers.freeradius_available() else
        "FreeRADIUS not installed (apt-get install -y freeradius)")
    with tempfile.TemporaryDirectory(prefix="hotspotd-radius-bench-") as temporary, \
            contextlib.ExitStack() as stack:
        directory = Path(temporary)
        (directory / "daemon").mkdir()
        files = write_request_files(directory, macs, args.per_file)
        targets = [start_hotspotd(args, directory, macs, stack)]
        if skipped is None:
            targets.append(start_freeradius(directory, macs, stack))
        time.sleep(args.settle)  # both idle a moment after starting, as they will be
        for turn in range(args.rounds):
            for path in files:  # each file to both, who goes first changing every round
                for tally, target_port in (targets if turn % 2 == 0 else targets[::-1]):
                    tally.run_file(target_port, path, args.parallel)
        results = {tally.name.lower(): tally.result() for tally, _ in targets}
    if skipped is not None:
        results["freeradius"] = {"skipped": skipped}
        print(f"FreeRADIUS: skipped ({skipped}); no ratio")
        return results
    return results | ratios(results)


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """hotspotd over FreeRADIUS: all requests over all quiet runs' time (the figure), and
    file by file (each pair ran back to back, so it shows how much the machine moved)."""
    hotspotd, freeradius = results["hotspotd"], results["freeradius"]
    ratio = hotspotd["throughput_per_s"] / freeradius["throughput_per_s"]
    pairs = sorted(h / f for h, f in zip(hotspotd["runs_per_s"], freeradius["runs_per_s"],
                                         strict=True))
    cpu_ratio = freeradius["server_cpu_us_per_request"] / max(
        0.1, hotspotd["server_cpu_us_per_request"])
    print(f"hotspotd / FreeRADIUS throughput: {ratio:.2f}x (target >= 1.0x, 0 lost, p99 < 10"
          f" ms; file by file {pairs[0]:.2f}-{pairs[-1]:.2f}x, median"
          f" {percentile(pairs, 50):.2f}x); requests per server CPU-second: {cpu_ratio:.2f}x",
          flush=True)
    return {"throughput_ratio": round(ratio, 3),
            "pair_ratios": {"min": round(pairs[0], 3), "p50": round(percentile(pairs, 50), 3),
                            "max": round(pairs[-1], 3)},
            "cpu_efficiency_ratio": round(cpu_ratio, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=5_000)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds both servers stand idle before the first round")
    parser.add_argument("--component", action="store_true",
                        help="diagnostic: the RADIUS component alone, not the whole daemon")
    parser.add_argument("--skip-freeradius", action="store_true")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    args.output = args.output or RESULTS / (
        "radius_component.json" if args.component else "radius_throughput.json")
    if shutil.which("radclient") is None:
        print("radclient is missing: apt-get install -y freeradius-utils")
        return 2
    load_before = os.getloadavg()[0]
    results = run(args)
    record = {"measured": "RADIUS component alone (diagnostic)" if args.component else
              "hotspotd run, the whole daemon, production backends against simulators",
              "parameters": vars(args) | {"output": str(args.output)},
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": os.cpu_count(),
                          "load_average_1min": [load_before, os.getloadavg()[0]]},
              "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), **results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    served = [r for r in results.values() if isinstance(r, dict) and "requests" in r]
    failed = [r for r in served if r["lost"] or r["approved"] != r["requests"]]
    if failed:  # a login refused is a bench that measured the wrong thing
        print("FAILED: requests lost or not accepted (see the counts above)")
    return 1 if failed else 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    raise SystemExit(main())
