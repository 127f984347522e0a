"""The daemon as a Dynamic Authorization client (RFC 5176): CoA-Request and Disconnect-Request.

The router listens on `/radius incoming` (MikroTik's default port is 1700; hotspotd
documents and configures 3799). A session is named by `User-Name` + `Framed-IP-Address`
+ `Acct-Session-Id` (a MAC alone may hit the wireless registration instead of the hotspot
session). Every request carries a Message-Authenticator; a reply is accepted only when its
Response Authenticator and Message-Authenticator verify. Retransmissions reuse the same
bytes (same identifier and authenticator) so the router can recognise them.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass

from pyrad import packet as rp

from hotspotd.radius.dictionary import load_dictionary

log = logging.getLogger(__name__)

GIGAWORD = 2**32
MAX_PACKET = 4096


@dataclass(frozen=True)
class SessionRef:
    """How the router knows a live session."""

    user_name: str
    framed_ip: str
    acct_session_id: str | None = None
    nas_address: str | None = None  # the router that holds it (several routers: who to ask)


@dataclass(frozen=True)
class SessionChange:
    """What a CoA-Request changes; None leaves the value alone."""

    session_timeout: int | None = None
    rate_limit: str | None = None
    idle_timeout: int | None = None
    total_limit_bytes: int | None = None


@dataclass(frozen=True)
class CoaOutcome:
    """`acked` True on CoA-ACK / Disconnect-ACK; `answered` False when nothing valid came."""

    answered: bool
    acked: bool = False
    error_cause: int | None = None

    def __str__(self) -> str:
        if not self.answered:
            return "no answer"
        if self.acked:
            return "ACK"
        return f"NAK (Error-Cause {self.error_cause})"


class CoaClient:
    """Sends CoA / Disconnect requests to one router; thread-safe (a socket per request)."""

    def __init__(self, *, host: str, port: int, secret: bytes, timeout: float = 1.0,
                 retries: int = 2) -> None:
        if not secret:
            raise ValueError("the CoA secret must not be empty")
        self.host = host
        self.port = port
        self._secret = secret
        self.timeout = timeout
        self.retries = retries
        self._dictionary = load_dictionary()

    def __repr__(self) -> str:
        return f"CoaClient(host={self.host!r}, port={self.port})"

    def change(self, session: SessionRef, change: SessionChange) -> CoaOutcome:
        """Send a CoA-Request applying `change` to `session`."""
        request = self._request(rp.CoARequest, session)
        if change.session_timeout is not None:
            request["Session-Timeout"] = max(0, int(change.session_timeout))
        if change.idle_timeout is not None:
            request["Idle-Timeout"] = int(change.idle_timeout)
        if change.rate_limit:
            request["Mikrotik-Rate-Limit"] = change.rate_limit
        if change.total_limit_bytes:
            add_total_limit(request, change.total_limit_bytes)
        return self._exchange(request)

    def disconnect(self, session: SessionRef) -> CoaOutcome:
        """Send a Disconnect-Request ending `session`."""
        return self._exchange(self._request(rp.DisconnectRequest, session))

    def _request(self, code: int, session: SessionRef) -> rp.CoAPacket:
        request = rp.CoAPacket(code=code, secret=self._secret, dict=self._dictionary)
        request["User-Name"] = session.user_name
        request["Framed-IP-Address"] = session.framed_ip
        if session.acct_session_id:
            request["Acct-Session-Id"] = session.acct_session_id
        request["Event-Timestamp"] = int(time.time())
        request.add_message_authenticator()
        return request

    def _exchange(self, request: rp.CoAPacket) -> CoaOutcome:
        raw = request.RequestPacket()
        family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0][0]
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((self.host, self.port))
            for _attempt in range(self.retries + 1):
                try:
                    sock.send(raw)
                except OSError as error:
                    log.debug("CoA send to %s:%s failed: %s", self.host, self.port, error)
                reply = self._await_reply(sock, request)
                if reply is not None:
                    return _outcome(reply)
        return CoaOutcome(answered=False)

    def _await_reply(self, sock: socket.socket, request: rp.CoAPacket) -> rp.Packet | None:
        deadline = time.monotonic() + self.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data = sock.recv(MAX_PACKET)
            except (TimeoutError, ConnectionRefusedError, OSError):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                continue
            try:
                reply = request.CreateReply(packet=data)
            except Exception as error:  # pyrad raises several types on malformed input
                log.warning("undecodable CoA reply from %s: %s", self.host, error)
                continue
            if reply.code in (rp.CoAACK, rp.CoANAK, rp.DisconnectACK, rp.DisconnectNAK) \
                    and request.VerifyReply(reply, data):
                return reply
            log.warning("dropping CoA reply from %s that fails verification", self.host)
        return None


def _outcome(reply: rp.Packet) -> CoaOutcome:
    acked = reply.code in (rp.CoAACK, rp.DisconnectACK)
    causes = reply.get(101)  # Error-Cause, by number: decoded value may be a name
    cause = causes[0] if causes else None
    if isinstance(cause, bytes):
        cause = int.from_bytes(cause, "big")
    return CoaOutcome(answered=True, acked=acked,
                      error_cause=cause if isinstance(cause, int) else None)


def add_total_limit(packet: rp.Packet, total_bytes: int) -> None:
    """Mikrotik-Total-Limit (low 32 bits) and, above 4 GiB, Mikrotik-Total-Limit-Gigawords."""
    packet["Mikrotik-Total-Limit"] = total_bytes % GIGAWORD
    if total_bytes >= GIGAWORD:
        packet["Mikrotik-Total-Limit-Gigawords"] = total_bytes // GIGAWORD
