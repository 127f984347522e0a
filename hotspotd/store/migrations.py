"""Numbered, forward-only schema migrations, recorded in the `schema_migrations` table.

A migration is a `NNNN_name.sql` file in `hotspotd/store/sql/`. Each runs in its own
transaction together with the row that records it, so a crash mid-migration leaves the
database at the previous version.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).with_name("sql")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


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
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                 "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply, in number order, every migration the database has not recorded yet."""
    applied = applied_versions(conn)
    migrations = available_migrations()
    newest_known = max((m.version for m in migrations), default=0)
    if applied and max(applied) > newest_known:
        raise RuntimeError(f"database schema version {max(applied)} is newer than this "
                           f"hotspotd ({newest_known}): refusing to run an older release on it")
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                         "VALUES (?, ?, ?)", (migration.version, migration.name, time.time()))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        done.append(migration.version)
    return done


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3.complete_statement aware)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    leftover = "\n".join(line for line in buffer.splitlines()
                         if line.strip() and not line.strip().startswith("--"))
    if leftover:
        raise RuntimeError(f"incomplete SQL statement in migration: {leftover[:60]}")
    return statements
