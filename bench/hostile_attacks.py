"""One hostile client on the venue WiFi, for bench/hostile_wifi.py: runs one attack against
a running `hotspotd run` daemon until it gets SIGTERM, then writes what it saw as JSON.

The attacker is one device: its own loopback address (`--address`), joined to the router
simulator's WiFi under `--macs` MACs (it re-joins under the next one before each purchase
when it rotates). Attacks:

- `slow_connections`: `--connections` TCP connections to the portal, each sending the
  start of a request and then one more header byte every `--trickle` seconds, never
  ending it; a connection the server closes is opened again (at most `--reconnect-rate`
  a second);
- `prompt_spam`: `--threads` loops of `POST /api/purchases` as fast as answers come, each
  to a random phone number (2547xxxxxxxx), rotating the attacker's MACs;
- `body_flood`: `--streams` loops of `POST /api/purchases` claiming `--claimed-mb` MB of
  body (Content-Length, or chunked every other time) and streaming it as fast as the
  server takes it;
- `login_flood` (bench/hostile_radius.py): RADIUS Access-Requests at `--rate` a second to
  the daemon's auth port, as the router relays a login page's attempts from this device:
  half guess voucher codes, half borrow a MAC the router lists as online.

Usage: python bench/hostile_attacks.py ATTACK --runtime runtime.json --out report.json
"""

from __future__ import annotations

import argparse
import errno
import json
import random
import select
import selectors
import signal
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from benchstats import percentile
from hostile_radius import LoginFlood

from hotspotd.simulators.phones import SimulatedPhone

ATTACKS = ("slow_connections", "prompt_spam", "body_flood", "login_flood")
REQUEST_START = b"GET / HTTP/1.1\r\nHost: portal\r\nUser-Agent: slow\r\nX-Slow: "


class Attacker:
    """The attacking device: its address, its MACs, and what it counts."""

    def __init__(self, runtime: dict[str, Any], address: str, macs: int) -> None:
        self.runtime = runtime
        self.address = address
        self.macs = [f"02:A7:7A:CC:00:{n:02X}" for n in range(macs)]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()  # HTTP status or RADIUS reply, by kind
        self.extra: dict[str, Any] = {}
        portal = urlsplit(runtime["portal_url"])
        self.portal = (portal.hostname or "127.0.0.1", portal.port or 80)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def answered(self, kind: str) -> None:
        with self.lock:
            self.answers[kind] += 1

    def join(self, mac: str) -> None:
        """(Re-)join the WiFi as `mac` at the attacker's address: the router now lists it."""
        requests.post(self.runtime["router_status_url"].rstrip("/") + "/hosts", timeout=10,
                      json={"mac": mac, "address": self.address}).raise_for_status()

    def report(self) -> dict[str, Any]:
        return {"address": self.address, "macs": len(self.macs), "counts": dict(self.counts),
                "answers": dict(self.answers), **self.extra}


# -- slow connections -------------------------------------------------------------------

class SlowConnections:
    """Hold `count` connections open, each trickling header bytes and never finishing."""

    def __init__(self, attacker: Attacker, count: int, trickle: float,
                 reconnect_rate: float) -> None:
        self.a, self.count, self.trickle = attacker, count, trickle
        self.reconnect_rate = reconnect_rate
        self.sel = selectors.DefaultSelector()
        self.since: dict[socket.socket, float] = {}  # connected sockets: when
        self.held: list[float] = []  # seconds each closed connection was held
        self.open_max = 0

    def run(self) -> None:
        tokens, last, next_trickle = float(self.count), time.monotonic(), time.monotonic()
        while not self.a.stop.is_set():
            now = time.monotonic()
            tokens = min(float(self.count), tokens + (now - last) * self.reconnect_rate)
            last = now
            while len(self.sel.get_map()) < self.count and tokens >= 1:
                tokens -= 1
                self._open()
            for key, mask in self.sel.select(timeout=0.05):
                self._event(key.fileobj, mask)  # type: ignore[arg-type]
            if now >= next_trickle:
                self._trickle()
                next_trickle = now + self.trickle
            self.open_max = max(self.open_max, len(self.since))
        open_at_end = len(self.since)
        for key in list(self.sel.get_map().values()):
            self._drop(key.fileobj)  # type: ignore[arg-type]
        self.a.extra.update(slow_report(self.held, self.open_max, open_at_end,
                                        self.trickle, self.count))

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((self.a.address, 0))
            result = sock.connect_ex(self.a.portal)
        except OSError:
            result = -1
        if result not in (0, errno.EINPROGRESS):
            self.a.count("connect_errors")
            sock.close()
            return
        self.a.count("connections_opened")
        self.sel.register(sock, selectors.EVENT_WRITE)

    def _event(self, sock: socket.socket, mask: int) -> None:
        if sock not in self.since:  # connecting
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.a.count("connect_errors")
                self._drop(sock)
                return
            self.since[sock] = time.monotonic()
            self._send(sock, REQUEST_START)
            if sock in self.since:
                self.sel.modify(sock, selectors.EVENT_READ)
            return
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if data.startswith(b"HTTP/"):
            self.a.answered(data.split(b" ", 2)[1].decode(errors="replace"))
        if not data:
            self.a.count("closed_by_server")
            self._drop(sock)

    def _send(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.send(data)
            self.a.count("bytes_trickled", len(data))
        except BlockingIOError:
            pass
        except OSError:
            self.a.count("closed_by_server")
            self._drop(sock)

    def _trickle(self) -> None:
        for sock in list(self.since):
            self._send(sock, b"a")

    def _drop(self, sock: socket.socket) -> None:
        started = self.since.pop(sock, None)
        if started is not None:
            self.held.append(time.monotonic() - started)
        self.sel.unregister(sock)
        sock.close()


def slow_report(held: list[float], open_max: int, open_at_end: int, trickle: float,
                count: int) -> dict[str, Any]:
    """`held`: how long each connection stayed open once connected (those the attacker
    closed itself at the end included)."""
    return {"connections_wanted": count, "trickle_seconds": trickle,
            "connections_open_max": open_max, "connections_open_at_end": open_at_end,
            "held_seconds": {"connections": len(held),
                             "p50": round(percentile(held, 50), 2),
                             "p99": round(percentile(held, 99), 2),
                             "max": round(max(held, default=0.0), 2)}}


# -- prompt spam ------------------------------------------------------------------------

def prompt_spam(attacker: Attacker, threads: int) -> None:
    """Purchases as fast as answers come, random numbers, the attacker's MACs in turn."""
    numbers: set[str] = set()
    retry_after: list[float] = []
    turn = iter(range(10**12))
    lock = threading.Lock()

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        phone = SimulatedPhone(attacker.macs[0], attacker.address)
        url = attacker.runtime["portal_url"] + "api/purchases"
        while not attacker.stop.is_set():
            with lock:
                n = next(turn)
            number = random_number(rng)
            try:
                if len(attacker.macs) > 1:
                    attacker.join(attacker.macs[n % len(attacker.macs)])
                response = phone.post(url, json={"plan_id": 1, "phone": number}, timeout=30)
            except requests.RequestException as exc:
                attacker.answered(f"error:{type(exc).__name__}")
                time.sleep(0.2)
                continue
            attacker.count("purchases_sent")
            attacker.answered(f"{response.status_code} {error_code(response)}".strip())
            with lock:
                numbers.add(number)
                if response.headers.get("Retry-After"):
                    retry_after.append(float(response.headers["Retry-After"]))

    run_threads(loop, threads)
    attacker.extra.update({"numbers_tried": len(numbers), "threads": threads,
                           "retry_after_seconds_max": max(retry_after, default=None)})


def random_number(rng: random.Random) -> str:
    """A stranger's M-Pesa number: not a simulator auto-answer number, not an honest one."""
    while True:
        number = f"2547{rng.randrange(10**8):08d}"
        if not number.startswith(("25470000", "2547300")):
            return number


def error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def run_threads(target: Any, count: int) -> None:
    threads = [threading.Thread(target=target, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- body flood -------------------------------------------------------------------------

def body_flood(attacker: Attacker, streams: int, claimed_mb: int) -> None:
    """`streams` loops of one huge POST body each, streamed until the server stops it."""
    sent_per_request: list[int] = []
    claimed = claimed_mb * 1024 * 1024

    def loop(n: int) -> None:
        bodies = 0
        while not attacker.stop.is_set():
            bodies += 1
            sent, answer = one_body(attacker, claimed, chunked=(bodies + n) % 2 == 1)
            attacker.count("bodies_started")
            attacker.count("bytes_written", sent)
            attacker.answered(answer)
            with attacker.lock:
                sent_per_request.append(sent)

    run_threads(loop, streams)
    attacker.extra.update({
        "streams": streams, "claimed_bytes": claimed,
        "written_bytes_per_request": {"p50": percentile(sent_per_request, 50),
                                   "max": max(sent_per_request, default=0)}})


def one_body(attacker: Attacker, claimed: int, chunked: bool) -> tuple[int, str]:
    """One POST claiming `claimed` bytes: (bytes of body written into the socket, the
    answer's status or how the connection ended). Written is not read: a server that
    refuses at the headers reads none of it; the kernel's buffers take some before the
    answer is noticed."""
    framing = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {claimed}".encode()
    head = (b"POST /api/purchases HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json"
            b"\r\n" + framing + b"\r\n\r\n")
    block = b"x" * 65536
    piece = (b"10000\r\n" + block + b"\r\n") if chunked else block
    try:
        sock = socket.create_connection(attacker.portal, timeout=5,
                                        source_address=(attacker.address, 0))
    except OSError:
        return 0, "connect_error"
    sent, ending = 0, ""
    with sock:
        try:
            sock.sendall(head)
            while sent < claimed and not attacker.stop.is_set():
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered (or closed) before the body ended
                sock.sendall(piece)
                sent += len(block)
        except TimeoutError:
            ending = "stalled"  # the server stopped reading without answering
        except OSError:
            ending = "reset"
        return sent, read_status(sock) or ending or "closed_without_answer"


def read_status(sock: socket.socket) -> str:
    try:
        sock.settimeout(2)
        data = sock.recv(4096)
    except OSError:
        return ""
    return data.split(b" ", 2)[1].decode(errors="replace") if data.startswith(b"HTTP/") else ""


# -- main -------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, Any]:
    attacker = Attacker(json.loads(Path(args.runtime).read_text()), args.address, args.macs)
    signal.signal(signal.SIGTERM, lambda *_: attacker.stop.set())
    signal.signal(signal.SIGINT, lambda *_: attacker.stop.set())
    for mac in reversed(attacker.macs):
        attacker.join(mac)  # the first MAC holds the address at the start
    deadline = threading.Timer(args.max_seconds, attacker.stop.set)
    deadline.daemon = True
    deadline.start()
    started = time.monotonic()
    if args.attack == "slow_connections":
        SlowConnections(attacker, args.connections, args.trickle, args.reconnect_rate).run()
    elif args.attack == "prompt_spam":
        prompt_spam(attacker, args.threads)
    elif args.attack == "body_flood":
        body_flood(attacker, args.streams, args.claimed_mb)
    else:
        LoginFlood(attacker, args.rate).run()
    return {"attack": args.attack, "seconds": round(time.monotonic() - started, 1),
            **attacker.report()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("attack", choices=ATTACKS)
    parser.add_argument("--runtime", required=True, help="the daemon's runtime.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--address", default="127.100.0.1")
    parser.add_argument("--macs", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--trickle", type=float, default=2.0)
    parser.add_argument("--reconnect-rate", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--claimed-mb", type=int, default=300)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args(argv)
    report = run(args)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
