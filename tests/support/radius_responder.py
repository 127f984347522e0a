"""A small pyrad RADIUS server on UDP port 0 that the MikroTik simulator's NAS talks to.

It accepts the MACs it was told about (PAP password checked), signs replies with a
Message-Authenticator unless told not to, and records every request it received.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field

from pyrad import packet

from hotspotd.radius.dictionary import load_dictionary
from hotspotd.simulators.mikrotik import MikrotikSimulator
from support.wait import wait_until

SECRET = "responder-secret"


@dataclass
class Grant:
    password: str
    session_timeout: int | None = 3600
    rate_limit: str | None = "2M/5M"
    idle_timeout: int | None = None
    interim_interval: int | None = None


@dataclass
class RadiusResponder:
    """Auth and accounting listeners on 127.0.0.1; `grants` maps MAC → what to accept."""

    secret: str = SECRET
    sign_replies: bool = True
    answer_accounting: bool = True
    reject_message: str = "Not paid: buy time on the portal"
    delay: float = 0.0  # seconds to wait before answering an Access-Request
    grants: dict[str, Grant] = field(default_factory=dict)
    access_requests: list[packet.AuthPacket] = field(default_factory=list)
    accounting: list[packet.AcctPacket] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # "chap" or "pap", per Access-Request
    bad_message_authenticators: int = 0

    def __post_init__(self) -> None:
        self._dict = load_dictionary()
        self._auth = self._bind()
        self._acct = self._bind()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(sock, handler), daemon=True)
                         for sock, handler in ((self._auth, self._answer_access),
                                               (self._acct, self._answer_accounting))]
        self._lock = threading.Lock()

    @staticmethod
    def _bind() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        return sock

    @property
    def auth_port(self) -> int:
        return self._auth.getsockname()[1]

    @property
    def acct_port(self) -> int:
        return self._acct.getsockname()[1]

    def start(self) -> RadiusResponder:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(2)
        self._auth.close()
        self._acct.close()

    def wait_for_accounting(self, status: str, timeout: float = 5.0,
                            session_id: str | None = None) -> packet.AcctPacket:
        def received() -> packet.AcctPacket | None:
            with self._lock:
                return next((request for request in self.accounting
                             if request["Acct-Status-Type"][0] == status and (
                                 session_id is None or
                                 request["Acct-Session-Id"][0] == session_id)), None)

        return wait_until(received, timeout=timeout, interval=0.02,
                          message=f"an Accounting {status}")

    def _loop(self, sock: socket.socket, handler) -> None:  # type: ignore[no-untyped-def]
        while not self._stopping.is_set():
            try:
                data, source = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            reply = handler(data)
            if reply is not None:
                sock.sendto(reply, source)

    def _answer_access(self, data: bytes) -> bytes | None:
        request = packet.AuthPacket(packet=data, secret=self.secret.encode(), dict=self._dict)
        if request.message_authenticator and not request.verify_message_authenticator():
            self.bad_message_authenticators += 1
            return None
        grant = self.grants.get(request["Calling-Station-Id"][0])
        if "CHAP-Password" in request:  # RFC 1994 / 2865 5.3, checked here independently
            chap = request["CHAP-Password"][0]
            challenge = request["CHAP-Challenge"][0] if "CHAP-Challenge" in request \
                else request.authenticator
            candidate = grant.password if grant is not None else ""
            matches = hashlib.md5(chap[:1] + candidate.encode() + challenge).digest() == chap[1:]
            password, method = (candidate if matches else "<CHAP mismatch>"), "chap"
        else:
            password, method = request.PwDecrypt(request["User-Password"][0]), "pap"
        time.sleep(self.delay)
        with self._lock:
            self.access_requests.append(request)
            self.passwords.append(password)
            self.methods.append(method)
        options = {} if self.sign_replies else {"message_authenticator": False}
        if grant is None or grant.password != password:
            reply = request.CreateReply(Reply_Message=self.reject_message, **options)
            reply.code = packet.AccessReject
            return reply.ReplyPacket()
        reply = request.CreateReply(**options)
        for name, value in (("Session-Timeout", grant.session_timeout),
                            ("Mikrotik-Rate-Limit", grant.rate_limit),
                            ("Idle-Timeout", grant.idle_timeout),
                            ("Acct-Interim-Interval", grant.interim_interval)):
            if value is not None:
                reply[name] = value
        return reply.ReplyPacket()

    def _answer_accounting(self, data: bytes) -> bytes | None:
        request = packet.AcctPacket(packet=data, secret=self.secret.encode(), dict=self._dict)
        if not request.VerifyAcctRequest() or (
                request.message_authenticator and not request.verify_message_authenticator()):
            self.bad_message_authenticators += 1
            return None
        with self._lock:
            self.accounting.append(request)
        if not self.answer_accounting:
            return None
        return request.CreateReply().ReplyPacket()


def make_router_simulator(responder: RadiusResponder, *, api_user: str, api_password: str,
                          **options: object) -> MikrotikSimulator:
    """A MikroTik simulator whose NAS talks to `responder` (short RADIUS timeouts)."""
    settings: dict[str, object] = dict(
        api_user=api_user, api_password=api_password, radius_host="127.0.0.1",
        radius_auth_port=responder.auth_port, radius_acct_port=responder.acct_port,
        radius_secret=SECRET, radius_timeout=0.3, radius_retries=1)
    settings.update(options)
    return MikrotikSimulator(**settings)  # type: ignore[arg-type]
