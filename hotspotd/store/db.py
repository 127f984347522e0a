"""The SQLite store: one file in WAL mode, one connection per thread, explicit transactions.

Writers that read before they write use `Database.write()`, which opens the transaction
with `BEGIN IMMEDIATE` so two threads can never both read a pending payment and both grant
it: the second waits for the first to commit (busy timeout) and then sees its result.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hotspotd.store.migrations import apply_migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


class Database:
    """The appliance's database. Safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def open(self) -> Database:
        """Create the file if needed, switch to WAL and bring the schema up to date."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.connection()
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode})")
        applied = apply_migrations(conn)
        if applied:
            log.info("database %s migrated to version %s", self.path, applied[-1])
        return self

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; transactions are explicit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A read-then-write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on error."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.connection().execute(sql, params).fetchone()

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


@contextmanager
def interrupted_when(stop: threading.Event, conn: sqlite3.Connection,
                     poll: float = 0.2) -> Iterator[None]:
    """Run long statements on `conn` (a backup's check, a retention sweep) that a stop can
    cut short: once `stop` is set, the running statement ends with `sqlite3.OperationalError`
    ("interrupted"; a write transaction is rolled back), looked at every `poll` seconds."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(poll):
            if stop.is_set():
                conn.interrupt()
                return

    watcher = threading.Thread(target=watch, name="interrupt-on-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
