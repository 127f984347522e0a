"""The router's `/radius incoming` listener: CoA-Request and Disconnect-Request (RFC 5176).

Follows shared/reference/mikrotik.md: the port is configurable (RouterOS defaults to 1700;
hotspotd documents 3799), a session is found by `User-Name` + `Framed-IP-Address` (and
`Acct-Session-Id` when sent), an unknown session gets a NAK with `Error-Cause`
Session-Context-Not-Found (503). Requests with a bad Request Authenticator or a bad
Message-Authenticator are dropped; with `require_message_auth` so are requests without one.
A retransmitted request (same source, identifier and authenticator) gets the same reply.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from .faults import Faults

log = logging.getLogger(__name__)

SESSION_NOT_FOUND = 503
MISSING_ATTRIBUTE = 402
UNSUPPORTED_ATTRIBUTE = 401
CHANGEABLE = ("Session-Timeout", "Idle-Timeout", "Mikrotik-Rate-Limit",
              "Mikrotik-Total-Limit", "Mikrotik-Total-Limit-Gigawords")
_RECENT = 256


@dataclass(frozen=True)
class CoaTarget:
    user_name: str
    framed_ip: str
    acct_session_id: str | None


# Applies a request to the hotspot: returns None on success, else an Error-Cause.
Apply = Callable[[int, CoaTarget, dict[str, Any]], int | None]


class CoaListener:
    """A UDP listener answering CoA / Disconnect requests through `apply`."""

    def __init__(self, *, secret: bytes, dictionary: Dictionary, apply: Apply, faults: Faults,
                 require_message_auth: bool) -> None:
        self._secret = secret
        self._dictionary = dictionary
        self._apply = apply
        self._faults = faults
        self.require_message_auth = require_message_auth
        self._sock: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._recent: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self.received = 0
        self.dropped = 0

    @property
    def address(self) -> tuple[str, int]:
        if self._sock is None:
            raise RuntimeError("CoA listener not started")
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self, host: str, port: int) -> tuple[str, int]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port))
        self._sock = sock
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="router-coa", daemon=True)
        self._thread.start()
        log.info("router CoA/Disconnect listener on %s:%s", *self.address)
        return self.address

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None and self._wake is not None:
            self._wake[1].send(b"\0")
            thread.join(2.0)
        for sock in (self._sock, *(self._wake or ())):
            if sock is not None:
                sock.close()
        self._sock, self._wake = None, None

    def _run(self) -> None:
        assert self._sock is not None and self._wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ, "coa")
            selector.register(self._wake[0], selectors.EVENT_READ, None)
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        return
                    self._serve_one()

    def _serve_one(self) -> None:
        assert self._sock is not None
        try:
            data, source = self._sock.recvfrom(4096)
        except OSError:
            return
        self.received += 1
        if self._faults.hit("drop_coa"):
            self.dropped += 1
            log.info("CoA from %s:%s dropped (fault injected)", *source[:2])
            return
        key = (source, data[:20])
        reply = self._recent.get(key)
        if reply is None:
            reply = self._answer(data, source)
            if reply is None:
                self.dropped += 1
                return
            self._recent[key] = reply
            while len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        self._sock.sendto(reply, source)

    def _answer(self, data: bytes, source: tuple[str, int]) -> bytes | None:
        try:
            request = rp.CoAPacket(packet=data, secret=self._secret, dict=self._dictionary)
        except Exception as error:  # malformed
            log.warning("undecodable CoA packet from %s: %s", source[0], error)
            return None
        if request.code not in (rp.CoARequest, rp.DisconnectRequest):
            return None
        if not request.VerifyCoARequest():
            log.warning("CoA from %s: bad Request Authenticator, dropped", source[0])
            return None
        if request.message_authenticator:
            if not request.verify_message_authenticator():
                log.warning("CoA from %s: bad Message-Authenticator, dropped", source[0])
                return None
        elif self.require_message_auth:
            log.warning("CoA from %s without Message-Authenticator, dropped", source[0])
            return None
        return self._reply(request)

    def _reply(self, request: rp.CoAPacket) -> bytes:
        reply = request.CreateReply()
        cause = self._cause(request)
        if cause is not None:
            reply.code = rp.CoANAK if request.code == rp.CoARequest else rp.DisconnectNAK
            reply["Error-Cause"] = cause
        reply.add_message_authenticator()
        return reply.ReplyPacket()

    def _cause(self, request: rp.CoAPacket) -> int | None:
        user, ip = _first(request, "User-Name"), _first(request, "Framed-IP-Address")
        if not user or not ip:
            return MISSING_ATTRIBUTE
        target = CoaTarget(user, ip, _first(request, "Acct-Session-Id"))
        changes = {name: _first(request, name) for name in CHANGEABLE if name in request}
        return self._apply(request.code, target, changes)


def _first(request: rp.Packet, name: str) -> Any:
    try:
        values = request.get(name)
    except Exception:
        return None
    return values[0] if values else None
