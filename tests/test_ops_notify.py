"""systemd notify protocol: READY=1 once every listener is up, WATCHDOG=1 while healthy,
STOPPING=1 and a clean exit on SIGTERM. Tested against a fake NOTIFY_SOCKET we bind."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import Daemon

from hotspotd.ops.notify import SystemdNotifier, Watchdog


class FakeSystemd:
    """An AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"hotspotd-test-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="hsn-", dir="/tmp")
            self.address = str(Path(self.dir) / "notify")
            self.sock.bind(self.address)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def receive_until(self, wanted: str, timeout: float = 20.0) -> list[str]:
        """Collect messages until one contains the `wanted` line; return them all."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append(message)
            if wanted in message.splitlines():
                return self.messages
        raise AssertionError(f"no {wanted!r} within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_systemd() -> Iterator[FakeSystemd]:
    fake = FakeSystemd()
    yield fake
    fake.close()


def test_notifier_without_socket_is_a_no_op() -> None:
    notifier = SystemdNotifier(env={})
    assert not notifier.enabled and notifier.ready() is False and notifier.watchdog() is False


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_datagrams(abstract: bool) -> None:
    fake = FakeSystemd(abstract=abstract)
    try:
        notifier = SystemdNotifier(env={"NOTIFY_SOCKET": fake.address})
        assert notifier.ready("serving")
        assert fake.receive_until("READY=1") == ["READY=1\nSTATUS=serving"]
        notifier.close()
    finally:
        fake.close()


def test_watchdog_interval_and_pid() -> None:
    import os

    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "4000000"}
    assert SystemdNotifier(env=env).watchdog_interval == 4.0
    other = {**env, "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SystemdNotifier(env=other).watchdog_interval is None


def test_watchdog_withheld_while_unhealthy(fake_systemd: FakeSystemd) -> None:
    clock = [0.0]
    problems: list[str] = []
    notifier = SystemdNotifier(env={"NOTIFY_SOCKET": fake_systemd.address,
                                    "WATCHDOG_USEC": "2000000"})
    watchdog = Watchdog(notifier, lambda: problems, clock=lambda: clock[0])
    watchdog.tick()
    assert fake_systemd.receive_until("WATCHDOG=1") == ["WATCHDOG=1"]
    clock[0] = 0.5
    watchdog.tick()  # too early: nothing sent
    problems.append("radius: the RADIUS server thread has stopped")
    clock[0] = 5.0
    watchdog.tick()
    assert "unhealthy" in fake_systemd.receive_until(
        "STATUS=unhealthy: radius: the RADIUS server thread has stopped")[-1]
    problems.clear()
    clock[0] = 6.0
    watchdog.tick()
    assert fake_systemd.receive_until("WATCHDOG=1")[-2:] == ["STATUS=running", "WATCHDOG=1"]
    notifier.close()


def test_real_daemon_notifies_ready_watchdog_and_stops_cleanly(
        tmp_path: Path, fake_systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": fake_systemd.address, "WATCHDOG_USEC": "2000000"}
    with Daemon(tmp_path) as daemon:
        daemon.launch(env=env)
        ready = fake_systemd.receive_until("READY=1")
        # READY=1 comes only when every listener is up: the portal answers right away.
        daemon.wait_ready(5)
        assert daemon.get("/healthz").json()["ready"] is True
        assert any("STATUS=serving http://127.0.0.1:" in m for m in ready)
        fake_systemd.receive_until("WATCHDOG=1")
        fake_systemd.messages.clear()
        fake_systemd.receive_until("WATCHDOG=1")  # and again: it keeps pinging
        assert daemon.stop() == 0
        fake_systemd.receive_until("STOPPING=1", timeout=5)
        log = daemon.log_text()
        secrets = daemon.generated_secrets()
    assert "hotspotd stopped" in log
    assert not Path(str(daemon.database_path) + "-wal").exists(), "database not closed"
    for name, value in secrets.items():
        assert value not in log, f"{name} leaked into the log"
    assert all("\n" not in line for line in log.splitlines())
