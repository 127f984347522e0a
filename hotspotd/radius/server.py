"""The RADIUS server the router talks to: Access-Request on one UDP port, accounting on another.

Why not `pyrad.server.Server`: it cannot bind port 0 and report the port it got, and its
`Run()` loop has no way to stop, so tests and `hotspotd` shutdown could not end it cleanly.
pyrad is still used for every packet (decode, PwDecrypt, Message-Authenticator, replies,
see `packets.py`); this module is only the socket loops: one daemon thread per UDP socket
(authentication, accounting: a slow accounting write never delays an Access-Request),
each blocking in `recvfrom` on its socket (one system call per packet: no selector, no
EAGAIN round); `stop()` wakes them with an empty datagram, which is never answered.

An Access-Request without a Message-Authenticator is dropped unless the caller turns
`require_message_authenticator` off (RFC 3579 / BlastRADIUS; RouterOS >= 7.15 sends one
with `require-message-auth`, which `hotspotd routeros-script` sets).

The loop never blocks on anything but the sockets and the two callbacks. A packet that
must not be answered (unknown NAS, malformed, bad authenticator, a failing accounting
callback) is dropped, counted in `stats.dropped` by reason and logged; the loop goes on.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hotspotd.radius import fastpath
from hotspotd.radius.accounting import accounting_record_from
from hotspotd.radius.dictionary import load_dictionary
from hotspotd.radius.messages import (
    AccessDecision,
    AccessRequest,
    AccountingRecord,
    DropPacket,
)
from hotspotd.radius.packets import decode_accounting_request, encode_accounting_reply

__all__ = [
    "AccessDecision",
    "AccessRequest",
    "AccountingRecord",
    "RadiusServer",
    "RadiusStats",
]

log = logging.getLogger(__name__)

UNAVAILABLE = "Service temporarily unavailable"
MAX_PACKET = 4096  # RFC 2865 3: the largest RADIUS packet
DUPLICATE_WINDOW = 30.0  # seconds a reply is kept at least, to answer a retransmission
DUPLICATE_ENTRIES = 1024  # replies kept at most, per socket
RECEIVE_BUFFER = 1 << 20  # bytes: absorbs a login burst (the kernel may cap it)

Handler = Callable[[bytes, str], bytes]


@dataclass
class RadiusStats:
    """Counters read by ops pages and tests; written only by the server thread."""

    requests: int = 0
    accepts: int = 0
    rejects: int = 0
    accounting: int = 0
    duplicates: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    last_access_request_at: float | None = None  # wall clock; the owner UI's self-test


class _ReplyCache:
    """Recent replies by sender and exact request bytes, so a NAS retransmission gets the
    same answer without calling `authorize` or `record_accounting` again (RFC 5080 2.2.2).

    Two generations of plain dicts (a lookup and an insert per request, nothing to expire
    one by one): replies go into the current one; when it is DUPLICATE_WINDOW old or holds
    half of DUPLICATE_ENTRIES, it becomes the previous one and the previous one is
    dropped. So a reply is kept at least DUPLICATE_WINDOW (at most three times that),
    unless half of DUPLICATE_ENTRIES newer replies come first. One per socket, used only
    by that socket's thread: no lock."""

    def __init__(self) -> None:
        self._current: dict[tuple[object, bytes], bytes] = {}
        self._previous: dict[tuple[object, bytes], bytes] = {}
        self._started = -math.inf  # when the current generation began (monotonic)

    def get(self, key: tuple[object, bytes], now: float) -> bytes | None:
        if now - self._started >= DUPLICATE_WINDOW:
            self._turn(now)
        reply = self._current.get(key)
        return reply if reply is not None else self._previous.get(key)

    def put(self, key: tuple[object, bytes], reply: bytes, now: float) -> None:
        self._current[key] = reply
        if len(self._current) >= DUPLICATE_ENTRIES // 2:
            self._turn(now)

    def _turn(self, now: float) -> None:
        recent = now - self._started < 2 * DUPLICATE_WINDOW
        self._previous = self._current if recent else {}
        self._current = {}
        self._started = now


class RadiusServer:
    """Authentication and accounting server for the MikroTik NAS (see module docstring)."""

    def __init__(
        self,
        *,
        host: str,
        auth_port: int,
        acct_port: int,
        clients: Mapping[str, bytes],
        authorize: Callable[[AccessRequest], AccessDecision],
        record_accounting: Callable[[AccountingRecord], None],
        interim_interval: int = 120,
        require_message_authenticator: bool = True,
    ) -> None:
        self._host = host
        self._ports = {"auth": auth_port, "acct": acct_port}
        self._clients = _normalise_clients(clients)
        self._authorize = authorize
        self._record_accounting = record_accounting
        self._interim_interval = interim_interval
        self._require_message_authenticator = require_message_authenticator
        self._dictionary = load_dictionary()
        self._sockets: dict[str, socket.socket] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = RadiusStats()

    @property
    def auth_address(self) -> tuple[str, int]:
        """The (host, port) the authentication socket is bound to; valid after `start()`."""
        return self._address("auth")

    @property
    def acct_address(self) -> tuple[str, int]:
        """The (host, port) the accounting socket is bound to; valid after `start()`."""
        return self._address("acct")

    def _address(self, kind: str) -> tuple[str, int]:
        if kind not in self._sockets:
            raise RuntimeError("RADIUS server not started")
        host, port = self._sockets[kind].getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Bind both UDP sockets (port 0 picks a free one) and start the server threads."""
        if self._threads:
            raise RuntimeError("RADIUS server already started")
        try:
            for kind, port in self._ports.items():
                self._sockets[kind] = _bind_udp(self._host, port)
        except OSError:
            self._close()
            raise
        self._stopping.clear()
        handlers = {"auth": self._handle_auth, "acct": self._handle_acct}
        for kind, handler in handlers.items():
            # One thread per port: a slow accounting write never delays an Access-Request.
            thread = threading.Thread(target=self._run, name=f"radius-{kind}", daemon=True,
                                      args=(self._sockets[kind], handler, _ReplyCache()))
            self._threads.append(thread)
            thread.start()
        log.info(
            "RADIUS server listening: auth %s:%s, accounting %s:%s, %d client(s)",
            *self.auth_address,
            *self.acct_address,
            len(self._clients),
        )

    def running(self) -> bool:
        """Both server threads are up (for health: a dead thread answers nobody)."""
        threads = self._threads
        return bool(threads) and all(thread.is_alive() for thread in threads)

    def stop(self) -> None:
        """Stop the threads and close the sockets; safe to call twice."""
        threads, self._threads = self._threads, []
        if threads:
            self._stopping.set()
            for sock in self._sockets.values():
                _wake(sock)
            for thread in threads:
                thread.join(timeout=5)
            if any(thread.is_alive() for thread in threads):
                log.error("RADIUS server thread did not stop within 5 s")
            else:
                log.info("RADIUS server stopped")
        self._close()

    def _close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets = {}

    def _run(self, sock: socket.socket, handler: Handler, cache: _ReplyCache) -> None:
        """Block in recvfrom (one system call per packet, no selector) until stop()."""
        while True:
            try:
                data, address = sock.recvfrom(MAX_PACKET)
            except OSError as error:  # e.g. ICMP port unreachable reported on Linux
                if self._stopping.is_set():
                    return
                log.debug("RADIUS recvfrom failed: %s", error)
                continue
            if self._stopping.is_set():
                return
            if data:  # an empty datagram is stop()'s wake-up, or nothing worth an answer
                self._serve_one(sock, handler, cache, data, address)

    def _serve_one(self, sock: socket.socket, handler: Handler, cache: _ReplyCache,
                   data: bytes, address: tuple[str, int]) -> None:
        self.stats.requests += 1
        now = time.monotonic()
        cache_key = (address, data)
        reply = cache.get(cache_key, now)
        if reply is not None:
            self.stats.duplicates += 1
        else:
            reply = self._answer(handler, data, address)
            if reply is None:
                return
            cache.put(cache_key, reply, now)
        try:
            sock.sendto(reply, address)
        except OSError as error:
            log.warning("RADIUS reply to %s failed: %s", address, error)

    def _answer(self, handler: Handler, data: bytes, address: tuple[str, int]) -> bytes | None:
        try:
            return handler(data, address[0])
        except DropPacket as drop:
            self.stats.dropped[drop.reason] += 1
            log.warning("RADIUS packet from %s:%s dropped: %s", address[0], address[1], drop)
        except Exception:
            self.stats.dropped["internal_error"] += 1
            log.exception("RADIUS packet from %s:%s dropped: internal error", *address[:2])
        return None

    def _secret_for(self, source_ip: str) -> bytes:
        secret = self._clients.get(source_ip)
        if secret is None:
            raise DropPacket("unknown_client", f"{source_ip} is not a configured RADIUS client")
        return secret

    def _handle_auth(self, data: bytes, source_ip: str) -> bytes:
        secret = self._secret_for(source_ip)
        raw = fastpath.decode_request(
            data, secret, require_message_authenticator=self._require_message_authenticator)
        request = fastpath.access_request(raw, secret, source_ip)
        self.stats.last_access_request_at = time.time()
        decision = self._decide(request)
        try:
            reply = fastpath.encode_reply(raw, secret, decision, self._interim_interval)
        except Exception:
            log.exception("cannot encode the decision for %s: %r", request.user_name, decision)
            decision = AccessDecision(accept=False, reply_message=UNAVAILABLE)
            reply = fastpath.encode_reply(raw, secret, decision, self._interim_interval)
        if decision.accept:
            # Accepts are counted (stats, /metrics) and logged only at DEBUG: a login burst
            # would otherwise spend a third of the port's time writing log lines.
            self.stats.accepts += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("Access-Accept for %s (%s) from NAS %s", request.user_name,
                          request.calling_station_id, source_ip)
        else:
            self.stats.rejects += 1
            log.info("Access-Reject for %s (%s) from NAS %s: %s", request.user_name,
                     request.calling_station_id, source_ip, decision.reply_message)
        return reply

    def _decide(self, request: AccessRequest) -> AccessDecision:
        try:
            decision = self._authorize(request)
            if not isinstance(decision, AccessDecision):
                raise TypeError(f"authorize returned {type(decision).__name__}")
            return decision
        except Exception:
            log.exception("authorize failed for %s; rejecting", request.user_name)
            return AccessDecision(accept=False, reply_message=UNAVAILABLE)

    def _handle_acct(self, data: bytes, source_ip: str) -> bytes:
        packet = decode_accounting_request(data, self._secret_for(source_ip), self._dictionary)
        record = accounting_record_from(packet, source_ip, time.time())
        try:
            self._record_accounting(record)
        except Exception as error:
            log.exception(
                "recording accounting %s for session %s failed; not acknowledged",
                record.status_type,
                record.session_id,
            )
            raise DropPacket("accounting_failed", "record_accounting raised") from error
        self.stats.accounting += 1
        log.debug("Accounting %s for session %s", record.status_type, record.session_id)
        return encode_accounting_reply(packet)


def _normalise_clients(clients: Mapping[str, bytes]) -> dict[str, bytes]:
    """Key clients by canonical IP text; a bad address or a non-bytes secret is an error."""
    normalised = {}
    for address, secret in clients.items():
        if not isinstance(secret, bytes) or not secret:
            raise ValueError(f"RADIUS client {address}: the secret must be non-empty bytes")
        normalised[str(ipaddress.ip_address(address))] = secret
    return normalised


def _bind_udp(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError:
        sock.close()
        raise
    return sock


def _wake(sock: socket.socket) -> None:
    """Send an empty datagram to `sock` so its thread's blocking recvfrom returns."""
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:
        host = "::1" if sock.family == socket.AF_INET6 else "127.0.0.1"
    try:
        with socket.socket(sock.family, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"", (host, port))
    except OSError as error:
        log.warning("cannot wake the RADIUS socket %s:%s: %s", host, port, error)
