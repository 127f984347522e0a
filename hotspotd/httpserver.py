"""Serve a WSGI app with waitress in a background thread, on a port that may be 0.

Every HTTP listener of the project (the daemon's web, the Daraja simulator, the router
simulator's status page) runs through `ServedApp`, so each can bind port 0 in tests and
report the port it really got, and each holds `ListenerLimits` against a hostile client
(hotspotd/http_limits.py): a per-client connection cap, header/body/idle deadlines and
header/body size limits enforced while reading.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.task import ThreadedTaskDispatcher

from hotspotd.http_limits import LimitedServer, ListenerCounters, ListenerLimits

log = logging.getLogger(__name__)

# How long the server loop sleeps in poll() when nothing happens. Waitress takes an int
# (0.1 became 0: every idle listener spun a CPU core); the deadlines are checked on each
# wake-up, so one second is also their resolution.
LOOP_TIMEOUT_SECONDS = 1
# At a stop, requests still being served this long after the listener stopped accepting are
# told their client is gone: a portal's live-status long poll (up to 20 s) then ends within
# its next check instead of holding the stop for the dispatcher's 2 s.
STOP_GRACE_SECONDS = 0.5


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket, bound before the app exists (so its URL can be known first)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


class ServedApp:
    """One WSGI app on one TCP address, served by waitress in a daemon thread."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0,
                 *, threads: int = 8, name: str = "http",
                 sock: socket.socket | None = None, keep_forwarded_for: bool = False,
                 limits: ListenerLimits | None = None) -> None:
        # keep_forwarded_for: pass X-Forwarded-For through to the app (the M-Pesa callbacks
        # believe it only from their configured proxies); otherwise waitress drops it.
        self.name = name
        self.limits = limits if limits is not None else ListenerLimits()
        self.counters = ListenerCounters()
        listening = sock if sock is not None else bind_tcp(host, port)
        adjustments = Adjustments(threads=threads, ident="hotspotd",
                                  clear_untrusted_proxy_headers=not keep_forwarded_for,
                                  asyncore_loop_timeout=LOOP_TIMEOUT_SECONDS,
                                  asyncore_use_poll=True,  # select() fails past fd 1023
                                  **self.limits.adjustments())
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(threads)
        sockinfo = (listening.family, listening.type, listening.proto, listening.getsockname())
        self._server = LimitedServer(app, {}, True, listening, dispatcher=dispatcher,
                                     adj=adjustments, bind_socket=False, sockinfo=sockinfo,
                                     limits=self.limits, counters=self.counters)
        self.host = str(self._server.effective_host)
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name=f"{name}-server",
                                        daemon=True)

    @property
    def open_connections(self) -> int:
        return len(self._server.active_channels)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServedApp:
        self._thread.start()
        log.info("%s listening on %s", self.name, self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop in an order that never lets a thread touch a closed descriptor: stop
        accepting, let the worker threads finish what they are serving (they write to their
        channels and wake the loop through its trigger; after `STOP_GRACE_SECONDS` the
        connections still served are marked gone, which ends long polls), then close every
        connection and the trigger from inside the server's own loop, and wait for the loop
        to end."""
        server = self._server
        if not self._thread.is_alive():
            self._close_all()
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
            return
        self._in_loop(self._stop_accepting)
        if not self._idle_within(STOP_GRACE_SECONDS):
            self._in_loop(self._hang_up)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=min(timeout, 2.0))
        self._in_loop(self._close_all)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s server loop did not stop within %.0f s", self.name, timeout)

    def _in_loop(self, thunk: Callable[[], None]) -> None:
        """Run `thunk` in the server's loop thread, and wait for it (up to 5 s)."""
        done = threading.Event()

        def run() -> None:
            try:
                thunk()
            finally:
                done.set()

        try:
            self._server.trigger.pull_trigger(run)
        except OSError as error:  # the loop is gone already
            log.debug("%s server loop not reachable (%s); closing from here", self.name, error)
            run()
        done.wait(5.0)

    def _idle_within(self, seconds: float) -> bool:
        """Wait up to `seconds` for the worker threads to finish what they are serving."""
        dispatcher = self._server.task_dispatcher
        deadline = time.monotonic() + seconds
        while dispatcher.active_count or dispatcher.queue:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _hang_up(self) -> None:
        """Mark every connection as gone, without closing it (a worker may still write to
        it): a long poll, which looks at `waitress.client_disconnected` every 0.25 s,
        returns, and what it answers is dropped, as the connection is about to be."""
        for channel in list(self._server._map.values()):  # noqa: SLF001 - waitress's map
            if isinstance(channel, HTTPChannel):
                channel.connected = False

    def _stop_accepting(self) -> None:
        self._server.accepting = False
        self._server.del_channel()
        self._server.socket.close()

    def _close_all(self) -> None:
        for channel in list(self._server._map.values()):  # noqa: SLF001 - waitress's map
            channel.close()
