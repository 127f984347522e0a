"""The hub's PostgreSQL store: connections from a DSN and numbered, forward-only migrations.

PostgreSQL is the hub's engine because it already does what a hub needs (concurrent writers,
row locks, replication by its own means): nothing here re-implements any of it. A migration
is a `NNNN_name.sql` file in `hotspotd/hub/sql/`, applied in its own transaction with the
row recording it (as the appliance's `hotspotd/store/migrations.py` does for SQLite), under
an advisory lock so two hub processes starting together cannot both apply one.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).with_name("sql")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
MIGRATION_LOCK = 0x686F7473  # pg_advisory_xact_lock key ("hots")


class HubStoreError(Exception):
    """The hub's database cannot be reached or is at a schema this hub does not know."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for path in sorted(SQL_DIR.iterdir()):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise HubStoreError(f"two hub migrations share a number: {versions}")
    return found


def apply_migrations(conn: psycopg.Connection) -> list[int]:
    """Apply, in number order, every migration the database has not recorded yet."""
    done = []
    for migration in available_migrations():
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER"
                         " PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION"
                         " NOT NULL)")
            applied = {row["version"] for row in conn.execute(
                "SELECT version FROM schema_migrations").fetchall()}
            newest = max(m.version for m in available_migrations())
            if applied and max(applied) > newest:
                raise HubStoreError(f"hub schema version {max(applied)} is newer than this"
                                    f" hotspotd ({newest}): refusing to run an older release")
            if migration.version in applied:
                continue
            conn.execute(migration.sql.encode())  # no parameters: one script, many statements
            conn.execute("INSERT INTO schema_migrations (version, name, applied_at)"
                         " VALUES (%s, %s, %s)", (migration.version, migration.name,
                                                  time.time()))
        done.append(migration.version)
    return done


class HubStore:
    """Connections to the hub's database: a small pool, one transaction per `transaction()`.

    Each connection is taken for one unit of work and given back; a broken one (the server
    restarted) is dropped, so the next request opens a fresh one.
    """

    def __init__(self, dsn: str, *, max_connections: int = 8,
                 connect_timeout: float = 5.0) -> None:
        self.dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._connect_timeout = connect_timeout
        self._closed = False

    def open(self) -> HubStore:
        """Check the server answers and bring the schema up to date."""
        with self.connection() as conn:
            applied = apply_migrations(conn)
        if applied:
            log.info("hub database migrated to version %s", applied[-1])
        return self

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row,
                                   connect_timeout=max(1, int(self._connect_timeout)))
        except psycopg.OperationalError as exc:
            raise HubStoreError(f"cannot connect to the hub database: {exc}".strip()) from exc

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection for one unit of work (autocommit; use `conn.transaction()`)."""
        if not self._slots.acquire(timeout=30):
            raise HubStoreError("no free hub database connection within 30 s")
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                yield conn
            except BaseException:
                if conn.broken or conn.closed:
                    conn.close()
                    conn = None
                raise
            finally:
                if conn is not None and not conn.closed:
                    if self._closed:
                        conn.close()
                    else:
                        self._idle.put(conn)
        finally:
            self._slots.release()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        with self.connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
