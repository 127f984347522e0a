"""The two RADIUS servers of `radius_throughput.py`, each with the same 10,000 paid devices.

- hotspotd: this module run as a child process (`python bench/radius_servers.py DB SECRET
  MAC_PASSWORD`): the real `RadiusServer` + `AccessPolicy` over a SQLite database; it
  prints `PORTS <auth> <acct>` once listening and serves until stdin closes.
- FreeRADIUS 3 (Debian package): a copy of /etc/freeradius/3.0 with our clients.conf and
  the `files` module's `authorize` holding the same users and reply attributes, and the
  default site's listeners moved to loopback on other (free) ports; run in the foreground.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

SESSION_TIMEOUT = 3600
RATE_LIMIT = "2M/5M"
INTERIM = 120
FREERADIUS = "/usr/sbin/freeradius"
RADDB = Path("/etc/freeradius/3.0")


def device_macs(count: int) -> list[str]:
    return [f"02:BE:{n >> 16 & 0xFF:02X}:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}:01"
            for n in range(count)]


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


def serve_hotspotd(db_path: str, secret: str, mac_password: str) -> None:
    from hotspotd.billing.access import AccessPolicy
    from hotspotd.billing.access_view import AccessView
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
        f"\tAcct-Interim-Interval = {INTERIM}\n\n" for mac in macs)
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
    return raddb


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
    process = subprocess.Popen(
        [FREERADIUS, "-f", "-d", str(raddb), "-l", "stdout"], stdout=log, stderr=subprocess.STDOUT)
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
