"""Upgrades: migrations run at start, forward only, from every earlier schema; a database
from a newer release is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hotspotd.store import migrations
from hotspotd.store.db import Database

ALL = migrations.available_migrations()


@pytest.mark.parametrize("version", [m.version for m in ALL[:-1]])
def test_upgrade_from_every_earlier_schema(tmp_path: Path, version: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite3"
    monkeypatch.setattr(migrations, "available_migrations",
                        lambda: [m for m in ALL if m.version <= version])
    old = Database(path).open()
    with old.write() as conn:  # data written by that release (columns of 0001 only)
        conn.execute("INSERT INTO plans (id, name, price, duration_seconds, created_at)"
                     " VALUES (1, 'hour', 20, 3600, 1.0)")
        conn.execute("INSERT INTO payments (id, public_id, plan_id, mac, phone, amount, status,"
                     " receipt, created_at) VALUES (1, 'p1', 1, 'AA:00:00:00:00:01',"
                     " '254700000000', 20, 'completed', 'R1', 1.0)")
    old.close()
    monkeypatch.undo()

    upgraded = Database(path).open()
    try:
        versions = migrations.applied_versions(upgraded.connection())
        assert versions == {m.version for m in ALL}
        row = upgraded.query_one("SELECT amount, receipt, status FROM payments WHERE id = 1")
        assert tuple(row) == (20, "R1", "completed")
        assert upgraded.query_one("PRAGMA integrity_check")[0] == "ok"
        assert upgraded.query_one("PRAGMA foreign_key_check") is None
    finally:
        upgraded.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    Database(path).open().close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this hotspotd"):
        Database(path).open()
