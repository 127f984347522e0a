"""The login flood of bench/hostile_attacks.py: RADIUS Access-Requests at a high rate, as
the router relays a login page's attempts from the attacking device.

Sent from 127.0.0.1 (the router's address in the simulation) to the daemon's auth port with
the shared secret and a Message-Authenticator; Calling-Station-Id is one of the attacker's
MACs and Framed-IP-Address its address. Half the requests guess a voucher code, half borrow
the MAC of a device the router lists online (what a sniffer on the WiFi sees) with the
shared MAC-login password, the worst case of a leaked password.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import TYPE_CHECKING

import requests
from pyrad import packet as rp

from hotspotd.ledger.vouchers import ALPHABET, CODE_LENGTH
from hotspotd.radius.dictionary import load_dictionary

if TYPE_CHECKING:
    from hostile_attacks import Attacker


class LoginFlood:
    """Access-Requests at `rate` a second: guessed vouchers and borrowed MACs, in turns."""

    KINDS = ("voucher_guess", "borrowed_mac")

    def __init__(self, attacker: Attacker, rate: float) -> None:
        self.a, self.rate = attacker, rate
        radius = attacker.runtime["radius"]
        self.target = (radius["host"], int(radius["auth_port"]))
        self.secret = str(radius["secret"]).encode()
        self.mac_password = str(radius["mac_password"])
        self.dictionary = load_dictionary()
        self.borrowable: list[str] = []
        self.sockets = {kind: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        for kind in self.KINDS}
        self.done = threading.Event()  # stop reading answers

    def run(self) -> None:
        for sock in self.sockets.values():
            sock.bind(("127.0.0.1", 0))  # the router relays the login page's attempts
            sock.settimeout(0.2)
        readers = [threading.Thread(target=self._read, args=(kind,), daemon=True)
                   for kind in self.KINDS]
        for reader in readers:
            reader.start()
        rng, n, started = random.Random(12), 0, time.monotonic()
        next_borrow = 0.0
        while not self.a.stop.is_set():
            if time.monotonic() >= next_borrow:
                self.borrowable = self._online_macs()
                next_borrow = time.monotonic() + 2
            kind = self.KINDS[n % 2] if self.borrowable else self.KINDS[0]
            self.sockets[kind].sendto(self._packet(kind, n, rng), self.target)
            self.a.count(f"sent:{kind}")
            n += 1
            time.sleep(max(0.0, started + n / self.rate - time.monotonic()))
        self.a.extra.update({"rate_wanted": self.rate,
                             "rate_sent": round(n / (time.monotonic() - started), 1)})
        time.sleep(1.0)  # late answers
        self.done.set()
        for reader in readers:
            reader.join(2)

    def _packet(self, kind: str, n: int, rng: random.Random) -> bytes:
        request = rp.AuthPacket(code=rp.AccessRequest, secret=self.secret,
                                dict=self.dictionary, id=n % 256)
        station = self.a.macs[n % len(self.a.macs)]
        if kind == "voucher_guess":
            code = "".join(rng.choice(ALPHABET) for _ in range(CODE_LENGTH))
            request["User-Name"] = code
            request["User-Password"] = request.PwCrypt(code)
        else:
            request["User-Name"] = rng.choice(self.borrowable)
            request["User-Password"] = request.PwCrypt(self.mac_password)
        request["Calling-Station-Id"] = station
        request["Framed-IP-Address"] = self.a.address
        request["NAS-IP-Address"] = "127.0.0.1"
        request.add_message_authenticator()
        return request.RequestPacket()

    def _read(self, kind: str) -> None:
        sock = self.sockets[kind]
        names = {rp.AccessAccept: "accept", rp.AccessReject: "reject"}
        while not self.done.is_set():
            try:
                reply = sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            self.a.answered(f"{kind}:{names.get(reply[0], str(reply[0]))}")

    def _online_macs(self) -> list[str]:
        """MACs of devices the router lists online (what a sniffer on the WiFi sees)."""
        try:
            rows = requests.get(self.a.runtime["router_status_url"].rstrip("/")
                                + "/active.json", timeout=5).json()
        except (requests.RequestException, ValueError):
            return self.borrowable
        return [row["mac-address"] for row in rows
                if row.get("mac-address") and row["mac-address"] not in self.a.macs]
