"""Limits that keep one hostile client from starving a waitress listener.

Anyone on the venue WiFi reaches the portal's listener, so none of its resources may be
held by one client for long. Waitress already refuses oversized headers (431) and bodies
(413, as soon as a Content-Length is over the limit or chunked data passes it, without
reading the rest); what it lacks is added here by subclassing its server and channel:

- a per-client connection cap: a source address holding `connections_per_client` open
  connections has its next ones closed as soon as they are accepted;
- deadlines that a slow client cannot stretch: the headers of a request must be complete
  within `header_seconds` of their first byte, its body within `body_seconds` of the
  headers (waitress's own `channel_timeout` restarts at every byte, so a client trickling
  one byte every few seconds would hold a connection for ever);
- an idle deadline: a connection with nothing in flight (a kept-alive one, or one that
  never sent a byte) is closed after `idle_seconds`.

Every closing and refusal is counted (`ListenerCounters`); `ListenerCollector` shows the
counts on `/metrics` (hotspotd_http_limited_total) with each listener's open connections.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge, RequestHeaderFieldsTooLarge

from hotspotd.daraja.sources import Network, parse_networks

# What the counters count, by name (the label of hotspotd_http_limited_total).
OVER_CLIENT_CAP = "over_client_cap"  # a new connection refused: its client holds too many
HEADER_DEADLINE = "header_deadline"  # headers not complete within header_seconds
BODY_DEADLINE = "body_deadline"  # body not complete within body_seconds of the headers
IDLE = "idle"  # nothing in flight for idle_seconds (kept-alive or silent connection)
BODY_TOO_LARGE = "body_too_large"  # answered 413
HEADER_TOO_LARGE = "header_too_large"  # answered 431
REASONS = (OVER_CLIENT_CAP, HEADER_DEADLINE, BODY_DEADLINE, IDLE, BODY_TOO_LARGE,
           HEADER_TOO_LARGE)


@dataclass(frozen=True)
class ListenerLimits:
    """What one client may hold of a listener. The defaults fit a venue's portal."""

    connections_per_client: int = 20
    header_seconds: float = 10.0
    body_seconds: float = 30.0
    idle_seconds: float = 15.0
    max_body_bytes: int = 64 * 1024
    max_header_bytes: int = 16 * 1024
    max_connections: int = 500
    # Sources not capped per client: reverse proxies / tunnel ends that carry many
    # clients' connections (the configured trusted proxies).
    uncapped: tuple[Network, ...] = field(default=())

    @classmethod
    def from_config(cls, config: Any) -> ListenerLimits:
        """The limits of `[web]`; the trusted proxies of `[web]` and `[daraja]` uncapped."""
        web = config.web
        return cls(connections_per_client=web.connections_per_client,
                   header_seconds=web.header_timeout_seconds,
                   body_seconds=web.body_timeout_seconds,
                   idle_seconds=web.idle_timeout_seconds,
                   max_body_bytes=web.max_body_bytes, max_header_bytes=web.max_header_bytes,
                   max_connections=web.max_connections,
                   uncapped=parse_networks((*web.trusted_proxies,
                                                   *config.daraja.trusted_proxies)))

    def is_capped(self, address: str) -> bool:
        if not self.uncapped:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return True
        return not any(ip in network for network in self.uncapped)

    def adjustments(self) -> dict[str, Any]:
        """Waitress's own settings that carry these limits (its checks are `>=`)."""
        return {"max_request_body_size": self.max_body_bytes + 1,
                "max_request_header_size": self.max_header_bytes + 1,
                # a body that may be accepted never goes to a temporary file
                "inbuf_overflow": max(self.max_body_bytes + 1, 65536),
                "connection_limit": self.max_connections,
                "cleanup_interval": 1,  # how often the deadlines are checked (s)
                "channel_timeout": max(1, round(self.idle_seconds))}


class ListenerCounters:
    """Thread-safe counts of what the limits closed or refused, by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {reason: self._counts[reason] for reason in REASONS}


class CountingErrorTask(ErrorTask):
    """Waitress's error answer, counted when it is a 413 or a 431."""

    def execute(self) -> None:
        error = self.request.error
        if isinstance(error, RequestEntityTooLarge):
            self.channel.server.counters.add(BODY_TOO_LARGE)
        elif isinstance(error, RequestHeaderFieldsTooLarge):
            self.channel.server.counters.add(HEADER_TOO_LARGE)
        super().execute()


class LimitedChannel(HTTPChannel):
    """An HTTP connection that remembers when its request in progress began."""

    error_task_class = CountingErrorTask
    server: LimitedServer
    request_began: float | None = None  # monotonic time of the request's first byte
    headers_ended: float | None = None  # ... and of the end of its headers

    def __init__(self, server: LimitedServer, sock: Any, addr: Any, adj: Any,
                 map: Any = None) -> None:
        self.client = str(addr[0]) if addr else ""  # known before waitress registers us
        super().__init__(server, sock, addr, adj, map=map)

    def add_channel(self, map: Any = None) -> None:
        super().add_channel(map)
        self.server.clients[self.client] += 1

    def del_channel(self, map: Any = None) -> None:
        counted = self._fileno in self.server.active_channels
        super().del_channel(map)
        if counted:
            self.server.forget_client(self.client)

    def received(self, data: bytes) -> bool:
        before = self.request
        result = bool(super().received(data))
        request, now = self.request, time.monotonic()
        if request is None:
            self.request_began = self.headers_ended = None
        else:
            if request is not before:
                self.request_began, self.headers_ended = now, None
            if request.headers_finished and self.headers_ended is None:
                self.headers_ended = now
        return result

    def send_continue(self) -> None:
        # A request already refused (413: Content-Length over the limit) is answered at
        # once; waitress would first invite the client to send the body it will refuse.
        if self.request is not None and self.request.error is not None:
            return
        super().send_continue()

    def overdue(self, limits: ListenerLimits, now: float, wall_now: float) -> str | None:
        """Why this connection must be closed now, or None."""
        if self.requests or self.will_close:
            return None  # a request is being served: the app's time, not the client's
        if self.headers_ended is not None:
            return BODY_DEADLINE if now - self.headers_ended > limits.body_seconds else None
        if self.request_began is not None:
            return HEADER_DEADLINE if now - self.request_began > limits.header_seconds else None
        return IDLE if wall_now - self.last_activity > limits.idle_seconds else None


class LimitedServer(TcpWSGIServer):
    """Waitress's TCP server with a per-client connection cap and read deadlines."""

    channel_class = LimitedChannel

    def __init__(self, *args: Any, limits: ListenerLimits, counters: ListenerCounters,
                 **kwargs: Any) -> None:
        self.limits = limits
        self.counters = counters
        self.clients: Counter[str] = Counter()  # open connections by source address
        super().__init__(*args, **kwargs)

    def forget_client(self, client: str) -> None:
        self.clients[client] -= 1
        if self.clients[client] <= 0:
            del self.clients[client]

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
        except OSError:
            return
        if accepted is None:
            return
        conn, addr = accepted
        client = str(addr[0])
        if (self.clients[client] >= self.limits.connections_per_client
                and self.limits.is_capped(client)):
            self.counters.add(OVER_CLIENT_CAP)
            conn.close()
            return
        try:
            self.set_socket_options(conn)
        except OSError:  # the client is already gone
            conn.close()
            return
        self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)

    def maintenance(self, now: float) -> None:
        """Runs every `cleanup_interval` from the loop: close what overstayed."""
        monotonic = time.monotonic()
        for channel in list(self.active_channels.values()):
            reason = channel.overdue(self.limits, monotonic, now)
            if reason is not None:
                channel.will_close = True
                self.counters.add(reason)



class ListenerCollector(Collector):
    """`/metrics` for listeners (anything with `name`, `counters`, `open_connections`):
    what their limits closed or refused, and their open connections now."""

    def __init__(self, listeners: Callable[[], Iterable[Any]]) -> None:
        self._listeners = listeners

    def collect(self) -> Iterator[Metric]:
        limited = CounterMetricFamily(
            "hotspotd_http_limited", "Connections a listener's limits closed or refused, and"
            " requests refused as too large, by listener and reason.",
            labels=["listener", "reason"])
        open_now = GaugeMetricFamily("hotspotd_http_open_connections",
                                     "Connections open on a listener.", labels=["listener"])
        for listener in self._listeners():
            if listener is None:
                continue
            for reason, count in listener.counters.snapshot().items():
                limited.add_metric([listener.name, reason], count)
            open_now.add_metric([listener.name], listener.open_connections)
        yield limited
        yield open_now
