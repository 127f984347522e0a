"""FreeRADIUS 3 (Debian package) as a proxy in front of the appliance, for the peer tests.

`freeradius_proxy(auth_port=..., acct_port=..., secret=...)` copies the Debian
configuration, replaces its virtual servers with one that sends every Access-Request and
Accounting-Request to realm DEFAULT, whose pools hold one home server each: the
appliance's authentication and accounting ports on 127.0.0.1. The NAS side (radclient on
127.0.0.1) is one client with `require_message_authenticator = yes` and a secret of its
own (`FRONT_SECRET`), so the proxy must re-sign every packet with the appliance's secret;
the home servers are configured with `require_message_authenticator = yes` as well.
FreeRADIUS listens on a free pair of loopback ports (`auth_port`, `auth_port + 1`) and runs
in the foreground, as the `freerad` user when the tests run as root.

Skipped when FreeRADIUS is missing, unless HOTSPOTD_REQUIRE_FREERADIUS=1 (CI) makes that
a failure.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

FREERADIUS = "/usr/sbin/freeradius"
RADDB = Path("/etc/freeradius/3.0")
SERVICE_USER = "freerad"
REQUIRE_ENV = "HOTSPOTD_REQUIRE_FREERADIUS"
FRONT_SECRET = "front-of-proxy-secret"


class RunningProxy(NamedTuple):
    auth_port: int
    acct_port: int
    log: Path


def freeradius_path() -> str:
    """FreeRADIUS's path, or skip (fail when HOTSPOTD_REQUIRE_FREERADIUS=1)."""
    if Path(FREERADIUS).exists() and RADDB.is_dir():
        return FREERADIUS
    reason = "FreeRADIUS 3 not installed (apt-get install freeradius)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
    pytest.skip(reason)


SITE = """server hotspotd_proxy {{
\tlisten {{
\t\ttype = auth
\t\tipaddr = 127.0.0.1
\t\tport = {auth}
\t}}
\tlisten {{
\t\ttype = acct
\t\tipaddr = 127.0.0.1
\t\tport = {acct}
\t}}
\tauthorize {{
\t\tupdate control {{
\t\t\t&Proxy-To-Realm := "DEFAULT"
\t\t}}
\t}}
\tauthenticate {{
\t}}
\tpreacct {{
\t\tupdate control {{
\t\t\t&Proxy-To-Realm := "DEFAULT"
\t\t}}
\t}}
\taccounting {{
\t}}
\tpost-proxy {{
\t}}
}}
"""

PROXY = """proxy server {{
\tdefault_fallback = no
}}
home_server appliance_auth {{
\ttype = auth
\tipaddr = 127.0.0.1
\tport = {auth}
\tsecret = {secret}
\tresponse_window = 5
\tstatus_check = none
\trequire_message_authenticator = yes
}}
home_server appliance_acct {{
\ttype = acct
\tipaddr = 127.0.0.1
\tport = {acct}
\tsecret = {secret}
\tresponse_window = 5
\tstatus_check = none
\trequire_message_authenticator = yes
}}
home_server_pool appliance_auth_pool {{
\ttype = fail-over
\thome_server = appliance_auth
}}
home_server_pool appliance_acct_pool {{
\ttype = fail-over
\thome_server = appliance_acct
}}
realm DEFAULT {{
\tauth_pool = appliance_auth_pool
\tacct_pool = appliance_acct_pool
\tnostrip
}}
"""

CLIENTS = """client radclient {{
\tipaddr = 127.0.0.1
\tsecret = {secret}
\trequire_message_authenticator = yes
}}
"""


def write_config(directory: Path, *, listen_port: int, auth_port: int, acct_port: int,
                 secret: str) -> Path:
    """A copy of the Debian configuration, proxying everything to the appliance."""
    raddb = directory / "raddb"
    shutil.copytree(RADDB, raddb, symlinks=True)
    for site in (raddb / "sites-enabled").iterdir():
        site.unlink()
    (raddb / "mods-enabled" / "eap").unlink()  # wants an Auth-Type EAP our site has not
    (raddb / "sites-enabled" / "hotspotd_proxy").write_text(
        SITE.format(auth=listen_port, acct=listen_port + 1))
    (raddb / "proxy.conf").write_text(PROXY.format(auth=auth_port, acct=acct_port,
                                                   secret=secret))
    (raddb / "clients.conf").write_text(CLIENTS.format(secret=FRONT_SECRET))
    config = raddb / "radiusd.conf"  # the copy is private: stay the user that starts it
    config.write_text(re.sub(r"(?m)^(\s*)(user|group) = .*$", r"\1# \2 (tests: unchanged)",
                             config.read_text()))
    if os.geteuid() == 0:
        directory.chmod(0o711)
        user = pwd.getpwnam(SERVICE_USER)
        for path in [raddb, *raddb.rglob("*")]:
            os.lchown(path, user.pw_uid, user.pw_gid)
    return raddb


def free_udp_pair() -> int:
    """A port P with P and P + 1 free for UDP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of UDP ports")


@contextmanager
def freeradius_proxy(*, auth_port: int, acct_port: int, secret: str) -> Iterator[RunningProxy]:
    """FreeRADIUS proxying to the appliance's ports; stopped (and its files removed) on exit.

    Its files live in a directory of their own under the system's temporary directory
    (pytest's is private to the invoking user, and FreeRADIUS runs as `freerad`)."""
    binary = freeradius_path()
    directory = Path(tempfile.mkdtemp(prefix="hotspotd-freeradius-"))
    try:
        port = free_udp_pair()
        raddb = write_config(directory, listen_port=port, auth_port=auth_port,
                             acct_port=acct_port, secret=secret)
        log_path = directory / "freeradius.log"
        with _running(binary, raddb, log_path):
            yield RunningProxy(port, port + 1, log_path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _running(binary: str, raddb: Path, log_path: Path) -> Iterator[None]:
    command = [binary, "-f", "-X", "-d", str(raddb), "-l", "stdout"]
    if os.geteuid() == 0:  # never as root: as the Debian package's service user
        command = ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}",
                   "--init-groups", *command]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, log_path)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"FreeRADIUS exited {process.returncode}:\n"
                               f"{log_path.read_text(errors='replace')[-3000:]}")
        if b"Ready to process requests" in log_path.read_bytes():
            return
        time.sleep(0.1)
    raise RuntimeError(f"FreeRADIUS did not start within 30 s: see {log_path}")
