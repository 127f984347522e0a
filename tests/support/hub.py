"""Fixtures for the hub's tests: one PostgreSQL cluster per session, one database per test.

Import the fixtures into a test module (`from support.hub import pg_cluster, hub_dsn`).

The cluster is session-scoped because initdb + start costs about a second and the hub's
tests are many; isolation comes from a fresh database per test (CREATE DATABASE takes a
few milliseconds), so no test sees another's rows.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.postgres import REQUIRE_ENV, PostgresCluster, free_port, unavailable_reason
from support.wait import wait_until


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    cluster = PostgresCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def hub_dsn(pg_cluster: PostgresCluster) -> str:
    """The DSN of a new, empty database on the session's cluster."""
    return pg_cluster.create_database()


wait_for = wait_until  # the tests' one poll-until helper (support.wait), by its old name


# --- processes: the hub (`hotspotd hub serve`) and an appliance's side of it -----------------


def write_self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for `host` (an IP SAN) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotspotd hub test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "hub.pem", directory / "hub.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def hotspotd_cli(*args: str, stdin: str | None = None,
                 timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `hotspotd ARGS` in a child process, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
    return subprocess.run([sys.executable, "-m", "hotspotd.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


class HubProcess:
    """`hotspotd hub serve` on a fixed free port (so a restart keeps the appliances' URL)."""

    def __init__(self, directory: Path, dsn: str) -> None:
        self.directory, self.dsn = directory, dsn
        directory.mkdir(parents=True, exist_ok=True)
        self.cert, key = write_self_signed(directory)
        self.port = free_port()
        self.config = directory / "hub.toml"
        self.config.write_text(
            f'[hub]\ndsn = "{dsn}"\nhost = "127.0.0.1"\nport = {self.port}\n'
            f'tls_cert_file = "{self.cert}"\ntls_key_file = "{key}"\nthreads = 8\n'
            'stale_after_seconds = 60\n')
        self.config.chmod(0o600)
        self.url = f"https://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`hotspotd hub ARGS --config hub.toml`."""
        return hotspotd_cli("hub", *args, "--config", str(self.config), stdin=stdin)

    def start(self) -> HubProcess:
        self.starts += 1
        log = (self.directory / f"hub-{self.starts}.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotspotd.cli", "hub", "serve", "--config",
             str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        wait_for(self._answers, timeout=20, message=f"the hub at {self.url}")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"hub exited {self.process.returncode}: {self.log()[-2000:]}")
        try:
            return requests.get(self.url + "healthz", verify=str(self.cert),
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return "".join(path.read_text(errors="replace")
                       for path in sorted(self.directory.glob("hub-*.log")))

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class ApplianceSide:
    """An appliance's database, key file and config, and its shipper as a process
    (`hotspotd hub ship`), as `hotspotd run` with [hub] enabled = true would run it."""

    def __init__(self, directory: Path, **hub_options: Any) -> None:
        from hotspotd.secretbox import create_key_file
        from hotspotd.store.db import Database

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.db_path = directory / "hotspotd.sqlite3"
        self.key_file = directory / "secret.key"
        create_key_file(self.key_file)
        options = {"enabled": True, "ship_interval_seconds": 1.0,
                   "health_interval_seconds": 1, "backoff_max_seconds": 1,
                   "timeout_seconds": 5.0, **hub_options}
        self.config = directory / "hotspotd.toml"
        self.config.write_text(
            f'[database]\npath = "{self.db_path}"\n[security]\nkey_file = "{self.key_file}"\n'
            "[hub]\n" + "".join(f"{name} = {_toml(value)}\n" for name, value in options.items()))
        self.db = Database(self.db_path).open()
        self.shipper: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return hotspotd_cli("hub", *args, "--config", str(self.config))

    def start_shipper(self) -> None:
        self.starts += 1
        log = (self.directory / f"shipper-{self.starts}.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
        self.shipper = subprocess.Popen(
            [sys.executable, "-m", "hotspotd.cli", "hub", "ship", "--config",
             str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

    def kill_shipper(self) -> None:
        if self.shipper is not None and self.shipper.poll() is None:
            self.shipper.send_signal(signal.SIGKILL)
            self.shipper.wait(10)

    def stop_shipper(self) -> None:
        if self.shipper is not None and self.shipper.poll() is None:
            self.shipper.terminate()
            self.shipper.wait(10)

    def log(self) -> str:
        return "".join(path.read_text(errors="replace")
                       for path in sorted(self.directory.glob("shipper-*.log")))

    def close(self) -> None:
        self.kill_shipper()
        self.db.close()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, int | float) else f'"{value}"'


# --- a ledger to ship: the rows the appliance's own code would write --------------------------


def sell(db: Any, count: int, *, start: int = 1, now: float = 1_700_000_000.0) -> None:
    """`count` M-Pesa sales: payment (pending, then completed), grant, device: 4 journal
    rows each (2 for the payment, 1 grant, 1 device), each sale one transaction."""
    with db.write() as conn:
        conn.execute("INSERT OR IGNORE INTO plans (id, name, price, duration_seconds,"
                     " created_at) VALUES (1, '1 hour', 20, 3600, ?)", (now,))
    for number in range(start, start + count):
        mac = f"AA:BB:{number // 65536 % 256:02X}:{number // 256 % 256:02X}:" \
              f"{number % 256:02X}:01"
        with db.write() as conn:
            conn.execute("INSERT INTO payments (id, public_id, plan_id, mac, phone, amount,"
                         " created_at) VALUES (?, ?, 1, ?, '254708374149', 20, ?)",
                         (number, f"p{number}", mac, now))
            conn.execute("UPDATE payments SET status = 'completed', receipt = ?,"
                         " paid_amount = 20, settled_at = ? WHERE id = ?",
                         (f"R{number:08d}", now + 5, number))
            conn.execute("INSERT INTO grants (id, mac, plan_id, payment_id, receipt, source,"
                         " seconds, starts_at, expires_at, created_at) VALUES (?, ?, 1, ?, ?,"
                         " 'stk', 3600, ?, ?, ?)", (number, mac, number, f"R{number:08d}",
                                                   now + 5, now + 3605, now + 5))
            conn.execute("INSERT OR IGNORE INTO devices (mac, first_seen, last_seen)"
                         " VALUES (?, ?, ?)", (mac, now, now))


# --- a venue's uplink: an HTTPS reverse proxy in front of the hub -----------------------------


class Uplink:
    """What sits between a venue and the hub: an HTTPS reverse proxy (the hub's own
    certificate, so an appliance enrolled with `--ca-file hub.pem` trusts it) forwarding every
    request to `hub`. It records each batch's answer and can withhold ONE answer: the hub has
    stored the batch and moved its `shipped_seq`, the appliance never hears so. That is the
    instant a crash costs a resend, made to happen on purpose instead of by luck:

        uplink.withhold_answer(acked_above=100)   # the first batch the hub acks past seq 100
        wait_for(uplink.withheld.is_set)           # stored at the hub, not acked at the venue
        ...SIGKILL the hub or the appliance...
        uplink.release()                           # the held request gets 502, as from nginx

    A hub that does not answer gets a 502 (`bad_gateway`), which the shipper treats like any
    hub failure (it keeps the batch and tries again).
    """

    def __init__(self, hub: HubProcess) -> None:
        import threading

        from hotspotd.hub.server import HubListener, tls_context

        self.hub = hub
        self.answers: list[dict[str, Any]] = []  # one per forwarded batch, in order
        self.withheld = threading.Event()
        self.withheld_answer: dict[str, Any] = {}
        self._release = threading.Event()
        self._hold_above: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        context = tls_context(str(hub.cert), str(hub.directory / "hub.key"))
        self._listener = HubListener(self._app, "127.0.0.1", 0, threads=8, context=context)
        self.url = self._listener.url

    def start(self) -> Uplink:
        self._listener.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._listener.stop()

    def withhold_answer(self, *, acked_above: int) -> None:
        """Withhold the hub's answer to the first batch it stores with `acked` above this."""
        with self._lock:
            self._hold_above = acked_above
            self.withheld.clear()
            self._release.clear()

    def release(self) -> None:
        """Let the held request end (502, as a proxy answers when its upstream died)."""
        self._release.set()

    def batch_answers_after(self, index: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.answers[index:])

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE would replace verify=
        return session

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        import json

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        path = environ.get("PATH_INFO", "/")
        query = environ.get("QUERY_STRING", "")
        headers = {name: environ[key] for name, key in (
            ("Authorization", "HTTP_AUTHORIZATION"), ("Content-Type", "CONTENT_TYPE"))
            if environ.get(key)}
        try:
            answer = self._session().request(
                environ["REQUEST_METHOD"], self.hub.url.rstrip("/") + path
                + (f"?{query}" if query else ""), data=body, headers=headers,
                verify=str(self.hub.cert), timeout=15, allow_redirects=False)
        except requests.RequestException:
            start_response("502 Bad Gateway", [("Content-Type", "application/json")])
            return [b'{"error": "bad_gateway"}']
        if path == "/v1/batches" and environ["REQUEST_METHOD"] == "POST":
            try:
                sent, got = json.loads(body), answer.json()
            except ValueError:
                sent, got = {}, {}
            record = {"first_seq": sent.get("first_seq"), "last_seq": sent.get("last_seq"),
                      "status": answer.status_code, **got}
            with self._lock:
                self.answers.append(record)
                hold = (self._hold_above is not None and answer.status_code == 200
                        and int(got.get("acked", 0)) > self._hold_above
                        and not got.get("duplicate"))
                if hold:
                    self._hold_above = None
                    self.withheld_answer = record
            if hold:
                self.withheld.set()
                self._release.wait(60)
                start_response("502 Bad Gateway", [("Content-Type", "application/json")])
                return [b'{"error": "bad_gateway"}']
        start_response(f"{answer.status_code} {answer.reason}",
                       [("Content-Type", answer.headers.get("Content-Type", "text/plain"))])
        return [answer.content]


def hub_rows(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of one query on the hub's database, as dicts."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()
