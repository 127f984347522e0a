"""What a bench needs to time a daemon's start as systemd sees it: a notify socket
(`NOTIFY_SOCKET`, sd_notify's datagrams, each timed on arrival) and a poll of the first
answer of a URL. Used by bench/start_stop.py."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


class NotifySocket:
    """systemd's side of sd_notify: an AF_UNIX datagram socket, each message timed."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify"
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.arrived = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self.arrived:
                self.messages.append((time.monotonic(), data.decode()))
                self.arrived.notify_all()

    def clear(self) -> None:
        with self.arrived:
            self.messages.clear()

    def wait_for(self, line: str, timeout: float) -> float | None:
        """When the first message holding `line` arrived (monotonic), or None."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for at, message in self.messages:
                    if line in message.splitlines():
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_live_answer(url: str, process: subprocess.Popen[bytes], timeout: float) -> float:
    """Poll `url` every 10 ms until it answers 200; when it did (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} gave no 200 within {timeout:g} s")
