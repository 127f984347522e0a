"""The README's "Install on Debian 12 / Raspberry Pi OS" steps, run for real in a clean
venv: `/opt/hotspotd`, `/etc/hotspotd` and `/var/lib/hotspotd` become temporary
directories, `apt-get`, `useradd` and `systemctl` are skipped (no real systemd here), the
wheel stands for `pip install hotspotd`. Then the installed unit passes
`systemd-analyze verify`, and the installed daemon runs as a notify service: READY=1, a
watchdog ping, a clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = ("apt-get", "useradd", "systemctl")


def readme_steps() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- install-steps -->\n```sh\n(.*?)\n```", readme, re.S)
    assert match, "README has no install-steps block"
    return match.group(1).splitlines()


def localise(step: str, root: Path, wheel: Path) -> str | None:
    """The step as it runs here, or None if it needs a real Debian with systemd."""
    if any(word in step.split() for word in SKIPPED) or "apt-get" in step:
        return None
    step = re.sub(r"^sudo (-u \S+ )?", "", step)
    for real, here in (("/opt/hotspotd", root / "opt"), ("/etc/hotspotd", root / "etc"),
                       ("/var/lib/hotspotd", root / "var"),
                       ("/etc/systemd/system", root / "systemd")):
        step = step.replace(real, str(here))
    step = step.replace("pip install hotspotd", f"pip install -q {wheel}")
    step = step.replace("python3 -m venv", f"{sys.executable} -m venv")
    me = pwd.getpwuid(os.getuid()).pw_name
    step = step.replace("--user hotspotd", f"--user {me}")
    if " init " in step:  # no Safaricom account and no router in CI
        step += " --daraja simulator --router simulator"
    return step


# Module scope, on purpose: building the wheel and running the README's install steps takes
# seconds. The tests read what the steps left behind (files, modes, the unit); one runs the
# installed daemon on it, which changes none of what the others read.
@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("install")
    out = root / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    wheel = next(out.glob("hotspotd-*.whl"))
    (root / "systemd").mkdir()
    env = {**os.environ, "HOTSPOTD_OWNER_PASSWORD": "installer passphrase 1"}
    env = {k: v for k, v in env.items() if not k.startswith("HOTSPOTD_") or k.endswith(
        "OWNER_PASSWORD")}
    ran = []
    for step in readme_steps():
        command = localise(step, root, wheel)
        if command is None:
            continue
        done = subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=300)
        ran.append((command, done))
        if " check " not in command:
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr[-3000:]}"
    (root / "ran.txt").write_text("\n".join(f"{c}\n{d.stdout}" for c, d in ran))
    (root / "check.txt").write_text(next(d.stdout for c, d in ran if " check " in c))
    return root


def test_steps_create_the_files_with_their_modes(installed: Path) -> None:
    etc, var = installed / "etc", installed / "var"
    assert (installed / "opt" / "bin" / "hotspotd").exists()
    assert oct((etc / "hotspotd.toml").stat().st_mode & 0o777) == oct(0o640)
    assert (etc / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (var / "hotspotd.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (installed / "systemd" / "hotspotd.service").exists()
    assert (installed / "opt" / "share" / "hotspotd" / "hotspotd.sysusers").exists()
    ran = (installed / "ran.txt").read_text()
    assert "owner account: 'owner' created" in ran
    check = (installed / "check.txt").read_text()
    for name in ("config", "key file", "database", "daraja", "router", "radius ports", "coa",
                 "clock"):
        assert f" {name}: " in check
    assert "OK   database:" in check and "OK   config:" in check


def test_unit_passes_systemd_analyze_verify(installed: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    unit = installed / "systemd" / "hotspotd.service"
    text = unit.read_text()
    assert f"ExecStart={installed / 'opt' / 'bin' / 'hotspotd'} run" not in text  # as shipped
    # The shipped unit names /opt/hotspotd; point it at this install so verify finds it.
    here = installed / "verify" / "hotspotd.service"
    here.parent.mkdir(exist_ok=True)
    here.write_text(text.replace("/opt/hotspotd", str(installed / "opt")))
    done = subprocess.run(["systemd-analyze", "verify", str(here)], capture_output=True,
                          text=True, timeout=60)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "hotspotd" in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr
    for wanted in ("Type=notify", "WatchdogSec=", "User=hotspotd", "StateDirectory=hotspotd",
                   "ConfigurationDirectory=hotspotd", "ProtectSystem=strict",
                   "NoNewPrivileges=yes", "PrivateTmp=yes",
                   "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "Restart=on-failure"):
        assert wanted in text


def test_installed_daemon_runs_as_a_notify_service(installed: Path) -> None:
    notify_dir = Path(tempfile.mkdtemp(prefix="hsi-", dir="/tmp"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_dir / "notify"))
    sock.settimeout(30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSPOTD_")}
    env.update(NOTIFY_SOCKET=str(notify_dir / "notify"), WATCHDOG_USEC="2000000",
               HOTSPOTD_WEB_HOST="127.0.0.1", HOTSPOTD_WEB_PORT="0",
               HOTSPOTD_RADIUS_HOST="127.0.0.1", HOTSPOTD_RADIUS_AUTH_PORT="0",
               HOTSPOTD_RADIUS_ACCT_PORT="0")
    process = subprocess.Popen(
        [str(installed / "opt" / "bin" / "hotspotd"), "run", "--config",
         str(installed / "etc" / "hotspotd.toml")], env=env, cwd=notify_dir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        received = []
        while "WATCHDOG=1" not in received:
            received += sock.recv(4096).decode().splitlines()
        assert received[0] == "READY=1"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert time.monotonic() - started < 20
        after: list[str] = []  # a WATCHDOG=1 sent just before SIGTERM may come first
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                after += sock.recv(4096).decode().splitlines()
        assert "STOPPING=1" in after, after
    finally:
        if process.poll() is None:
            process.kill()
        sock.close()
        shutil.rmtree(notify_dir, ignore_errors=True)
    log = process.stdout.read().decode() if process.stdout else ""
    assert "hotspotd stopped" in log
    secret = (installed / "etc" / "secrets" / "radius_secret").read_text().strip()
    assert secret not in log
