"""The router as a RADIUS client (NAS): Access-Request for logins, accounting in the background.

Follows shared/reference/mikrotik.md: the identification attributes a hotspot sends,
retransmission on timeout, and RouterOS >= 7.15's `require-message-auth`: a reply to an
Access-Request without a valid Message-Authenticator is dropped, as if it never came.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from pyrad import packet
from pyrad.dictionary import Dictionary

from .hotspot import Session

log = logging.getLogger(__name__)

NAS_PORT_ID = "bridge-hotspot"
_POLL = 0.2


@dataclass(frozen=True)
class RadiusEndpoint:
    host: str
    auth_port: int
    acct_port: int


@dataclass(frozen=True)
class AuthResult:
    """What came back for an Access-Request (`responded` is False when nothing valid did)."""

    responded: bool
    accepted: bool = False
    reply_message: str | None = None
    session_timeout: int | None = None
    idle_timeout: int | None = None
    rate_limit: str | None = None
    interim_interval: int | None = None
    radius_class: bytes | None = None
    total_limit: int | None = None


def nas_ip_for(host: str) -> str:
    """The NAS-IP-Address to announce for an API bound to `host`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1"
    if address.version != 4 or address.is_unspecified:
        return "127.0.0.1"
    return str(address)


def _first(reply: packet.Packet, name: str) -> Any:
    values = reply.get(name)
    return values[0] if values else None


def _result_from(reply: packet.Packet) -> AuthResult:
    message = _first(reply, "Reply-Message")
    if reply.code != packet.AccessAccept:
        return AuthResult(responded=True, accepted=False, reply_message=message)
    timeout = _first(reply, "Session-Timeout")
    return AuthResult(
        responded=True, accepted=True, reply_message=message,
        session_timeout=timeout or None, idle_timeout=_first(reply, "Idle-Timeout"),
        rate_limit=_first(reply, "Mikrotik-Rate-Limit"),
        interim_interval=_first(reply, "Acct-Interim-Interval"),
        radius_class=_first(reply, "Class"), total_limit=_total_limit(reply),
    )


def _total_limit(reply: packet.Packet) -> int | None:
    low = _first(reply, "Mikrotik-Total-Limit")
    if low is None:
        return None
    return (_first(reply, "Mikrotik-Total-Limit-Gigawords") or 0) * 2**32 + low


class RadiusNas:
    """Sends Access-Requests inline and Accounting-Requests from a background queue."""

    def __init__(self, *, endpoint: RadiusEndpoint, secret: str, dictionary: Dictionary,
                 nas_ip: str, identity: str, server_name: str, timeout: float, retries: int,
                 require_message_auth: bool) -> None:
        self.endpoint = endpoint
        self._secret = secret.encode()
        self._dictionary = dictionary
        self.nas_ip = nas_ip
        self.identity = identity
        self.server_name = server_name
        self.timeout = timeout
        self.retries = retries
        self.require_message_auth = require_message_auth
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._worker = threading.Thread(target=self._accounting_loop, name="nas-accounting",
                                        daemon=True)
        self._worker.start()

    def accounting_backlog(self) -> int:
        """Accounting packets queued and not yet answered (0: the router is caught up)."""
        return self._queue.qsize()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        self._queue.put(None)  # wakes the worker
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    # -- access ------------------------------------------------------------------------
    def identification(self, session: Session) -> dict[str, Any]:
        """Attributes that name the session, in Access-Requests and accounting alike."""
        return {
            "User-Name": session.user,
            "Calling-Station-Id": session.mac,
            "Called-Station-Id": self.server_name,
            "NAS-Identifier": self.identity,
            "NAS-IP-Address": self.nas_ip,
            "NAS-Port": session.nas_port,
            "NAS-Port-Id": NAS_PORT_ID,
            "NAS-Port-Type": "Wireless-802.11",
            "Service-Type": "Login-User",
            "Framed-IP-Address": session.ip,
            "Mikrotik-Host-IP": session.ip,
            "Acct-Session-Id": session.acct_session_id,
        }

    def authenticate(self, session: Session, password: str, method: str = "chap") -> AuthResult:
        """Send an Access-Request for `session`; block until answered or given up.

        `method` "chap" is the hotspot's default (`login-by=http-chap`): CHAP-Password
        (identifier + MD5(identifier + password + challenge)) with a fresh 16-octet
        CHAP-Challenge; "pap" sends User-Password hidden with the shared secret."""
        request = packet.AuthPacket(code=packet.AccessRequest, secret=self._secret,
                                    dict=self._dictionary)
        for name, value in self.identification(session).items():
            request[name] = value
        if method == "chap":
            chap_id = secrets.token_bytes(1)
            challenge = secrets.token_bytes(16)
            request["CHAP-Password"] = chap_id + hashlib.md5(
                chap_id + password.encode("utf-8") + challenge).digest()
            request["CHAP-Challenge"] = challenge
        elif method == "pap":
            request["User-Password"] = request.PwCrypt(password)
        else:
            raise ValueError(f"unknown login method {method!r}: chap or pap")
        request.add_message_authenticator()
        reply = self._exchange(request, self.endpoint.auth_port)
        if reply is None:
            log.warning("RADIUS server %s:%s is not responding (user %s)",
                        self.endpoint.host, self.endpoint.auth_port, session.user)
            return AuthResult(responded=False)
        return _result_from(reply)

    # -- accounting --------------------------------------------------------------------
    def account(self, status: str, session: Session, now: float,
                terminate_cause: str | None = None) -> None:
        """Queue an Accounting-Request (`Start`, `Interim-Update`, `Stop`) for `session`."""
        attributes = self.identification(session)
        attributes["Acct-Status-Type"] = status
        attributes["Acct-Authentic"] = "RADIUS"
        attributes["Event-Timestamp"] = int(time.time())
        if session.radius_class is not None:
            attributes["Class"] = session.radius_class
        if status != "Start":
            counters = session.counters(now)
            attributes.update({
                "Acct-Session-Time": session.uptime(now),
                "Acct-Input-Octets": counters.bytes_in & 0xFFFFFFFF,
                "Acct-Input-Gigawords": counters.bytes_in >> 32,
                "Acct-Output-Octets": counters.bytes_out & 0xFFFFFFFF,
                "Acct-Output-Gigawords": counters.bytes_out >> 32,
                "Acct-Input-Packets": counters.packets_in,
                "Acct-Output-Packets": counters.packets_out,
            })
        if terminate_cause is not None:
            attributes["Acct-Terminate-Cause"] = terminate_cause
        self._queue.put(attributes)

    def account_on(self) -> None:
        """Queue Accounting-On: the NAS (re)started, its earlier sessions are over."""
        self._queue.put({
            "Acct-Status-Type": "Accounting-On", "Acct-Session-Id": "00000000",
            "NAS-Identifier": self.identity, "NAS-IP-Address": self.nas_ip,
            "Event-Timestamp": int(time.time())})

    def _accounting_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                attributes = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if attributes is None:
                continue
            request = packet.AcctPacket(code=packet.AccountingRequest, secret=self._secret,
                                        dict=self._dictionary)
            for name, value in attributes.items():
                request[name] = value
            request.add_message_authenticator()
            if self._exchange(request, self.endpoint.acct_port) is None and \
                    not self._stopping.is_set():
                log.warning("accounting %s for session %s not acknowledged",
                            attributes["Acct-Status-Type"], attributes["Acct-Session-Id"])
                self._retry_later(attributes)

    def _retry_later(self, attributes: dict[str, Any]) -> None:
        """RouterOS keeps unacknowledged accounting and sends it again later."""
        if attributes["Acct-Status-Type"] in ("Stop", "Accounting-On"):
            self._queue.put(attributes)

    # -- transport ---------------------------------------------------------------------
    def _exchange(self, request: packet.Packet, port: int) -> packet.Packet | None:
        """Send `request` (retransmitting the same bytes) and return a verified reply."""
        raw = request.RequestPacket()
        server = (self.endpoint.host, port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.nas_ip, 0))
            for _attempt in range(self.retries + 1):
                if self._stopping.is_set():
                    return None
                sock.sendto(raw, server)
                reply = self._await_reply(sock, request, port)
                if reply is not None:
                    return reply
        return None

    def _await_reply(self, sock: socket.socket, request: packet.Packet,
                     port: int) -> packet.Packet | None:
        deadline = time.monotonic() + self.timeout
        while (remaining := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            sock.settimeout(min(remaining, _POLL))
            try:
                data, source = sock.recvfrom(4096)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if source[1] != port:
                continue
            reply = self._verified(request, data)
            if reply is not None:
                return reply
        return None

    def _verified(self, request: packet.Packet, data: bytes) -> packet.Packet | None:
        try:
            reply = request.CreateReply(packet=data)
        except Exception as exc:  # pyrad raises several types for malformed packets
            log.warning("dropping undecodable RADIUS reply: %s", exc)
            return None
        if not request.VerifyReply(reply, data, enforce_ma=self.require_message_auth):
            log.warning("dropping RADIUS reply that fails verification (id %s)", reply.id)
            return None
        return reply
