"""Backups: consistent under write load, restore (refused while running), rotation, CLI."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hotspotd.cli import main
from hotspotd.ops.backup import (
    BackupError,
    backup_database,
    restore_database,
    rotate,
    scheduled_backup,
)
from hotspotd.ops.lock import DataDirBusy, DataDirLock, is_locked
from hotspotd.store.db import Database

SEED_PAYMENTS = 5_000


def seed(db: Database, count: int) -> None:
    """`count` completed payments, each with its one grant, in one transaction."""
    now = time.time()
    with db.write() as conn:
        conn.execute("INSERT INTO plans (id, name, price, duration_seconds, created_at)"
                     " VALUES (1, '1 hour', 20, 3600, ?)", (now,))
        conn.executemany(
            "INSERT INTO payments (id, public_id, plan_id, mac, phone, amount, status,"
            " push_state, receipt, created_at, settled_at) VALUES (?, ?, 1, ?, '254700000000',"
            " 20, 'completed', 'sent', ?, ?, ?)",
            ((i, f"p{i}", f"AA:00:00:00:{i // 256 % 256:02X}:{i % 256:02X}", f"R{i:09d}",
              now, now) for i in range(1, count + 1)))
        conn.execute("INSERT INTO grants (mac, plan_id, payment_id, receipt, source, seconds,"
                     " starts_at, expires_at, created_at) SELECT mac, 1, id, receipt, 'stk',"
                     " 3600, created_at, created_at + 3600, created_at FROM payments")


def write_pair(db: Database, i: int) -> None:
    """One money transaction: a completed payment and its grant, committed together."""
    now = time.time()
    with db.write() as conn:
        cursor = conn.execute(
            "INSERT INTO payments (public_id, plan_id, mac, phone, amount, status, push_state,"
            " receipt, created_at, settled_at) VALUES (?, 1, 'BB:00:00:00:00:01',"
            " '254700000000', 20, 'completed', 'sent', ?, ?, ?)",
            (f"w{i}", f"W{i:09d}", now, now))
        conn.execute("INSERT INTO grants (mac, plan_id, payment_id, receipt, source, seconds,"
                     " starts_at, expires_at, created_at) VALUES ('BB:00:00:00:00:01', 1, ?,"
                     " ?, 'stk', 3600, ?, ?, ?)", (cursor.lastrowid, f"W{i:09d}", now,
                                                   now + 3600, now))


def assert_books_consistent(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        payments = conn.execute("SELECT COUNT(*), SUM(amount) FROM payments WHERE"
                                " status = 'completed'").fetchone()
        grants = conn.execute("SELECT COUNT(*) FROM grants").fetchone()[0]
        orphans = conn.execute("SELECT COUNT(*) FROM payments p LEFT JOIN grants g ON"
                               " g.payment_id = p.id WHERE g.id IS NULL").fetchone()[0]
    finally:
        conn.close()
    assert payments[0] == grants and orphans == 0
    assert payments[1] == 20 * payments[0]
    return int(payments[0])


def test_backup_under_write_load_restores_consistent(tmp_path: Path) -> None:
    db = Database(tmp_path / "live" / "hotspotd.sqlite3").open()
    seed(db, SEED_PAYMENTS)
    stop, written = threading.Event(), [0]

    def writer() -> None:
        writer_db = Database(db.path)
        while not stop.is_set():
            write_pair(writer_db, written[0])
            written[0] += 1
        writer_db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 20:
            time.sleep(0.01)
        infos = [backup_database(db.path, tmp_path / f"b{n}.sqlite3") for n in range(3)]
        during = written[0]
    finally:
        stop.set()
        thread.join()
    assert during > 20, "the writer made no progress during the backups"
    counts = [assert_books_consistent(info.path) for info in infos]
    assert all(SEED_PAYMENTS < count <= SEED_PAYMENTS + written[0] for count in counts)
    assert infos[0].path.stat().st_mode & 0o777 == 0o600
    db.close()

    restored = tmp_path / "restored" / "hotspotd.sqlite3"
    info = restore_database(infos[-1].path, restored, keep_copy_in=tmp_path / "kept")
    assert assert_books_consistent(restored) == counts[-1]
    assert info.payments == counts[-1]
    Database(restored).open().close()  # the daemon opens it (migrations current)


def test_restore_refused_while_running_and_keeps_the_replaced_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = Database(data / "hotspotd.sqlite3").open()
    seed(db, 10)
    backup = backup_database(db.path, tmp_path / "good.sqlite3")
    write_pair(db, 1)
    db.close()
    lock = DataDirLock(data).acquire()
    try:
        assert is_locked(data)
        with pytest.raises(DataDirBusy):
            restore_database(backup.path, data / "hotspotd.sqlite3", keep_copy_in=data / "b")
        with pytest.raises(DataDirBusy):
            DataDirLock(data).acquire()
    finally:
        lock.release()
    assert not is_locked(data)
    restore_database(backup.path, data / "hotspotd.sqlite3", keep_copy_in=data / "b")
    assert assert_books_consistent(data / "hotspotd.sqlite3") == 10
    kept = list((data / "b").glob("hotspotd-pre-restore-*.sqlite3"))
    assert len(kept) == 1 and assert_books_consistent(kept[0]) == 11


def test_restore_rejects_what_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError):
        restore_database(junk, tmp_path / "db.sqlite3", keep_copy_in=tmp_path)
    with pytest.raises(BackupError):
        restore_database(tmp_path / "missing", tmp_path / "db.sqlite3", keep_copy_in=tmp_path)
    assert not (tmp_path / "db.sqlite3").exists()


def test_scheduled_backups_rotate(tmp_path: Path) -> None:
    db = Database(tmp_path / "hotspotd.sqlite3").open()
    seed(db, 5)
    directory = tmp_path / "backups"
    for day in range(5):
        scheduled_backup(db.path, directory, keep=3, now=1_700_000_000 + day * 86400)
    db.close()
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["hotspotd-20231116T221320Z.sqlite3", "hotspotd-20231117T221320Z.sqlite3",
                     "hotspotd-20231118T221320Z.sqlite3"]
    assert rotate(directory, 1) == [directory / names[0], directory / names[1]]


def test_cli_backup_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    config = tmp_path / "hotspotd.toml"
    config.write_text(f'[database]\npath = "{data / "hotspotd.sqlite3"}"\n')
    db = Database(data / "hotspotd.sqlite3").open()
    seed(db, 7)
    db.close()
    assert main(["backup", str(tmp_path / "copy.sqlite3"), "--config", str(config)]) == 0
    assert "7 payments" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "copy.sqlite3"), "--config", str(config)]) == 0
    assert "start hotspotd again" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "nope.sqlite3"), "--config", str(config)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert assert_books_consistent(data / "hotspotd.sqlite3") == 7
