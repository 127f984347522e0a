"""The RADIUS servers of `radius_throughput.py`, each with the same 10,000 paid devices.

- the whole daemon (`WholeDaemon`): `hotspotd run` as its own process, every thread
  started, with the production backends (`daraja`, `routeros`) pointed at a Daraja and a
  MikroTik simulator running in the bench's process, over a database seeded in SQLite
  with the entitled devices (`memory_footprint.seed`, `memory_footprint.daemon_config`);
- the RADIUS component alone (diagnostic, `--component`): this module run as a child
  process (`python bench/radius_servers.py DB SECRET MAC_PASSWORD`): the real
  `RadiusServer` + `AccessPolicy` over a SQLite database; it prints `PORTS <auth> <acct>`
  once listening and serves until stdin closes;
- FreeRADIUS 3 (Debian package): a copy of /etc/freeradius/3.0 with our clients.conf and
  the `files` module's `authorize` holding the same users and reply attributes, signed
  with a Message-Authenticator as hotspotd signs every reply (FreeRADIUS 3.2.1 adds one
  only when asked; 3.2.5 does by default, for BlastRADIUS), and the default site's
  listeners moved to loopback on other (free) ports; run in the foreground, as the
  `freerad` user when the bench runs as root.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import TracebackType
from typing import Any

SESSION_TIMEOUT = 3600
RATE_LIMIT = "2M/5M"
INTERIM = 120
FREERADIUS = "/usr/sbin/freeradius"
RADDB = Path("/etc/freeradius/3.0")
SERVICE_USER = "freerad"  # the Debian package's; FreeRADIUS runs as it when we are root


def device_macs(count: int) -> list[str]:
    """The MACs `memory_footprint.seed` entitles, in its order."""
    from memory_footprint import mac_of

    return [mac_of(n) for n in range(count)]


def device_ip(index: int) -> str:
    return f"10.{60 + (index >> 16)}.{index >> 8 & 0xFF}.{index & 0xFF}"


def fill_database(path: Path, macs: list[str]) -> None:
    """A fresh hotspotd database with one plan and every MAC entitled for a day."""
    from hotspotd.store.db import Database

    db = Database(path).open()
    now = time.time()
    with db.write() as conn:
        plan = conn.execute("INSERT INTO plans (name, price, duration_seconds, rate_limit,"
                            " created_at) VALUES ('bench', 10, 86400, ?, ?)",
                            (RATE_LIMIT, now)).lastrowid
        conn.executemany("INSERT INTO entitlements (mac, expires_at, rate_limit, plan_id,"
                         " updated_at) VALUES (?, ?, ?, ?, ?)",
                         [(mac, now + 86400, RATE_LIMIT, plan, now) for mac in macs])
    db.close()


class WholeDaemon:
    """`hotspotd run` as the router meets it: its own process, every thread started, the
    production backends against simulators in this process, `devices` entitled devices
    (and `payments` payments of history) seeded in SQLite. A context manager."""

    def __init__(self, directory: Path, *, devices: int, payments: int = 0) -> None:
        self.directory = directory
        self.devices, self.payments = devices, payments
        self.process: subprocess.Popen[bytes] | None = None
        self.runtime: dict[str, Any] = {}
        self._stoppers: list[Any] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def auth_port(self) -> int:
        return int(self.runtime["radius"]["auth_port"])

    def __enter__(self) -> WholeDaemon:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def _start(self) -> None:
        import memory_footprint as footprint

        from hotspotd.secretbox import create_key_file
        from hotspotd.simulators.daraja import DarajaSimulator
        from hotspotd.simulators.mikrotik import MikrotikSimulator

        footprint.seed(self.directory / "hotspotd.sqlite3", devices=self.devices,
                       payments=self.payments)
        auth_port, acct_port = footprint.free_udp_port(), footprint.free_udp_port()
        daraja = DarajaSimulator(consumer_key="bench-ck", consumer_secret="bench-cs",
                                 passkey="bench-pk")
        daraja.start("127.0.0.1", 0)
        self._stoppers.append(daraja.stop)
        router = MikrotikSimulator(api_user="hotspotd", api_password=footprint.ROUTER_PASSWORD,
                                   radius_host="127.0.0.1", radius_auth_port=auth_port,
                                   radius_acct_port=acct_port, radius_secret=footprint.SECRET)
        router.start("127.0.0.1", 0)
        self._stoppers.append(router.stop)
        create_key_file(self.directory / "secret.key")
        config = footprint.daemon_config(self.directory, daraja, router, auth_port, acct_port)
        _default_settlement(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
        log = open(self.directory / "daemon.log", "wb")  # noqa: SIM115 - closed in stop()
        self._stoppers.append(log.close)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotspotd.cli", "run", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        self.runtime = footprint.wait_up(self.process, self.directory)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        while self._stoppers:
            self._stoppers.pop()()

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "daemon.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _default_settlement(config: Path) -> None:
    """memory_footprint's configuration less its quick settlement timings: the defaults."""
    from hotspotd.ops.install import to_toml

    values = tomllib.loads(config.read_text())
    values.pop("settlement", None)
    config.write_text(to_toml(values))


def serve_hotspotd(db_path: str, secret: str, mac_password: str) -> None:
    from hotspotd.access.access import AccessPolicy
    from hotspotd.access.access_view import AccessView
    from hotspotd.ops.logs import JournalFormatter, MaskingFilter
    from hotspotd.radius.server import RadiusServer
    from hotspotd.store.db import Database

    # Log as the daemon does (INFO, its formatter and masking filter), to a file the bench
    # deletes with its directory: the cost of logging is part of what is measured.
    handler = logging.FileHandler(Path(db_path).with_suffix(".log"))
    handler.setFormatter(JournalFormatter(journal=False))
    handler.addFilter(MaskingFilter([secret, mac_password]))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    db = Database(db_path).open()
    view = AccessView(db).start()
    policy = AccessPolicy(db, mac_password=mac_password, interim_interval=INTERIM, view=view)
    server = RadiusServer(host="127.0.0.1", auth_port=0, acct_port=0,
                          clients={"127.0.0.1": secret.encode()}, authorize=policy.authorize,
                          record_accounting=policy.record_accounting,
                          interim_interval=INTERIM)
    server.start()
    print(f"PORTS {server.auth_address[1]} {server.acct_address[1]}", flush=True)
    sys.stdin.read()  # until the parent closes the pipe
    server.stop()
    print(f"STATS {server.stats.requests} {server.stats.accepts} {server.stats.rejects}"
          f" {server.stats.duplicates} {dict(server.stats.dropped)}", flush=True)


def freeradius_available() -> bool:
    return Path(FREERADIUS).exists() and RADDB.is_dir()


def _set_ports(site: Path, port: int) -> None:
    """Listen on 127.0.0.1 / ::1, auth on `port` and accounting on `port + 1`."""
    text = site.read_text().replace("ipaddr = *", "ipaddr = 127.0.0.1")
    text = re.sub(r"(?m)^(\s*ipv6addr = )::", r"\1::1", text)
    ports = iter([port, port + 1, port, port + 1])  # auth, acct (IPv4), auth, acct (IPv6)
    text = re.sub(r"(?m)^(\s*port = )0\b", lambda m: f"{m[1]}{next(ports)}", text)
    site.write_text(text)


def prepare_freeradius(directory: Path, macs: list[str], secret: str,
                       mac_password: str, port: int) -> Path:
    """Copy the Debian configuration and put our client and users in it."""
    raddb = directory / "raddb"
    shutil.copytree(RADDB, raddb, symlinks=True)
    (raddb / "clients.conf").write_text(
        f"client bench {{\n\tipaddr = 127.0.0.1\n\tsecret = {secret}\n}}\n")
    users = "".join(
        f'"{mac}" Cleartext-Password := "{mac_password}"\n'
        f"\tSession-Timeout = {SESSION_TIMEOUT},\n"
        f'\tMikrotik-Rate-Limit = "{RATE_LIMIT}",\n'
        f"\tAcct-Interim-Interval = {INTERIM},\n"
        "\tMessage-Authenticator = 0x00\n\n" for mac in macs)
    authorize = raddb / "mods-config" / "files" / "authorize"
    authorize.unlink()
    authorize.write_text(users)
    config = raddb / "radiusd.conf"  # stay the invoking user: the copy is private to it
    config.write_text(re.sub(r"(?m)^(\s*)(user|group) = .*$", r"\1# \2 (bench: unchanged)",
                             config.read_text()))
    _set_ports(raddb / "sites-available" / "default", port)
    for site in ("inner-tunnel",):  # listens on a fixed port of its own
        link = raddb / "sites-enabled" / site
        if link.exists() or link.is_symlink():
            link.unlink()
    if os.geteuid() == 0:
        _hand_to_service_user(directory, raddb)
    return raddb


def _hand_to_service_user(directory: Path, raddb: Path) -> None:
    """The copy belongs to the service user, who may pass through `directory` (and read
    nothing else in it)."""
    directory.chmod(0o711)
    user = pwd.getpwnam(SERVICE_USER)
    for path in [raddb, *raddb.rglob("*")]:
        os.lchown(path, user.pw_uid, user.pw_gid)


def free_udp_pair() -> int:
    """A port P with P and P+1 free for UDP (FreeRADIUS's -p uses both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65535:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first, \
                        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                    first.bind(("127.0.0.1", port))
                    second.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free pair of UDP ports")


def start_freeradius(raddb: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start FreeRADIUS in the foreground; return it once it is ready."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process by the caller
    command = [FREERADIUS, "-f", "-d", str(raddb), "-l", "stdout"]
    if os.geteuid() == 0:  # never as root: as the Debian package's service user
        command = ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}",
                   "--init-groups", *command]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"FreeRADIUS exited {process.returncode}: see {log_path}")
        if b"Ready to process requests" in log_path.read_bytes():
            return process
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"FreeRADIUS did not start within 30 s: see {log_path}")


if __name__ == "__main__":
    serve_hotspotd(*sys.argv[1:4])
