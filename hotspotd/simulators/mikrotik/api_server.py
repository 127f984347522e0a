"""A RouterOS API server: TCP listener, one thread per connection, login, tags, traps.

Speaks the protocol of shared/reference/mikrotik.md: `/login =name= =password=` in
plaintext (RouterOS >= 6.43), then commands whose replies (`!re`, `!done`, `!trap`) echo
the command's `.tag`. The commands themselves are answered by a `CommandHandler`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .wire import Command, SocketReader, WireError, encode_sentence, read_sentence, reply_words

log = logging.getLogger(__name__)

LOGIN_FAILED = "invalid user name or password (6)"
_HANDSHAKE_TIMEOUT = 5.0  # seconds for a client's TLS hello
_ACCEPT_POLL = 0.2
CATEGORY_GENERAL = 4  # "general failure"
CATEGORY_API = 5  # "API related failure"


class NoAnswer(Exception):
    """Leave the command unanswered (a simulated API timeout)."""


class CommandTrap(Exception):
    """Answer the command with `!trap =message=...` (and `=category=` when given)."""

    def __init__(self, message: str, category: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category


@dataclass
class Result:
    """A successful command: `!re` rows, then `!done` with `done` attributes."""

    rows: list[dict[str, str]] = field(default_factory=list)
    done: dict[str, str] = field(default_factory=dict)


class CommandHandler(Protocol):
    def __call__(self, command: Command) -> Result: ...


class _Connection:
    """One client connection: its socket, reader and login state."""

    def __init__(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.sock = sock
        self.peer = peer
        self.reader = SocketReader(sock)
        self.user: str | None = None
        self._send_lock = threading.Lock()

    def send(self, kind: str, attributes: dict[str, str] | None, tag: str | None) -> None:
        with self._send_lock:
            self.sock.sendall(encode_sentence(reply_words(kind, attributes, tag)))

    def trap(self, message: str, tag: str | None, category: int | None = None) -> None:
        attributes = {"message": message}
        if category is not None:
            attributes = {"category": str(category), **attributes}
        self.send("!trap", attributes, tag)
        self.send("!done", None, tag)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class ApiServer:
    """Accepts API connections and dispatches their commands to `handler`."""

    def __init__(self, *, handler: CommandHandler,
                 check_password: Callable[[str, str], bool],
                 tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls  # api-ssl: every connection is TLS when set
        self._handler = handler
        self._check_password = check_password
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self.address: tuple[str, int] = ("", 0)

    def start(self, host: str, port: int) -> tuple[str, int]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
        listener.settimeout(_ACCEPT_POLL)
        self._listener = listener
        self.address = listener.getsockname()[:2]
        self._stopping.clear()
        self._spawn(self._accept_loop, "routeros-api")
        log.info("RouterOS API simulator listening on %s:%s", *self.address)
        return self.address

    def stop(self, timeout: float = 2.0) -> None:
        """Close the listener and every connection, then wait for the threads."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes a blocked accept() on Linux
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        self.drop_connections()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def drop_connections(self) -> None:
        """Close every client connection (the listener keeps accepting)."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(self._serve, f"routeros-api-{peer[1]}", sock, peer)

    def _serve(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        if self._tls is not None:
            sock.settimeout(_HANDSHAKE_TIMEOUT)
            try:
                sock = self._tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:  # e.g. a plain-text client on api-ssl
                log.info("API TLS handshake with %s:%s failed: %s", *peer, exc)
                sock.close()
                return
        sock.settimeout(None)
        connection = _Connection(sock, peer)
        with self._lock:
            self._connections.add(connection)
        try:
            while not self._stopping.is_set():
                words = read_sentence(connection.reader.read_exactly)
                if words and not self._answer(connection, words):
                    return
        except (WireError, OSError) as exc:
            log.debug("API connection from %s:%s ended: %s", *connection.peer, exc)
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def _answer(self, connection: _Connection, words: list[str]) -> bool:
        """Answer one sentence; False when the connection must close."""
        command = Command.parse(words)
        if command.path == "/quit":
            connection.sock.sendall(encode_sentence(["!fatal", "session terminated on request"]))
            return False
        if command.path == "/login":
            self._login(connection, command)
        elif connection.user is None:
            connection.trap("not logged in", command.tag)
        else:
            self._dispatch(connection, command)
        return True

    def _login(self, connection: _Connection, command: Command) -> None:
        name = command.attributes.get("name", "")
        password = command.attributes.get("password", "")
        if "password" not in command.attributes or not self._check_password(name, password):
            log.info("API login failure for user %r from %s", name, connection.peer[0])
            connection.trap(LOGIN_FAILED, command.tag)
            return
        connection.user = name
        connection.send("!done", None, command.tag)

    def _dispatch(self, connection: _Connection, command: Command) -> None:
        try:
            result = self._handler(command)
        except NoAnswer:
            return
        except CommandTrap as trap:
            connection.trap(trap.message, command.tag, trap.category)
            return
        except WireError as exc:
            connection.trap(str(exc), command.tag, CATEGORY_API)
            return
        except Exception:  # one broken command must not leave the client waiting
            log.exception("API command %s failed", command.path)
            connection.trap("internal error", command.tag, CATEGORY_GENERAL)
            return
        for row in result.rows:
            connection.send("!re", row, command.tag)
        connection.send("!done", result.done or None, command.tag)
