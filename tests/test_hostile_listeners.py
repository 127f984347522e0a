"""A hostile client against the appliance's HTTP listener (issue 12, deliverable 6).

Real appliance (in-process, every listener on loopback), real sockets. The attacker is one
client at its own loopback address; beside it honest clients (other addresses) ask for
pages, a callback arrives, and a phone on the WiFi buys a plan and gets online. Each test
is one attack; each shows the attack fails and the honest customer is served.

The deadlines are shortened for speed (header 3 s, body 4 s, idle 6 s: distinct, so a test
knows which one closed a connection); the cap and the size limits are the defaults.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry
from support.mpesa import Online, callback_root, honest_customer_gets_online, portal
from support.phones import phone_for

from hotspotd.app import Appliance
from hotspotd.http_limits import ListenerCollector, ListenerLimits

ATTACKER = "127.200.66.1"  # outside the phones' 127.64.0.0/10 and the appliance's 127.0.0.1
BYSTANDER = "127.200.77.1"  # another client that is not a phone: a monitor, a callback
HEADER_SECONDS, BODY_SECONDS, IDLE_SECONDS = 3.0, 4.0, 6.0
DEFAULTS = ListenerLimits()
PROMPT = 1.0  # an honest request under attack is answered within this (seconds)
HONEST_PHONE = "254700000000"  # approves by itself


@pytest.fixture
def appliance_config() -> dict[str, dict[str, Any]]:
    return {"web": {"header_timeout_seconds": HEADER_SECONDS,
                    "body_timeout_seconds": BODY_SECONDS, "idle_timeout_seconds": IDLE_SECONDS}}


def counted(appliance: Appliance) -> dict[str, int]:
    return appliance.web.counters.snapshot()


# -- the attacker's sockets ------------------------------------------------------------


def connect(appliance: Appliance, source: str = ATTACKER) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect((appliance.web.host, appliance.web.port))
    return sock


class Connections:
    """The attacker's connections, and when the server closed each (monotonic time)."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self.socks = socks
        self.closed: dict[int, float] = {}  # index in socks → when the server closed it

    @classmethod
    def open(cls, appliance: Appliance, count: int) -> Connections:
        return cls([connect(appliance) for _ in range(count)])

    def still_open(self) -> list[int]:
        return [n for n in range(len(self.socks)) if n not in self.closed]

    def watch(self, seconds: float) -> None:
        """Note every connection the server closes within `seconds` (what it sent is
        read and dropped)."""
        deadline = time.monotonic() + seconds
        while self.still_open() and time.monotonic() < deadline:
            poller = select.poll()  # select() cannot watch descriptors past 1023
            by_fd = {self.socks[n].fileno(): n for n in self.still_open()}
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                if not receive_some(self.socks[by_fd[fd]]):
                    self.closed[by_fd[fd]] = time.monotonic()

    def send_each(self, data: bytes) -> None:
        for n in self.still_open():
            try:
                self.socks[n].send(data)
            except OSError:
                self.closed[n] = time.monotonic()

    def trickle(self, payload: bytes, every: float, within: float) -> None:
        """Send `payload` one byte per `every` seconds on each connection (slowloris),
        until the server has closed them all or `within` seconds passed."""
        deadline = time.monotonic() + within
        for position in range(len(payload)):
            if not self.still_open() or time.monotonic() >= deadline:
                return
            self.send_each(payload[position:position + 1])
            self.watch(every)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def receive_some(sock: socket.socket) -> bool:
    """False when the peer has closed the connection."""
    try:
        return sock.recv(65536) != b""
    except (ConnectionResetError, BrokenPipeError):
        return False


# -- honest clients --------------------------------------------------------------------


def honest_requests_are_prompt(appliance: Appliance, mac: str) -> dict[str, float]:
    """Pages from a phone, /healthz from a monitor and an M-Pesa callback: each answered,
    promptly; the seconds each took."""
    url, phone = portal(appliance), phone_for(appliance, mac)
    monitor = requests.Session()
    monitor.mount("http://", _SourceAdapter(BYSTANDER))
    calls = {
        "GET /": lambda: phone.get(url, timeout=5),
        "GET /api/plans": lambda: phone.get(url + "api/plans", timeout=5),
        "GET /healthz": lambda: monitor.get(url + "healthz", timeout=5),
        "POST callback": lambda: monitor.post(callback_root(appliance) + "/stk", timeout=5,
                                              json={"Body": {}}),
    }
    took = {}
    for name, call in calls.items():
        started = time.monotonic()
        answer = call()
        took[name] = time.monotonic() - started
        assert answer.status_code == 200, (name, answer.status_code)
        assert took[name] < PROMPT, (name, took[name])
    monitor.close()
    return took


class _SourceAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._source = (address, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **options: Any) -> None:
        options["source_address"] = self._source
        super().init_poolmanager(*args, **options)


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {reason: after[reason] - before[reason] for reason in after}


def report(attack: str, **figures: Any) -> None:
    """The figures a run measured (pytest -s shows them; the README quotes them)."""
    shown = ", ".join(f"{name} {value:.2f}" if isinstance(value, float) else f"{name} {value}"
                      for name, value in figures.items())
    print(f"\n[{attack}] {shown}")


# -- the attacks -----------------------------------------------------------------------


def test_hundreds_of_idle_connections_from_one_client_leave_the_portal_answering(
        appliance: Appliance) -> None:
    cap, before = DEFAULTS.connections_per_client, counted(appliance)
    attack = Connections.open(appliance, 600)  # more than the listener's 500 in all
    for sock in attack.socks[::2]:  # half send nothing, half half a header
        with contextlib.suppress(OSError):  # closed already: over the cap
            sock.send(b"GET / HTTP/1.1\r\nHost: portal\r\nUser-Ag")
    attack.watch(1.0)
    assert len(attack.still_open()) == cap  # the first 20; the other 580 closed at once
    assert delta(before, counted(appliance))["over_client_cap"] == 600 - cap

    def keep_trying() -> tuple[int, int]:  # and the attacker keeps opening more
        more = Connections([connect(appliance) for _ in range(300)])
        more.watch(1.0)
        more.close()
        return len(more.socks), len(more.still_open())

    seconds_to_online, took, (tried, kept) = during(appliance, "AA:BB:CC:66:00:01",
                                                    keep_trying)
    attack.watch(0)
    assert kept <= cap - len(attack.still_open())  # only in place of those cut meanwhile
    attack.close()
    report("idle connections", attempted=600 + tried, refused=600 - cap + tried - kept,
           held=cap, slowest_honest=max(took.values()), paid_to_online=seconds_to_online)


def during(appliance: Appliance, mac: str, attack: Any) -> tuple[float, dict[str, float], Any]:
    """Run `attack()` while an honest phone buys and honest requests are made: the
    customer's seconds to online, the honest requests' times and what `attack()` returned."""
    with ThreadPoolExecutor(2) as pool:
        online: Future[Online] = pool.submit(honest_customer_gets_online, appliance, mac)
        attacking = pool.submit(attack)
        time.sleep(0.5)  # the attack is under way
        took = honest_requests_are_prompt(appliance, mac)
        result = attacking.result(timeout=60)
        return online.result(timeout=60).online, took, result


def test_slowloris_headers_are_cut_off(appliance: Appliance) -> None:
    cap, before = DEFAULTS.connections_per_client, counted(appliance)
    attack = Connections.open(appliance, cap)
    first_byte = time.monotonic()
    payload = b"GET / HTTP/1.1\r\nHost: portal\r\nX-Slow: " + b"a" * 400
    seconds_to_online, took, _ = during(appliance, "AA:BB:CC:66:00:03", lambda: attack.trickle(
        payload, every=0.25, within=HEADER_SECONDS + 5))
    lived = sorted(at - first_byte for at in attack.closed.values())
    assert len(lived) == cap, "every trickling connection is closed"
    assert HEADER_SECONDS - 0.1 <= lived[0] <= lived[-1] <= HEADER_SECONDS + 2, lived
    assert delta(before, counted(appliance))["header_deadline"] == cap
    attack.close()
    report("slowloris headers", deadline=HEADER_SECONDS, cut_after_min=lived[0],
           cut_after_max=lived[-1], bytes_each=int(lived[-1] / 0.25) + 1,
           slowest_honest=max(took.values()), paid_to_online=seconds_to_online)


def test_slowloris_body_is_cut_off(appliance: Appliance) -> None:
    cap, before = DEFAULTS.connections_per_client, counted(appliance)
    attack = Connections.open(appliance, cap)
    attack.send_each(b"POST /api/purchases HTTP/1.1\r\nHost: portal\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n")
    headers_sent = time.monotonic()
    seconds_to_online, took, _ = during(appliance, "AA:BB:CC:66:00:04", lambda: attack.trickle(
        b'{"plan_id": 1, "phone": "' + b"7" * 1900, every=0.25, within=BODY_SECONDS + 5))
    lived = sorted(at - headers_sent for at in attack.closed.values())
    assert len(lived) == cap, "every trickling connection is closed"
    assert BODY_SECONDS - 0.1 <= lived[0] <= lived[-1] <= BODY_SECONDS + 2, lived
    assert delta(before, counted(appliance))["body_deadline"] == cap
    attack.close()
    report("slowloris body", deadline=BODY_SECONDS, cut_after_min=lived[0],
           cut_after_max=lived[-1], slowest_honest=max(took.values()),
           paid_to_online=seconds_to_online)


def test_silent_and_kept_alive_connections_are_closed_when_idle(appliance: Appliance) -> None:
    half, before = DEFAULTS.connections_per_client // 2, counted(appliance)
    attack = Connections.open(appliance, 2 * half)
    quiet_since = [time.monotonic()] * half  # these never say a word
    for sock in attack.socks[half:]:  # these ask once, keep the connection and say no more
        sock.sendall(b"GET /healthz?live HTTP/1.1\r\nHost: portal\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 ")
        quiet_since.append(time.monotonic())
    seconds_to_online, took, _ = during(appliance, "AA:BB:CC:66:00:05",
                                     lambda: attack.watch(IDLE_SECONDS + 5))
    lived = sorted(at - quiet_since[n] for n, at in attack.closed.items())
    assert len(lived) == 2 * half
    assert IDLE_SECONDS - 0.1 <= lived[0] <= lived[-1] <= IDLE_SECONDS + 2, lived
    assert delta(before, counted(appliance))["idle"] >= 2 * half
    attack.close()
    report("idle", deadline=IDLE_SECONDS, cut_after_min=lived[0], cut_after_max=lived[-1],
           slowest_honest=max(took.values()), paid_to_online=seconds_to_online)


HUGE = 500_000_000
BLOCK = b"x" * 65536
POST_HEAD = (b"POST /api/purchases HTTP/1.1\r\nHost: portal\r\n"
             b"Content-Type: application/json\r\n")
FLOODS = {  # name → (request head, what is sent again and again, wait for 100 Continue)
    "content-length": (POST_HEAD + b"Content-Length: %d\r\n\r\n" % HUGE, BLOCK, False),
    "expect-continue": (POST_HEAD + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                        % HUGE, BLOCK, True),
    "chunked": (POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n",
                b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n", False),
}


def flood(appliance: Appliance, name: str) -> tuple[bytes, float, int]:
    """One 500 MB upload, streamed as fast as the server takes it: the first line the
    server answered, seconds from the request head to that line, and the bytes the client
    got to send after the head before the server answered or cut the connection."""
    head, block, wait_for_continue = FLOODS[name]
    sock = connect(appliance)
    sock.sendall(head)
    sock.setblocking(False)
    started, sent, answer, sending = time.monotonic(), 0, b"", not wait_for_continue
    while b"\r\n" not in answer and time.monotonic() - started < 10 and sent < HUGE:
        poller = select.poll()
        poller.register(sock, select.POLLIN | (select.POLLOUT if sending else 0))
        events = dict(poller.poll(1000)).get(sock.fileno(), 0)
        if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
        if sending and events & select.POLLOUT:
            try:
                sent += sock.send(block)
            except (BrokenPipeError, ConnectionResetError):
                sending = False  # cut off: read what the server said
    sock.close()
    return answer.split(b"\r\n", 1)[0], time.monotonic() - started, sent


def test_huge_body_is_refused_while_reading(appliance: Appliance) -> None:
    before, rss_before = counted(appliance), rss_bytes()
    names = [name for name in FLOODS for _ in range(5)]  # 15 uploads at once, under the cap

    def attack() -> list[tuple[bytes, float, int]]:
        with ThreadPoolExecutor(len(names)) as pool:
            return list(pool.map(lambda name: flood(appliance, name), names))

    seconds_to_online, took, results = during(appliance, "AA:BB:CC:66:00:06", attack)
    rss_growth = rss_bytes() - rss_before
    for name, (line, seconds, sent) in zip(names, results, strict=True):
        assert line == b"HTTP/1.1 413 Request Entity Too Large", (name, line)
        assert seconds < PROMPT, (name, seconds)
        assert sent < 16 * 2**20, (name, sent)  # the rest of the 500 MB was never taken
    assert delta(before, counted(appliance))["body_too_large"] == len(names)
    assert rss_growth < 32 * 2**20, rss_growth
    slowest = {name: max(r[1] for n, r in zip(names, results, strict=True) if n == name)
               for name in FLOODS}
    most_sent = {name: max(r[2] for n, r in zip(names, results, strict=True) if n == name)
                 for name in FLOODS}
    report("huge body", uploads=len(names), **{f"413_after_{k}": v for k, v in slowest.items()},
           **{f"sent_before_cut_{k}": v for k, v in most_sent.items()},
           rss_growth_mb=rss_growth / 2**20, slowest_honest=max(took.values()),
           paid_to_online=seconds_to_online)


def test_huge_headers_are_refused(appliance: Appliance) -> None:
    before = counted(appliance)
    line = b"X-Junk: " + b"a" * 1000 + b"\r\n"

    def attack() -> list[bytes]:
        answers = []
        for _ in range(DEFAULTS.connections_per_client):
            sock = connect(appliance)
            with contextlib.suppress(OSError):  # cut off while still sending: fine
                sock.sendall(b"GET / HTTP/1.1\r\nHost: portal\r\n" + line * 64 + b"\r\n")
            answers.append(sock.recv(65536).split(b"\r\n", 1)[0])
            sock.close()
        return answers

    seconds_to_online, took, answers = during(appliance, "AA:BB:CC:66:00:07", attack)
    # waitress answers as HTTP/1.0: it never parsed the request line
    assert set(answers) == {b"HTTP/1.0 431 Request Header Fields Too Large"}, answers
    assert delta(before, counted(appliance))["header_too_large"] == len(answers)
    cookie = {"Cookie": "c=" + "b" * (DEFAULTS.max_header_bytes // 2)}  # big, but allowed
    assert phone_for(appliance, "AA:BB:CC:66:00:07").get(
        portal(appliance) + "api/plans", headers=cookie, timeout=5).status_code == 200
    report("huge headers", refused=len(answers), limit=DEFAULTS.max_header_bytes,
           slowest_honest=max(took.values()), paid_to_online=seconds_to_online)


def test_what_the_limits_refused_is_in_the_metrics(appliance: Appliance) -> None:
    registry = CollectorRegistry()
    registry.register(ListenerCollector(lambda: [appliance.web]))
    before = registry.get_sample_value("hotspotd_http_limited_total",
                                       {"listener": "web", "reason": "over_client_cap"})
    attack = Connections.open(appliance, DEFAULTS.connections_per_client + 5)
    attack.watch(1.0)
    after = registry.get_sample_value("hotspotd_http_limited_total",
                                      {"listener": "web", "reason": "over_client_cap"})
    assert after == (before or 0) + 5
    assert registry.get_sample_value("hotspotd_http_open_connections",
                                     {"listener": "web"}) >= DEFAULTS.connections_per_client
    attack.close()
