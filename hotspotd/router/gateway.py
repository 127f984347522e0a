"""The daemon's side of the RouterOS API: log hosts in, list and remove active sessions.

One shared `routeros_api` connection, guarded by one lock. Any error drops the connection;
the next call reconnects. Read-only calls retry once at once when a reused connection
turns out to be dead; `login_host` never retries blindly: it reads the active list back
to learn whether the login took effect. Errors come out as `RouterUnreachable` (no
connection, timeout, closed) or `RouterCommandFailed` (the router's `!trap` message).
The API password never appears in a log line or an exception message.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import routeros_api
from routeros_api import api_communicator, api_socket, base_api, exceptions
from routeros_api.api import RouterOsApi

from hotspotd.macs import normalise_mac
from hotspotd.router.durations import parse_duration

log = logging.getLogger(__name__)

T = TypeVar("T")
ACTIVE = "/ip/hotspot/active"
ALREADY_LOGGED_IN = "already logged in"
NO_SUCH_ITEM = "no such item"
SETUP_MENUS = frozenset({"/radius", "/radius/incoming", "/ip/hotspot", "/ip/hotspot/profile",
                         "/ip/hotspot/walled-garden/ip", "/ip/firewall/nat",
                         "/ip/dhcp-server/option"})


class RouterError(Exception):
    """Something went wrong talking to the router."""


class RouterUnreachable(RouterError):
    """No connection to the router's API: refused, timed out, or closed."""


class RouterCommandFailed(RouterError):
    """The router answered a command with `!trap`; `message` is the router's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RouterLoginFailed(RouterCommandFailed):
    """The router refused the API user name or password."""


@dataclass(frozen=True)
class ActiveHost:
    """One row of `/ip/hotspot/active`. `id` is valid only until the router reboots."""

    id: str
    user: str
    address: str
    mac: str
    uptime_seconds: int
    session_time_left: int | None
    bytes_in: int
    bytes_out: int


def _host_from_row(row: dict[str, str]) -> ActiveHost:
    left = row.get("session-time-left")
    return ActiveHost(
        id=row.get("id", ""), user=row.get("user", ""), address=row.get("address", ""),
        mac=row.get("mac-address", ""), uptime_seconds=parse_duration(row.get("uptime", "0s")),
        session_time_left=parse_duration(left) if left else None,
        bytes_in=int(row.get("bytes-in", "0")), bytes_out=int(row.get("bytes-out", "0")))


class _Pool(routeros_api.RouterOsApiPool):
    """`RouterOsApiPool` that sets TCP_NODELAY before it logs in (API words are tiny)."""

    def get_api(self) -> RouterOsApi:
        if not self.connected:
            self.socket = api_socket.get_socket(
                self.host, self.port, timeout=self.socket_timeout, use_ssl=self.use_ssl,
                ssl_verify=self.ssl_verify, ssl_verify_hostname=self.ssl_verify_hostname,
                ssl_context=self.ssl_context)
            self.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            communicator = api_communicator.ApiCommunicator(base_api.Connection(self.socket))
            self.api = RouterOsApi(communicator)
            for handler in self._get_exception_handlers():
                communicator.add_exception_handler(handler)
            self.api.login(self.username, self.password, self.plaintext_login)
            self.connected = True
        return self.api


def _timed_out(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "timed out" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class RouterGateway:
    """The RouterOS API client the daemon uses; thread-safe, one connection."""

    def __init__(self, *, host: str, port: int = 8728, user: str, password: str,
                 use_tls: bool = False, timeout: float = 5.0, tls_verify: bool = True,
                 tls_ca_file: str | None = None, login_timeout: float | None = None) -> None:
        self.host = host
        self.tls_ca_file = tls_ca_file or None  # the router's own certificate or its CA
        self.port = port
        self.user = user
        self._password = password
        self.use_tls = use_tls
        self.tls_verify = tls_verify
        self.timeout = timeout
        self.login_timeout = login_timeout if login_timeout is not None else 3 * timeout
        self._lock = threading.Lock()
        self._pool: _Pool | None = None

    def __repr__(self) -> str:
        return f"RouterGateway(host={self.host!r}, port={self.port}, user={self.user!r})"

    # -- public API --------------------------------------------------------------------
    def login_host(self, *, mac: str, ip: str, user: str, password: str) -> None:
        """Log a device in (`/ip/hotspot/active/login`); the router asks RADIUS.

        Raises RouterCommandFailed with the router's message when RADIUS rejects the user,
        does not answer, or the device is already logged in.
        """
        mac = normalise_mac(mac)
        arguments = {"user": user, "password": password, "mac-address": mac, "ip": ip}

        def login(api: RouterOsApi) -> None:
            api.get_resource(ACTIVE).call("login", arguments)

        with self._lock:
            try:
                self._run(login, timeout=self.login_timeout)
                return
            except RouterUnreachable as exc:
                failure = exc
            log.warning("login of %s (%s) interrupted: %s; reading the active list back",
                        user, mac, failure)
            if self._is_active_as(mac, user):
                return
            if _timed_out(failure):
                raise failure
            self._retry_login(login, mac, user)

    def active_hosts(self, *, fields: str | None = None) -> list[ActiveHost]:
        """Every row of `/ip/hotspot/active`; `fields` (a `.proplist`, e.g. "mac-address")
        asks the router for only those properties: the rest read as empty."""
        with self._lock:
            return [_host_from_row(row) for row in self._print(ACTIVE, proplist=fields)]

    def present_hosts(self) -> list[tuple[str, str]]:
        """(MAC, IP) of every device the hotspot sees (`/ip/hotspot/host`), logged in or not."""
        with self._lock:
            rows = self._print("/ip/hotspot/host", proplist="mac-address,address")
        return [(row["mac-address"], row.get("address", "")) for row in rows
                if row.get("mac-address")]

    def host_at(self, ip: str) -> str | None:
        """The MAC the hotspot sees at `ip` (`/ip/hotspot/host` `?address=`), or None."""
        with self._lock:
            rows = self._print("/ip/hotspot/host", queries={"address": ip},
                               proplist="mac-address,address")
        macs = {normalise_mac(row["mac-address"]) for row in rows
                if row.get("mac-address") and row.get("address") == ip}
        return macs.pop() if len(macs) == 1 else None  # two hosts on one address: nobody

    def host_ip(self, mac: str) -> str | None:
        """The address of the device with `mac` in `/ip/hotspot/host`, or None when this
        router's hotspot does not see it (it is on another router's WiFi, or gone)."""
        mac = normalise_mac(mac)
        with self._lock:
            rows = self._print("/ip/hotspot/host", queries={"mac-address": mac},
                               proplist="mac-address,address")
        return next((row["address"] for row in rows if row.get("address")), None)

    def find_active(self, mac: str) -> ActiveHost | None:
        """The active session of the device with `mac`, if it has one."""
        with self._lock:
            return self._find_active(normalise_mac(mac))

    def remove_active(self, mac: str) -> bool:
        """Kick the device with `mac`; True if a session was removed.

        The `.id` is read just now and used at once: `.id`s change across reboots.
        """
        mac = normalise_mac(mac)
        with self._lock:
            rows = self._print(ACTIVE, queries={"mac-address": mac}, proplist=".id")
            removed = False
            for row in rows:
                removed = self._remove(row["id"]) or removed
            return removed

    def identity(self) -> str:
        """The router's `/system/identity` name."""
        with self._lock:
            return self._print("/system/identity")[0]["name"]

    def version(self) -> str:
        """The RouterOS version, e.g. `7.16 (stable)`."""
        with self._lock:
            return self._print("/system/resource")[0]["version"]

    def setup_rows(self, menu: str) -> list[dict[str, str]]:
        """Every row of one set-up menu (`hotspotd check`'s drift check; read-only)."""
        if menu not in SETUP_MENUS:
            raise ValueError(f"not a set-up menu: {menu!r}")
        with self._lock:
            return self._print(menu)

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._drop()

    def reconfigure(self, *, host: str, port: int, user: str, password: str,
                    use_tls: bool) -> None:
        """Point at a new address or credentials (the owner's Settings): the open
        connection is closed; the next call connects with the new values."""
        with self._lock:
            self._drop()
            self.host, self.port, self.user, self.use_tls = host, port, user, use_tls
            self._password = password

    # -- internals (the lock is held) ------------------------------------------------------
    def _retry_login(self, login: Callable[[RouterOsApi], None], mac: str, user: str) -> None:
        try:
            self._run(login, timeout=self.login_timeout)
        except RouterCommandFailed as exc:
            if exc.message == ALREADY_LOGGED_IN and self._is_active_as(mac, user):
                return
            raise

    def _is_active_as(self, mac: str, user: str) -> bool:
        host = self._find_active(mac)
        return host is not None and host.user == user

    def _find_active(self, mac: str) -> ActiveHost | None:
        rows = self._print(ACTIVE, queries={"mac-address": mac})
        return _host_from_row(rows[0]) if rows else None

    def _remove(self, session_id: str) -> bool:
        def remove(api: RouterOsApi) -> None:
            api.get_resource(ACTIVE).call("remove", {".id": session_id})

        try:
            self._run(remove)
        except RouterCommandFailed as exc:
            if exc.message == NO_SUCH_ITEM:  # ended between the print and the remove
                return False
            raise
        return True

    def _print(self, path: str, *, queries: dict[str, str] | None = None,
               proplist: str | None = None) -> list[dict[str, str]]:
        arguments = {".proplist": proplist} if proplist else {}

        def print_rows(api: RouterOsApi) -> list[dict[str, str]]:
            return list(api.get_resource(path).call("print", arguments, queries or {}))

        return self._run(print_rows, read_only=True)

    def _run(self, call: Callable[[RouterOsApi], T], *, read_only: bool = False,
             timeout: float | None = None) -> T:
        """Run `call` on the shared connection; on a dead reused connection retry once
        when `read_only`."""
        reused = self._pool is not None
        try:
            return self._attempt(call, timeout)
        except RouterUnreachable:
            if not (read_only and reused):
                raise
            log.info("router connection was dead; reconnecting to %s:%s", self.host, self.port)
        return self._attempt(call, timeout)

    def _attempt(self, call: Callable[[RouterOsApi], T], timeout: float | None) -> T:
        try:
            api = self._connect()
            assert self._pool is not None
            self._pool.set_timeout(timeout or self.timeout)
            return call(api)
        except exceptions.RouterOsApiCommunicationError as exc:
            self._drop()
            raise RouterCommandFailed(self._mask(self._trap_text(exc))) from None
        except (exceptions.RouterOsApiError, OSError) as exc:
            self._drop()
            raise RouterUnreachable(self._mask(
                f"router API {self.host}:{self.port}: {exc or type(exc).__name__}")) from None

    def _tls_context(self) -> ssl.SSLContext | None:
        """With a CA file, verify the router against it (a self-signed api-ssl certificate
        pinned by the owner) instead of the system's authorities."""
        if not self.use_tls or not self.tls_ca_file or not self.tls_verify:
            return None
        try:
            return ssl.create_default_context(cafile=self.tls_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise RouterUnreachable(f"router TLS CA file {self.tls_ca_file}: {exc}") from None

    def _connect(self) -> RouterOsApi:
        if self._pool is not None:
            return self._pool.get_api()
        pool = _Pool(self.host, username=self.user, password=self._password, port=self.port,
                     plaintext_login=True, use_ssl=self.use_tls, ssl_verify=self.tls_verify,
                     ssl_verify_hostname=self.tls_verify, ssl_context=self._tls_context())
        pool.socket_timeout = self.timeout
        try:
            api = pool.get_api()
        except exceptions.RouterOsApiCommunicationError as exc:
            pool.disconnect()
            message = self._mask(self._trap_text(exc))
            log.warning("router %s:%s refused API login for %r: %s",
                        self.host, self.port, self.user, message)
            raise RouterLoginFailed(f"API login as {self.user!r} failed: {message}") from None
        except BaseException:
            pool.disconnect()
            raise
        self._pool = pool
        log.info("connected to router API %s:%s as %r", self.host, self.port, self.user)
        return api

    def _drop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(OSError):
                pool.disconnect()

    @staticmethod
    def _trap_text(exc: exceptions.RouterOsApiCommunicationError) -> str:
        original: Any = exc.original_message
        if isinstance(original, bytes):
            return original.decode("utf-8", errors="replace")
        return str(original)

    def _mask(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text
