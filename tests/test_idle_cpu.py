"""The daemon sleeps when idle (issue 13): CPU time over an idle stretch, counted, not timed.

`hotspotd run` as the router meets it (production backends, `daraja` and `routeros`, pointed
at simulators in this test's process, so only the daemon's own threads are counted) and
`hotspotd demo` (the daemon and both simulators in one process). CPU seconds come from
/proc/<pid>/stat (utime + stime of every thread): a count of work done, which a busy
machine slows down but does not inflate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import Daemon
from support.wait import wait_until

from hotspotd.secretbox import create_key_file
from hotspotd.simulators.daraja import DarajaSimulator
from hotspotd.simulators.mikrotik import MikrotikSimulator

SETTLE_SECONDS = 3.0  # start-up work (first reconcile, Pull, backups) done
IDLE_SECONDS = 10.0
RUN_SHARE = 0.01  # `hotspotd run`: at most 1 % of a core
DEMO_SHARE = 0.03  # `hotspotd demo` (with both simulators): at most 3 %


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(pid: int) -> float:
    """The share of one core the process uses over IDLE_SECONDS of nothing to do."""
    time.sleep(SETTLE_SECONDS)
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_SECONDS)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


@pytest.fixture
def peers() -> Iterator[tuple[DarajaSimulator, MikrotikSimulator]]:
    daraja = DarajaSimulator(consumer_key="idle-ck", consumer_secret="idle-cs",
                             passkey="idle-pk", approve_delay=0.5)
    daraja.start("127.0.0.1", 0)
    router = MikrotikSimulator(api_user="hotspotd", api_password="idle-router-pw",
                               radius_host="127.0.0.1", radius_auth_port=9, radius_acct_port=9,
                               radius_secret="idle-radius-secret")
    router.start("127.0.0.1", 0)
    try:
        yield daraja, router
    finally:
        router.stop()
        daraja.stop()


def test_hotspotd_run_with_production_backends_sleeps_when_idle(
        tmp_path: Path, peers: tuple[DarajaSimulator, MikrotikSimulator]) -> None:
    daraja, router = peers
    create_key_file(tmp_path / "secret.key")
    host, port = router.api_address
    config = {
        "security": {"key_file": str(tmp_path / "secret.key")},
        "daraja": {"backend": "daraja", "base_url": daraja.url, "consumer_key": "idle-ck",
                   "consumer_secret": "idle-cs", "passkey": "idle-pk",
                   "requests_per_minute": 100},
        "radius": {"secret": "idle-radius-secret", "mac_password": "idle-mac-pw"},
        "router": {"backend": "routeros", "host": host, "api_port": port,
                   "password": "idle-router-pw"},
        "settlement": {"reconcile_interval_seconds": 15},  # the shipped default
        "backup": {"enabled": False},
    }
    with Daemon(tmp_path / "daemon", config) as daemon:
        daemon.start()
        radius = daemon.runtime["radius"]
        router.set_radius("127.0.0.1", radius["auth_port"], radius["acct_port"])
        share = idle_share(daemon.pid)
        assert daemon.running
    assert share <= RUN_SHARE, f"idle `hotspotd run` used {share:.2%} of a core"


def test_hotspotd_demo_sleeps_when_idle(tmp_path: Path) -> None:
    log = open(tmp_path / "demo.log", "wb")  # noqa: SIM115 - closed below
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("HOTSPOTD_")}
    demo = subprocess.Popen([sys.executable, "-m", "hotspotd.cli", "demo", "--data-dir",
                             str(tmp_path / "demo")], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    try:
        info = wait_until(lambda: (tmp_path / "demo" / "demo.json").exists() and json.loads(
            (tmp_path / "demo" / "demo.json").read_text()), timeout=30, message="demo.json")
        assert info["portal_url"]
        share = idle_share(demo.pid)
        assert demo.poll() is None
    finally:
        demo.terminate()
        demo.wait(30)
        log.close()
    assert share <= DEMO_SHARE, f"idle `hotspotd demo` used {share:.2%} of a core"
