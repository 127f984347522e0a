"""The systemd notify protocol (sd_notify(3)), without libsystemd.

systemd passes `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace) to a
`Type=notify` service; the service sends datagrams such as `READY=1`, `WATCHDOG=1`,
`STOPPING=1` or `STATUS=...`. With `WatchdogSec=` it also passes `WATCHDOG_USEC` (and
`WATCHDOG_PID`): the service must send `WATCHDOG=1` more often than that, or be restarted.
Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op, so `hotspotd run` behaves the
same in a terminal.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends notify messages to the socket systemd gave us, if any."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        """Send one message (`FIELD=value` lines); False if there is no socket or it failed."""
        if self._sock is None or self.address is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:  # systemd gone or the socket full: never kill the daemon
            log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Watchdog:
    """Pings systemd's watchdog from the main loop, but only while the daemon is healthy.

    `tick()` is called every second or so by the main loop; it sends `WATCHDOG=1` at half
    the interval systemd asked for, and only if `alive()` reports no problem, so a daemon
    whose RADIUS thread died (or whose database stopped answering) is restarted by systemd
    instead of lingering half-dead.
    """

    def __init__(self, notifier: SystemdNotifier, alive: Callable[[], list[str]],
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.alive = alive
        self.clock = clock
        interval = notifier.watchdog_interval
        self.period = interval / 2 if interval else None
        self._last_ping = float("-inf")
        self._last_problems: list[str] = []

    def tick(self) -> None:
        if self.period is None or self.clock() - self._last_ping < self.period:
            return
        problems = self.alive()
        if problems:
            if problems != self._last_problems:
                log.error("watchdog withheld, not healthy: %s", "; ".join(problems))
                self.notifier.status("unhealthy: " + "; ".join(problems))
            self._last_problems = list(problems)
            return
        if self._last_problems:
            self.notifier.status("running")
            self._last_problems = []
        self.notifier.watchdog()
        self._last_ping = self.clock()


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]  # the abstract namespace
    if value.startswith("/"):
        return value
    log.warning("ignoring NOTIFY_SOCKET=%r: not a path or @name", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between required pings, if a watchdog is set for this very process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000
