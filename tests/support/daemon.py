"""Run the real `hotspotd` daemon as a subprocess, for crash-recovery and end-to-end tests.

    daemon = Daemon(tmp_path, {"daraja": {"backend": "daraja", "base_url": sim.url, ...}})
    daemon.seed_plan(name="1 hour", price=20, duration_seconds=3600)
    daemon.start()                       # writes the TOML, waits for runtime.json + /healthz
    daemon.post("/api/purchases", json={...})
    daemon.kill()                        # SIGKILL, like a power cut
    daemon.start(env={"HOTSPOTD_FAILPOINTS": "payment.stored"})
    assert daemon.wait_exit(10) == 86
    daemon.query("SELECT * FROM payments")

One `Daemon` owns one data directory (`data_dir`: config file, database, generated
secrets, `runtime.json`, and one log file per start) and can be started again and again on
it. The configuration is `base_config(data_dir)` (everything on 127.0.0.1, ports 0, both
embedded simulators, fast settlement) deep-merged with what the test passes. The child's
environment is the test's minus every `HOTSPOTD_*` variable, plus `env`.
Use it as a context manager (or call `close()`) so no daemon outlives its test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from hotspotd.ledger.plans import create_plan
from hotspotd.store.db import Database

CONFIG_FILE = "hotspotd.toml"
DATABASE_FILE = "hotspotd.sqlite3"
RUNTIME_FILE = "runtime.json"  # hotspotd.app.RUNTIME_FILE
SECRETS_FILE = "generated-secrets.json"  # hotspotd.generated_secrets.FILE_NAME
START_TIMEOUT = 20.0
LOG_TAIL_LINES = 40


class DaemonError(AssertionError):
    """The daemon did not start, answer or stop as expected; carries its log's tail."""


def base_config(data_dir: Path) -> dict[str, dict[str, Any]]:
    """A configuration for tests: loopback only, ports 0, simulators, quick settlement."""
    return {
        "web": {"host": "127.0.0.1", "port": 0},
        "database": {"path": str(data_dir / DATABASE_FILE)},
        "logging": {"level": "info"},
        "daraja": {"backend": "simulator", "timeout_seconds": 5.0,
                   "requests_per_minute": 6000},  # tests of the budget set their own
        "c2b": {"pull_interval_seconds": 0},  # Pull races the other settlement paths
        "settlement": {"inline_query_delays": [0.5], "reconcile_interval_seconds": 1,
                       "query_backoff_seconds": [0.5, 1.0], "pending_expiry_seconds": 60},
        "radius": {"host": "127.0.0.1", "auth_port": 0, "acct_port": 0,
                   "clients": ["127.0.0.1"]},
        "router": {"backend": "simulator", "timeout_seconds": 3.0},
        "simulators": {"host": "127.0.0.1", "daraja_port": 0, "router_api_port": 0,
                       "approve_delay_seconds": 0.5},
    }


def merge(base: Mapping[str, Mapping[str, Any]],
          changes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """`base` with each section updated by `changes` (a None value removes the key)."""
    merged = {section: dict(options) for section, options in base.items()}
    for section, options in changes.items():
        target = merged.setdefault(section, {})
        for name, value in options.items():
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
    return merged


def to_toml(values: Mapping[str, Mapping[str, Any]]) -> str:
    """Render section -> name -> value (str, int, float, bool, lists of those) as TOML."""
    lines: list[str] = []
    for section, options in values.items():
        lines.append(f"[{section}]")
        lines += [f"{name} = {_toml_value(value)}" for name, value in options.items()]
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


class Daemon:
    """The `hotspotd run` process on one data directory; start, kill and restart it."""

    def __init__(self, data_dir: Path, config: Mapping[str, Mapping[str, Any]] | None = None,
                 *, executable: str = sys.executable) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = merge(base_config(self.data_dir), config or {})
        self.executable = executable
        self.process: subprocess.Popen[bytes] | None = None
        self.runtime: dict[str, Any] = {}
        self.log_paths: list[Path] = []
        self.session = requests.Session()

    # -- files --------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def database_path(self) -> Path:
        return Path(self.config["database"]["path"])

    @property
    def log_path(self) -> Path:
        """The log (stderr) of the latest start."""
        if not self.log_paths:
            raise DaemonError("the daemon was never started")
        return self.log_paths[-1]

    def generated_secrets(self) -> dict[str, str]:
        """The secrets the daemon generated for itself (`generated-secrets.json`)."""
        return json.loads((self.database_path.parent / SECRETS_FILE).read_text())

    def write_config(self) -> Path:
        self.config_path.write_text(to_toml(self.config))
        return self.config_path

    # -- lifecycle ------------------------------------------------------------------------
    def launch(self, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start the process and return at once (see `start` to also wait until it is up).

        A stale `runtime.json` is removed first, so its reappearance means this start.
        """
        if self.running:
            raise DaemonError("the daemon is already running")
        self.write_config()
        self.runtime = {}
        (self.database_path.parent / RUNTIME_FILE).unlink(missing_ok=True)
        child_env = {name: value for name, value in os.environ.items()
                     if not name.startswith("HOTSPOTD_")}
        child_env.update(env or {})
        log_path = self.data_dir / f"hotspotd-{len(self.log_paths) + 1}.log"
        self.log_paths.append(log_path)
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [self.executable, "-m", "hotspotd.cli", "run", "--config",
                 str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                env=child_env, cwd=self.data_dir, start_new_session=True)
        return self.process

    def start(self, env: Mapping[str, str] | None = None,
              timeout: float = START_TIMEOUT) -> Daemon:
        """Launch, then wait until `runtime.json` is written and `/healthz` answers 200."""
        self.launch(env)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Wait for this start's `runtime.json` and a 200 from `/healthz`; return the addresses."""
        runtime_path = self.database_path.parent / RUNTIME_FILE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._fail_if_exited("exited before it was ready")
            if runtime_path.exists() and self._healthy(runtime_path):
                return self.runtime
            time.sleep(0.05)
        raise DaemonError(f"not ready within {timeout:g} s\n{self.log_tail()}")

    def _healthy(self, runtime_path: Path) -> bool:
        try:
            self.runtime = json.loads(runtime_path.read_text())
            response = self.session.get(self.url("/healthz"), timeout=2)
        except (ValueError, requests.RequestException):
            return False
        return response.status_code == 200

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise DaemonError("the daemon was never started")
        return self.process.pid

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to end by itself; return its exit code (-N: killed by N)."""
        if self.process is None:
            raise DaemonError("the daemon was never started")
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DaemonError(f"still running after {timeout:g} s\n{self.log_tail()}") from None

    def kill(self) -> int:
        """SIGKILL the process (no clean-up, like a power cut); return its exit code."""
        return self._signal(signal.SIGKILL, 10.0)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM the process and wait for it to stop; return its exit code."""
        return self._signal(signal.SIGTERM, timeout)

    def _signal(self, signum: int, timeout: float) -> int:
        if self.process is None:
            raise DaemonError("the daemon was never started")
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.wait_exit(timeout)

    def close(self) -> None:
        """Kill the process if it still runs; drop the HTTP session."""
        if self.running:
            self.kill()
        self.session.close()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- talking to it ----------------------------------------------------------------------
    @property
    def portal_url(self) -> str:
        """`http://127.0.0.1:PORT/` of the running start (from `runtime.json`)."""
        if not self.runtime:
            raise DaemonError("the daemon is not up: no runtime.json read")
        return str(self.runtime["portal_url"])

    def url(self, path: str) -> str:
        return self.portal_url.rstrip("/") + "/" + path.lstrip("/")

    def callback_url(self) -> str:
        """Where Daraja POSTs STK callbacks: local portal address + the secret path token."""
        token = self.config["web"].get("callback_token") or \
            self.generated_secrets()["web.callback_token"]
        return self.url(f"/callbacks/{token}/stk")

    def get(self, path: str, **options: Any) -> requests.Response:
        options.setdefault("timeout", 10)
        return self.session.get(self.url(path), **options)

    def post(self, path: str, **options: Any) -> requests.Response:
        options.setdefault("timeout", 10)
        return self.session.post(self.url(path), **options)

    # -- the database, read and seeded directly -------------------------------------------------
    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Run one read query on the database file (the daemon may be running or dead)."""
        conn = sqlite3.connect(self.database_path, timeout=10)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def seed_plan(self, *, name: str = "1 hour", price: int = 20, duration_seconds: int = 3600,
                  rate_limit: str | None = "2M/5M") -> int:
        """Create (migrating the database first if it is new) a plan; return its id."""
        db = Database(self.database_path).open()
        try:
            with db.write() as conn:
                return create_plan(conn, name=name, price=price,
                                   duration_seconds=duration_seconds, rate_limit=rate_limit,
                                   now=time.time()).id
        finally:
            db.close()

    # -- diagnostics ----------------------------------------------------------------------------
    def log_text(self, start: int = -1) -> str:
        """The combined stdout/stderr of one start (default: the latest)."""
        if not self.log_paths:
            return ""
        path = self.log_paths[start]
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} log lines of {self.log_path.name} ---\n" + "\n".join(tail)

    def _fail_if_exited(self, what: str) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise DaemonError(f"hotspotd {what} (exit code {self.process.returncode})\n"
                              f"{self.log_tail()}")
