"""The SQLite store: WAL, numbered migrations, and BEGIN IMMEDIATE write transactions."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from hotspotd.store.db import Database
from hotspotd.store.migrations import apply_migrations, available_migrations


def test_database_is_in_wal_mode(db):
    assert db.query_one("PRAGMA journal_mode")[0].lower() == "wal"
    # A second, independent connection sees WAL too: it is a property of the file.
    other = sqlite3.connect(db.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        other.close()


def test_migrations_are_recorded_with_version_and_name(db):
    rows = db.query("SELECT version, name FROM schema_migrations ORDER BY version")
    expected = [(m.version, m.name) for m in available_migrations()]
    assert [(r["version"], r["name"]) for r in rows] == expected
    assert expected[0] == (1, "initial")
    tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"plans", "payments", "grants", "entitlements", "router_ops",
            "unmatched_payments", "radius_sessions", "events"} <= tables


def test_reopening_applies_nothing(db):
    before = [tuple(r) for r in db.query("SELECT * FROM schema_migrations ORDER BY version")]
    path = db.path
    db.close()
    reopened = Database(path).open()
    try:
        after = [tuple(r) for r in reopened.query(
            "SELECT * FROM schema_migrations ORDER BY version")]
        assert after == before  # same rows, same applied_at: nothing ran again
        assert apply_migrations(reopened.connection()) == []
    finally:
        reopened.close()


def test_database_from_a_newer_release_is_refused(db):
    newest = max(m.version for m in available_migrations())  # numbers may have gaps
    with db.write() as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at)"
                     " VALUES (?, 'from_the_future', 0)", (newest + 1,))
    path = db.path
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        Database(path).open()


def test_write_commits_on_success(db):
    with db.write() as conn:
        conn.execute("INSERT INTO devices (mac, first_seen, last_seen)"
                     " VALUES ('AA:BB:CC:DD:EE:01', 1, 1)")
    other = sqlite3.connect(db.path)
    try:
        assert other.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 1
    finally:
        other.close()


def test_write_rolls_back_on_exception(db):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.write() as conn:
        conn.execute("INSERT INTO devices (mac, first_seen, last_seen)"
                     " VALUES ('AA:BB:CC:DD:EE:01', 1, 1)")
        raise Boom()
    assert db.query_one("SELECT COUNT(*) FROM devices")[0] == 0
    assert not db.connection().in_transaction
    # The connection is usable again afterwards.
    with db.write() as conn:
        conn.execute("INSERT INTO devices (mac, first_seen, last_seen)"
                     " VALUES ('AA:BB:CC:DD:EE:02', 1, 1)")
    assert db.query_one("SELECT COUNT(*) FROM devices")[0] == 1


def test_each_thread_gets_its_own_connection(db):
    seen: list[sqlite3.Connection] = []
    worker = threading.Thread(target=lambda: seen.append(db.connection()))
    worker.start()
    worker.join()
    assert seen[0] is not db.connection()


def test_read_then_write_transactions_serialise_across_threads(db):
    with db.write() as conn:
        conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO counter (n) VALUES (0)")
    rounds = 200
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def increment() -> None:
        try:
            start.wait()
            for _ in range(rounds):
                with db.write() as conn:
                    value = conn.execute("SELECT n FROM counter").fetchone()[0]
                    conn.execute("UPDATE counter SET n = ?", (value + 1,))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=increment) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert db.query_one("SELECT n FROM counter")[0] == 2 * rounds
