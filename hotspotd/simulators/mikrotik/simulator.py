"""`MikrotikSimulator`: a MikroTik hotspot router that speaks the real protocols.

RouterOS API over TCP (`api_server`), RADIUS Access/Accounting over UDP as the NAS
(`nas`), the active-host table with expiry (`hotspot`), the NAT rules (`firewall`; without
the appliance's exception when `nat_exception=False`), the set-up menus (`setup`: as
`hotspotd routeros-script` leaves them, or drifted by a `RouterSetup`) and a status page. It powers
`hotspotd demo`; production points the same gateway at a real router instead.
"""

from __future__ import annotations

import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from itertools import count

from flask import Flask

from hotspotd.macs import normalise_mac
from hotspotd.radius.dictionary import load_dictionary
from hotspotd.router.durations import format_duration

from .api_server import ApiServer, CommandTrap, NoAnswer, Result
from .coa_listener import SESSION_NOT_FOUND, CoaListener, CoaTarget
from .commands import RouterCommands
from .faults import WRITE_COMMANDS, Faults
from .firewall import NatTable
from .hotspot import AlreadyLoggedIn, HotspotTable, Session
from .nas import RadiusEndpoint, RadiusNas, nas_ip_for
from .setup import RouterSetup, SetupMenus
from .status_page import create_status_app
from .wire import Command

log = logging.getLogger(__name__)

ROUTEROS_VERSION = "7.16 (stable)"
DISCONNECT_REQUEST = 40
TICK_SECONDS = 0.2
NOT_RESPONDING = "RADIUS server is not responding"
REJECTED = "RADIUS server rejected"


class MikrotikSimulator:
    """A simulated RouterOS hotspot router; see the module docstring."""

    def __init__(self, *, api_user: str, api_password: str,
                 radius_host: str, radius_auth_port: int, radius_acct_port: int,
                 radius_secret: str, identity: str = "hotspotd-sim",
                 hotspot_server: str = "hotspot1", require_message_auth: bool = True,
                 radius_timeout: float = 2.0, radius_retries: int = 2,
                 interim_interval: int | None = None, coa_port: int = 0,
                 faults: Faults | None = None, login_method: str = "chap",
                 api_tls: ssl.SSLContext | None = None,
                 appliance_address: str = "192.168.88.2", nat_exception: bool = True,
                 setup: RouterSetup | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if login_method not in ("chap", "pap"):
            raise ValueError(f"login_method must be chap or pap, not {login_method!r}")
        self.login_method = login_method  # how logins authenticate to RADIUS
        self.identity = identity
        self.hotspot_server = hotspot_server
        self.interim_interval = interim_interval
        self._api_user = api_user
        self._api_password = api_password
        self._clock = clock
        self._booted_at = clock()
        self._table = HotspotTable(clock)
        self._nas = RadiusNas(
            endpoint=RadiusEndpoint(radius_host, radius_auth_port, radius_acct_port),
            secret=radius_secret, dictionary=load_dictionary(), nas_ip="127.0.0.1",
            identity=identity, server_name=hotspot_server, timeout=radius_timeout,
            retries=radius_retries, require_message_auth=require_message_auth)
        self.faults = faults or Faults()
        self.nat = NatTable(appliance_address=appliance_address,
                            appliance_exception=nat_exception)  # /ip/firewall/nat
        self.setup = SetupMenus(setup or RouterSetup(), appliance=appliance_address,
                                auth_port=radius_auth_port, acct_port=radius_acct_port,
                                hotspot_server=hotspot_server, secret=radius_secret,
                                require_message_auth=require_message_auth)
        self._commands = RouterCommands(self)
        self._api = ApiServer(handler=self._answer_command, check_password=self._check_password,
                              tls=api_tls)  # api-ssl (RouterOS's port 8729) when given
        self.coa_port = coa_port
        self._coa = CoaListener(secret=radius_secret.encode(), dictionary=load_dictionary(),
                                apply=self._apply_coa, faults=self.faults,
                                require_message_auth=require_message_auth)
        self.reboots = 0
        session_base = secrets.randbits(16) << 16
        self._session_ids = (f"{(session_base + n) & 0xFFFFFFFF:08x}" for n in count(1))
        self._nas_ports = count(0x81A00001)
        self._counter_lock = threading.Lock()
        self._stopping = threading.Event()
        self._timer: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", api_port: int = 0) -> None:
        """Listen for the API on `host:api_port` (0: any free port) and start the timers."""
        self._nas.nas_ip = nas_ip_for(host)
        self._stopping.clear()
        self._api.start(host, api_port)
        self._coa.start(host, self.coa_port)
        self._nas.start()
        self._timer = threading.Thread(target=self._timer_loop, name="hotspot-timers",
                                       daemon=True)
        self._timer.start()

    def accounting_backlog(self) -> int:
        """Accounting-Requests the simulated router still has to get answered."""
        return self._nas.accounting_backlog()

    def stop(self) -> None:
        """Close the listener and connections, stop the timers and the accounting sender."""
        self._stopping.set()
        self._api.stop()
        self._coa.stop()
        if self._timer is not None:
            self._timer.join(2.0)
            self._timer = None
        self._nas.stop()

    @property
    def api_address(self) -> tuple[str, int]:
        return self._api.address

    @property
    def coa_address(self) -> tuple[str, int]:
        """Where `/radius incoming` listens (CoA-Request, Disconnect-Request)."""
        return self._coa.address

    def set_radius(self, host: str, auth_port: int, acct_port: int) -> None:
        """Point the NAS at a RADIUS server (the daemon's ports may be known only later)."""
        self._nas.endpoint = RadiusEndpoint(host, auth_port, acct_port)
        first = self.setup.radius.rows()[0][".id"]
        self.setup.radius.set(first, {"authentication-port": str(auth_port),
                                      "accounting-port": str(acct_port)})

    def drop_api_connections(self) -> None:
        """Close every API connection, as a router does when its API service restarts."""
        self._api.drop_connections()

    # -- what the router shows -----------------------------------------------------------
    def active_hosts(self) -> list[dict[str, str]]:
        """Snapshot of `/ip/hotspot/active` rows as RouterOS prints them."""
        return self._table.rows()

    def seen_hosts(self) -> list[dict[str, str]]:
        """Snapshot of `/ip/hotspot/host` rows."""
        return self._table.host_rows()

    def session_timeout_of(self, mac: str) -> int | None:
        """The Session-Timeout the active host with `mac` got from RADIUS, if any."""
        session = self._table.find(normalise_mac(mac))
        return session.session_timeout if session else None

    def rate_limit_of(self, mac: str) -> str | None:
        """The Mikrotik-Rate-Limit the active host with `mac` got from RADIUS, if any."""
        session = self._table.find(normalise_mac(mac))
        return session.rate_limit if session else None

    def resource(self) -> dict[str, str]:
        uptime = format_duration(int(self._clock() - self._booted_at))
        return {
            "uptime": uptime, "version": ROUTEROS_VERSION, "build-time": "2024-10-10 09:52:13",
            "free-memory": "180092928", "total-memory": "268435456", "cpu": "ARMv7",
            "cpu-count": "4", "cpu-frequency": "716", "cpu-load": "3",
            "architecture-name": "arm", "board-name": "hotspotd simulator",
            "platform": "MikroTik",
        }

    def status_app(self) -> Flask:
        """A tiny web page listing the active hosts (GET /, GET /active.json)."""
        return create_status_app(self)

    # -- hotspot actions -------------------------------------------------------------------
    def add_host(self, mac: str, ip: str) -> None:
        """A device joined the network and the hotspot saw it (not logged in)."""
        self._table.see_host(normalise_mac(mac), ip, self.hotspot_server)

    def remove_host(self, mac: str) -> bool:
        """The device left the network: `/ip/hotspot/host` no longer lists it."""
        return self._table.forget_host(normalise_mac(mac))

    def login_host(self, *, user: str, password: str, mac: str, ip: str) -> Session:
        """Log a host in through RADIUS, as `/ip/hotspot/active/login` does.

        Raises CommandTrap with the message RouterOS would give when the login fails.
        """
        mac = self._mac_of(mac, ip)
        try:
            self._table.ensure_not_active(mac)
        except AlreadyLoggedIn:
            raise CommandTrap("already logged in") from None
        self._table.see_host(mac, ip, self.hotspot_server)
        session = self._new_session(user, mac, ip)
        result = self._nas.authenticate(session, password, self.login_method)
        if not result.responded:
            raise CommandTrap(NOT_RESPONDING)
        if not result.accepted:
            raise CommandTrap(result.reply_message or REJECTED)
        session.session_timeout = result.session_timeout
        session.idle_timeout = result.idle_timeout
        session.rate_limit = result.rate_limit
        session.total_limit = result.total_limit
        session.radius_class = result.radius_class
        session.interim_interval = self.interim_interval or result.interim_interval
        session.logged_in_at = self._clock()
        try:
            self._table.add(session)
        except AlreadyLoggedIn:
            raise CommandTrap("already logged in") from None
        log.info("hotspot login %s (%s, %s) session-timeout=%s", user, mac, ip,
                 session.session_timeout)
        self._nas.account("Start", session, session.logged_in_at)
        return session

    def remove_session(self, session_id: str, cause: str = "Admin-Reset") -> Session | None:
        """End the session with `.id` `session_id`; send Accounting Stop with `cause`."""
        session = self._table.remove_by_id(session_id)
        if session is not None:
            self._end(session, cause)
        return session

    def tick(self) -> None:
        """Expire sessions whose time is up and send due Interim-Updates."""
        now = self._clock()
        for session in self._table.expire(now):
            self._end(session, "Session-Timeout", now)
        for session in self._table.due_interims(now):
            self._nas.account("Interim-Update", session, now)

    def reboot(self) -> None:
        """An unclean reboot: every active session and its counters are lost, API
        connections drop; the router then sends Accounting-On. Hosts stay seen, as devices
        reconnect at once."""
        self.reboots += 1
        self._table.clear_sessions()
        self._api.drop_connections()
        self._booted_at = self._clock()
        log.info("router rebooted (%s)", self.reboots)
        self._nas.account_on()

    def total_limit_of(self, mac: str) -> int | None:
        """The data cap (Mikrotik-Total-Limit + gigawords) of the host's session, if any."""
        session = self._table.find(normalise_mac(mac))
        return session.total_limit if session else None

    def idle_timeout_of(self, mac: str) -> int | None:
        session = self._table.find(normalise_mac(mac))
        return session.idle_timeout if session else None

    # -- internals ---------------------------------------------------------------------
    def _answer_command(self, command: Command) -> Result:
        """Run an API command, unless a fault switched on at run time gets in the way."""
        if self.faults.hit("api_timeout"):
            raise NoAnswer()
        if self.faults.hit("api_trap"):
            raise CommandTrap("simulated failure", 4)
        if command.path in WRITE_COMMANDS and self.faults.hit("silent_write"):
            log.info("API %s answered but not applied (fault injected)", command.path)
            return Result()
        return self._commands(command)

    def _apply_coa(self, code: int, target: CoaTarget, changes: dict[str, object]) -> int | None:
        session = self._table.find_session(target.user_name, target.framed_ip,
                                           target.acct_session_id)
        if session is None:
            return SESSION_NOT_FOUND
        if code == DISCONNECT_REQUEST:
            if self._table.remove_by_id(session.id) is not None:
                self._end(session, "Admin-Reset")
            return None
        apply_changes(session, changes)
        log.info("CoA for %s: %s", session.user, changes)
        return None

    def _check_password(self, user: str, password: str) -> bool:
        return secrets.compare_digest(user.encode(), self._api_user.encode()) and \
            secrets.compare_digest(password.encode(), self._api_password.encode())

    def _mac_of(self, mac: str, ip: str) -> str:
        if not mac:
            found = self._table.mac_for_ip(ip)
            if found is None:
                raise CommandTrap("no such host")
            return found
        try:
            return normalise_mac(mac)
        except ValueError:
            raise CommandTrap(f"value of mac-address is invalid: {mac}", 1) from None

    def _new_session(self, user: str, mac: str, ip: str) -> Session:
        with self._counter_lock:
            acct_session_id = next(self._session_ids)
            nas_port = next(self._nas_ports)
        login_by = "mac" if user.upper() == mac else f"http-{self.login_method}"
        return Session(user=user, mac=mac, ip=ip, server=self.hotspot_server,
                       login_by=login_by, acct_session_id=acct_session_id,
                       nas_port=nas_port, logged_in_at=self._clock())

    def _end(self, session: Session, cause: str, now: float | None = None) -> None:
        log.info("hotspot logout %s (%s): %s", session.user, session.mac, cause)
        self._nas.account("Stop", session, self._clock() if now is None else now, cause)

    def _timer_loop(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # keep the router's timers alive whatever one tick did
                log.exception("hotspot timer tick failed")


def apply_changes(session: Session, changes: dict[str, object]) -> None:
    """Apply a CoA's attributes. A Session-Timeout counts from the login, as in an
    Access-Accept (unconfirmed on real RouterOS; hotspotd sends elapsed + remaining, which
    is right under either reading and the expiry enforcer bounds the other)."""
    if "Session-Timeout" in changes:
        session.session_timeout = int(changes["Session-Timeout"])  # type: ignore[call-overload]
    if "Idle-Timeout" in changes:
        session.idle_timeout = int(changes["Idle-Timeout"])  # type: ignore[call-overload]
    if "Mikrotik-Rate-Limit" in changes:
        session.rate_limit = str(changes["Mikrotik-Rate-Limit"])
    if "Mikrotik-Total-Limit" in changes:
        low = int(changes["Mikrotik-Total-Limit"])  # type: ignore[call-overload]
        high = int(changes.get("Mikrotik-Total-Limit-Gigawords") or 0)  # type: ignore[call-overload]
        session.total_limit = high * 2**32 + low
