"""The venue's evening for bench/busy_venue.py: the router's RADIUS traffic and the phones.

RADIUS runs as its own process (`python bench/venue_load.py radius SPEC OUT`), so its
send -> answer times are not those of a Python process busy with a hundred phones: it sends
MAC logins (Access-Request, PAP with the MAC password, Message-Authenticator, User-Name ==
Calling-Station-Id) at `login_rate` per second, half of them for devices with time and half
for devices without (rejected), and one Interim-Update per online session every
`interim_seconds`, spread evenly, with the attributes RouterOS sends (the MikroTik
simulator's NAS). No retransmission: a request without an answer within 5 s is lost.
SIGTERM stops it; it then waits for the last answers and writes OUT (JSON).

The phones (`Buyer`, `Browsing`) run in the bench's process beside the simulators.
"""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from pyrad import packet as rp

from hotspotd.radius.dictionary import load_dictionary
from hotspotd.simulators.phones import SimulatedPhone

ANSWER_TIMEOUT = 5.0
NAS_FIELDS = {"Called-Station-Id": "hotspot1", "NAS-Identifier": "hotspotd-sim",
              "NAS-Port-Id": "bridge", "NAS-Port-Type": "Wireless-802.11",
              "Service-Type": "Login-User"}


# -- RADIUS, the router's side ---------------------------------------------------------------

class Exchange:
    """One UDP socket to one server port: send, and a thread timing the answers by id."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.waiting: dict[int, float] = {}
        self.latencies: list[float] = []
        self.codes: dict[int, int] = {}
        self.sent = self.lost = 0
        self.next_id = 0
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def take_id(self) -> int:
        with self.lock:
            for _ in range(256):
                ident, self.next_id = self.next_id, (self.next_id + 1) % 256
                started = self.waiting.get(ident)
                if started is None:
                    return ident
                if time.perf_counter() - started > ANSWER_TIMEOUT:
                    del self.waiting[ident]
                    self.lost += 1
                    return ident
        raise RuntimeError("256 requests waiting for an answer")

    def send(self, ident: int, data: bytes) -> None:
        with self.lock:
            self.waiting[ident] = time.perf_counter()
            self.sent += 1
        self.sock.sendto(data, self.server)

    def _receive(self) -> None:
        while not self.closing.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            answered = time.perf_counter()
            with self.lock:
                started = self.waiting.pop(data[1], None)
                if started is not None:
                    self.latencies.append(answered - started)
                    self.codes[data[0]] = self.codes.get(data[0], 0) + 1

    def close(self) -> dict[str, Any]:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while self.waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        self.closing.set()
        self.thread.join(2)
        self.sock.close()
        return {"sent": self.sent, "answered": len(self.latencies),
                "lost": self.lost + len(self.waiting), "codes": self.codes,
                "latencies": self.latencies}


class RouterRadius:
    """The router's RADIUS traffic at a busy venue (see the module docstring)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.secret = spec["secret"].encode()
        self.dictionary = load_dictionary()
        self.auth = Exchange(("127.0.0.1", spec["auth_port"]))
        self.acct = Exchange(("127.0.0.1", spec["acct_port"]))
        self.sessions = spec["sessions"]
        self.rng = random.Random(13)
        self.stop = threading.Event()

    def login(self) -> None:
        if self.rng.random() < self.spec["unknown_share"]:
            index = self.rng.randrange(1 << 20)
            mac = f"02:DD:{index >> 16 & 255:02X}:{index >> 8 & 255:02X}:{index & 255:02X}:01"
            ip = f"10.9.{index >> 8 & 255}.{index & 255}"
        else:
            session = self.rng.choice(self.sessions)
            mac, ip = session["mac"], session["ip"]
        ident = self.auth.take_id()
        request = rp.AuthPacket(code=rp.AccessRequest, secret=self.secret,
                                dict=self.dictionary, id=ident)
        for name, value in {"User-Name": mac, "Calling-Station-Id": mac,
                            "NAS-IP-Address": "127.0.0.1", "Framed-IP-Address": ip,
                            **NAS_FIELDS}.items():
            request[name] = value
        request["User-Password"] = request.PwCrypt(self.spec["mac_password"])
        request.add_message_authenticator()
        self.auth.send(ident, request.RequestPacket())

    def interim(self, session: dict[str, Any]) -> None:
        ident = self.acct.take_id()
        request = rp.AcctPacket(code=rp.AccountingRequest, secret=self.secret,
                                dict=self.dictionary, id=ident)
        uptime = int(time.time() - session["logged_in_at"])
        down, up = uptime * 12_000, uptime * 1_500
        for name, value in {
                "User-Name": session["mac"], "Calling-Station-Id": session["mac"],
                "NAS-IP-Address": "127.0.0.1", "NAS-Port": session["nas_port"],
                "Framed-IP-Address": session["ip"], "Mikrotik-Host-IP": session["ip"],
                "Acct-Session-Id": session["session_id"], **NAS_FIELDS,
                "Acct-Status-Type": "Interim-Update", "Acct-Authentic": "RADIUS",
                "Event-Timestamp": int(time.time()), "Acct-Session-Time": uptime,
                "Acct-Input-Octets": up & 0xFFFFFFFF, "Acct-Input-Gigawords": up >> 32,
                "Acct-Output-Octets": down & 0xFFFFFFFF, "Acct-Output-Gigawords": down >> 32,
                "Acct-Input-Packets": up // 600, "Acct-Output-Packets": down // 600}.items():
            request[name] = value
        request.add_message_authenticator()
        self.acct.send(ident, request.RequestPacket())

    def run(self) -> None:
        """Two even streams, one thread: logins every 1/rate s, an interim every
        interim_seconds / sessions s (round robin, from a random place)."""
        login_every = 1.0 / self.spec["login_rate"]
        interim_every = self.spec["interim_seconds"] / max(1, len(self.sessions))
        order = self.rng.randrange(max(1, len(self.sessions)))
        next_login = next_interim = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_login:
                self.login()
                next_login += login_every
            elif self.sessions and now >= next_interim:
                self.interim(self.sessions[order % len(self.sessions)])
                order += 1
                next_interim += interim_every
            else:
                self.stop.wait(max(0.0, min(next_login, next_interim) - now))

    def finish(self) -> dict[str, Any]:
        return {"auth": self.auth.close(), "acct": self.acct.close()}


def radius_main(spec_path: str, out_path: str) -> int:
    load = RouterRadius(json.loads(Path(spec_path).read_text()))
    signal.signal(signal.SIGTERM, lambda *_: load.stop.set())
    load.run()
    Path(out_path).write_text(json.dumps(load.finish()))
    return 0


# -- phones ----------------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PLAN = re.compile(r'name="plan_id" value="(\d+)"')
STATUS = re.compile(r'id="status" data-id="([^"]+)" data-phase="([^"]+)"')


@dataclass
class Buyer:
    """A customer with a phone, buying as the portal page makes it: GET /, POST /buy (the
    form, CSRF token), the status page, then the page's long polls of /live/purchase until
    it shows connected (or failed). Told to come back later (429/503), it does."""

    phone: SimulatedPhone
    number: str
    portal_url: str
    timeout: float
    log: dict[str, Any] = field(default_factory=dict)

    def run(self) -> dict[str, Any]:
        self.log.update(mac=self.phone.mac, number=self.number, started=time.time(),
                        answers=[], phases=[], polls=0, busy=0, errors=0)
        deadline = time.time() + self.timeout
        try:
            location = self._buy(deadline)
            if location:
                self._follow(location, deadline)
        except requests.RequestException as exc:
            self.log["error"] = type(exc).__name__
        finally:
            self.phone.close()
        self.log["ended"] = time.time()
        return self.log

    def _buy(self, deadline: float) -> str | None:
        while time.time() < deadline:
            page = self.phone.get(self.portal_url)
            form = {"plan_id": PLAN.findall(page.text)[0], "phone": self.number,
                    "csrf": CSRF.findall(page.text)[0], "lang": "en"}
            answer = self.phone.post(self.portal_url + "buy", data=form, allow_redirects=False)
            self.log["answers"].append(answer.status_code)
            if answer.status_code == 303:
                return str(answer.headers["Location"])
            if answer.status_code not in (429, 503):
                return None
            time.sleep(float(answer.headers.get("Retry-After") or 2))
        return None

    def _follow(self, location: str, deadline: float) -> None:
        page = self.phone.get(self.portal_url + location.lstrip("/"))
        public_id, phase = STATUS.findall(page.text)[0]
        self.log.update(public_id=public_id)
        self.log["phases"].append((phase, time.time()))
        base = f"{self.portal_url}live/purchase/{public_id}?lang=en&wait=25&phase="
        while phase not in ("connected", "failed") and time.time() < deadline:
            self.log["polls"] += 1
            answer = self.phone.get(base + phase, timeout=45)
            if answer.status_code != 200:
                self.log["errors"] += 1
                time.sleep(3)
                continue
            view = answer.json()
            if view["phase"] == phase:
                self.log["busy"] += 1 if view.get("retry_after") else 0
                time.sleep(float(view.get("retry_after") or 0))
                continue
            phase = view["phase"]
            self.log["phases"].append((phase, time.time()))
        self.log["phase"] = phase


class Browsing:
    """Phones of customers already online: portal page views at `page_rate` per second,
    and `menu_watchers` of them at a time with the M-Pesa menu open (the page long-polls
    /live/device/<mac> for a payment made from the menu), each for `menu_seconds`."""

    def __init__(self, portal_url: str, phones: list[SimulatedPhone], page_rate: float,
                 menu_watchers: int, menu_seconds: float = 60.0) -> None:
        self.portal_url, self.phones = portal_url, phones
        self.page_rate, self.menu_watchers, self.menu_seconds = (
            page_rate, menu_watchers, menu_seconds)
        self.page_seconds: list[float] = []
        self.counts: dict[str, int] = {"pages": 0, "page_errors": 0, "device_polls": 0,
                                       "device_poll_errors": 0}
        self.stop = threading.Event()
        self.rng = random.Random(7)
        self.threads = [threading.Thread(target=self._pages, daemon=True)] + [
            threading.Thread(target=self._menu, daemon=True) for _ in range(menu_watchers)]

    def start(self) -> Browsing:
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        return {**self.counts, "page_seconds": self.page_seconds}

    def _view(self, phone: SimulatedPhone) -> str:
        started = time.perf_counter()
        try:
            page = phone.get(self.portal_url)
        except requests.RequestException:
            self.counts["page_errors"] += 1
            return ""
        self.page_seconds.append(time.perf_counter() - started)
        self.counts["pages" if page.status_code == 200 else "page_errors"] += 1
        return page.text

    def _pages(self) -> None:
        next_at = time.monotonic()
        while not self.stop.wait(max(0.0, next_at - time.monotonic())):
            self._view(self.rng.choice(self.phones))
            next_at += 1.0 / self.page_rate

    def _menu(self) -> None:
        while not self.stop.is_set():
            phone = self.rng.choice(self.phones)
            found = re.search(r'id="watch" data-mac="([^"]+)" data-expires="([^"]+)"',
                              self._view(phone))
            if not found:
                self.stop.wait(1.0)
                continue
            mac, expires = found.groups()
            until = time.monotonic() + self.menu_seconds
            while time.monotonic() < until and not self.stop.is_set():
                try:
                    answer = phone.get(f"{self.portal_url}live/device/{mac}?wait=25"
                                       f"&expires_at={expires}", timeout=45)
                    view = answer.json()
                    self.counts["device_polls"] += 1
                    self.stop.wait(float(view.get("retry_after") or 0))
                except (requests.RequestException, ValueError):
                    self.counts["device_poll_errors"] += 1
                    self.stop.wait(3.0)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "radius":
        raise SystemExit("usage: venue_load.py radius SPEC.json OUT.json")
    sys.exit(radius_main(sys.argv[2], sys.argv[3]))
