"""The hub's listener: a WSGI app over HTTPS (TLS in-process), bounded threads and deadlines.

The appliance's waitress listener (hotspotd/httpserver.py) speaks no TLS, and the hub must
be HTTPS by itself (appliance keys cross the internet), so this is the standard library's
WSGI server wrapped in an `ssl` context: each connection is handled by a worker thread (at
most `threads` at once; more wait in the kernel's accept queue), the TLS handshake happens
in that worker, and every socket read has a deadline so a silent client frees its thread.
Plain HTTP only when the configuration allows it (loopback + insecure_http, see config.py).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 30.0


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        log.debug("%s %s", self.address_string(), format % args)


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], threads: int,
                 context: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._slots = threading.BoundedSemaphore(threads)
        self._context = context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        sock.settimeout(READ_TIMEOUT_SECONDS)
        if self._context is not None:  # handshake in the worker thread, on first read
            sock = self._context.wrap_socket(sock, server_side=True,
                                             do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()  # all workers busy: stop accepting, the kernel queues
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class HubListener:
    """One WSGI app on one address; `start()` serves in a thread, `stop()` ends it."""

    def __init__(self, app: Callable[..., Any], host: str, port: int, *, threads: int,
                 context: ssl.SSLContext | None) -> None:
        self._server = _ThreadedWSGIServer((host, port), threads, context)
        self._server.set_app(app)
        self.host, self.port = host, self._server.server_address[1]
        self.scheme = "https" if context is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.5,),
                                        name="hub-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"

    def start(self) -> HubListener:
        self._thread.start()
        log.info("hub listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) how the hub is doing; nothing when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("cannot notify systemd: %s", exc)
