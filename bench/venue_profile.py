"""Where the daemon's CPU goes, for bench/busy_venue.py: py-spy sampling the running
process, aggregated by thread and by the hotspotd module that was at work.

py-spy (`pip install py-spy` into the virtualenv) records `--format raw` with thread names,
full file names, 100 samples a second, `--nonblocking` (the daemon is never paused, so its
latencies are not the profiler's), and without `--idle`: only threads that are running are
sampled (with `--idle` a thread asleep in `wait()` would count as busy). A thread that is
runnable but waiting for the core (the machine is shared) is sampled too, so the samples
only say how each thread's time divides among its code; each thread's CPU seconds come from
the kernel (/proc/<pid>/task/<tid>/stat, over the same window), and py-spy's thread ids
name them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

RATE = 100
THREAD = re.compile(r"^thread \((\d+)\):? ?(.*)$")


def _stat_seconds(path: Path) -> float:
    fields = path.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the whole process (every thread) so far."""
    return _stat_seconds(Path(f"/proc/{pid}/stat"))


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU seconds so far of each live thread, by its kernel thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[int(task.name)] = _stat_seconds(task / "stat")
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
    return found


class Profiler:
    """py-spy attached to `pid` from `core` until `finish()`."""

    def __init__(self, pid: int, out: Path, core: int, kind: str) -> None:
        self.out, self.pid, self.process = out, pid, None
        self.started = time.monotonic()
        self.threads_before = thread_seconds(pid)
        spy = Path(sys.executable).parent / "py-spy"
        if kind == "none" or not spy.exists():
            self.missing = "not asked for" if kind == "none" else f"{spy} not installed"
            return
        self.missing = ""
        self.process = subprocess.Popen(
            ["taskset", "-c", str(core), str(spy), "record", "--pid", str(pid), "--rate",
             str(RATE), "--nonblocking", "--threads", "--full-filenames", "--format", "raw",
             "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        after = thread_seconds(self.pid)
        used = {tid: after[tid] - self.threads_before.get(tid, 0.0) for tid in after}
        if self.process is None:
            return {"missing": self.missing,
                    **aggregate("", used, seconds, unnamed="(no py-spy: unnamed)")}
        self.process.send_signal(signal.SIGINT)
        try:
            _, errors = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        if not self.out.exists():
            return {"missing": f"py-spy wrote nothing: {errors.decode()[-500:]}",
                    **aggregate("", used, seconds)}
        return aggregate(self.out.read_text(), used, seconds)


def parse(text: str) -> list[tuple[int, str, list[str], int]]:
    """(thread id, thread name, frames root first, samples) per line of py-spy's raw
    output (`--threads`)."""
    stacks = []
    for line in text.splitlines():
        body, _, count = line.rpartition(" ")
        head, *frames = body.split(";")
        found = THREAD.match(head)
        if found and count.isdigit():
            stacks.append((int(found.group(1)), found.group(2), frames, int(count)))
    return stacks


def thread_group(name: str) -> str:
    """waitress-3 -> waitress, ThreadPoolExecutor-0_1 -> ThreadPoolExecutor (the
    scheduler's jobs)."""
    return re.sub(r"[-_]\d+(_\d+)?$", "", name) or "(unnamed)"


def frame_file(frame: str) -> tuple[str, str]:
    """("function", "path") of a py-spy frame "function (path:line)"."""
    function, _, rest = frame.rpartition(" (")
    return function, rest.rpartition(":")[0]


def where(path: str) -> str:
    """hotspotd/web/live_status.py, or (lib) waitress, or (stdlib) threading."""
    if "/hotspotd/" in path and "site-packages" not in path:
        return "hotspotd/" + path.rpartition("/hotspotd/")[2]
    if "site-packages/" in path:
        return "(lib) " + path.rpartition("site-packages/")[2].split("/")[0].removesuffix(
            ".py")
    return "(stdlib) " + Path(path).stem if path else "(native)"


def module_of(frames: list[str]) -> str:
    """The deepest hotspotd module in the stack (what the daemon's own code was doing), else
    the library the leaf is in."""
    for frame in reversed(frames):
        place = where(frame_file(frame)[1])
        if place.startswith("hotspotd/"):
            return place
    return where(frame_file(frames[-1])[1]) if frames else "(no frames)"


def aggregate(text: str, used: dict[int, float], seconds: float,
              unnamed: str = "(never sampled)") -> dict[str, Any]:
    """Shares of a core (CPU seconds / window seconds) by thread group, and by module and
    by leaf function: each thread's CPU seconds divided as its samples divide."""
    stacks = parse(text)
    names = {tid: name for tid, name, _, _ in stacks}
    samples: Counter[int] = Counter()
    for tid, _, _, count in stacks:
        samples[tid] += count
    threads: Counter[str] = Counter()
    for tid, cpu in used.items():
        threads[thread_group(names.get(tid, unnamed))] += cpu
    modules: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for tid, _, frames, count in stacks:
        weight = used.get(tid, 0.0) * count / samples[tid]
        modules[module_of(frames)] += weight
        if frames:
            function, path = frame_file(frames[-1])
            leaves[f"{function} ({where(path)})"] += weight

    def shares(counter: Counter[str], top: int) -> dict[str, float]:
        return {key: round(cpu / seconds, 4) for key, cpu in counter.most_common(top)
                if cpu > 0}

    return {"samples": sum(samples.values()), "seconds": round(seconds, 1), "rate": RATE,
            "threads_cpu_share": round(sum(used.values()) / seconds, 3),
            "by_thread": shares(threads, 20), "by_module": shares(modules, 30),
            "by_leaf_function": shares(leaves, 30)}
