"""Start and stop (issue 13): SIGTERM ends the real daemon cleanly well within systemd's
patience, and the long upkeep a stop would otherwise wait for (a scheduled backup of a
year of payments, the retention sweep) gives way to it. bench/start_stop.py measures the
same with a million payments."""

from __future__ import annotations

import contextlib
import http.client
import socket
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.appliance import running_appliance
from support.daemon import Daemon
from support.wait import wait_until

from hotspotd.httpserver import ServedApp
from hotspotd.ops import backup
from hotspotd.ops.lock import is_locked
from hotspotd.store.db import Database, interrupted_when

STOP_TARGET_SECONDS = 2.0  # issue 13: SIGTERM to exit


class StopAfter(threading.Event):
    """A stop that comes after `looks` looks at it: in the middle of a backup, every run."""

    def __init__(self, looks: int) -> None:
        super().__init__()
        self.looks = looks

    def is_set(self) -> bool:
        self.looks -= 1
        if self.looks < 0:
            self.set()
        return super().is_set()


def seeded_database(path: Path, payments: int) -> Database:
    db = Database(path).open()
    now = time.time()
    with db.write() as conn:
        conn.execute("INSERT INTO plans (id, name, price, duration_seconds, created_at)"
                     " VALUES (1, '1 hour', 20, 3600, ?)", (now,))
        conn.executemany(
            "INSERT INTO payments (public_id, plan_id, mac, phone, amount, status, push_state,"
            " receipt, created_at) VALUES (?, 1, 'AA:00:00:00:00:01', '254700000000', 20,"
            " 'completed', 'sent', ?, ?)", ((f"p{i}", f"R{i:09d}", now) for i in range(payments)))
    return db


def test_a_backup_abandoned_by_a_stop_mid_copy_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = seeded_database(tmp_path / "hotspotd.sqlite3", 3_000)
    monkeypatch.setattr(backup, "STEP_PAGES", 4)  # ~100 steps; the stop comes at the 5th
    destination = tmp_path / "backups" / "b.sqlite3"
    stop = StopAfter(5)
    with pytest.raises(backup.BackupCancelled):
        backup.backup_database(db.path, destination, stop=stop)
    assert stop.looks < 0, "the copy was not looked at between steps"
    assert list(destination.parent.iterdir()) == []  # neither the backup nor the .partial
    info = backup.backup_database(db.path, destination, stop=threading.Event())
    assert info.payments == 3_000 and info.path == destination  # not stopped: a backup
    db.close()


def test_a_stepped_backup_is_one_snapshot_while_payments_are_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied a few pages at a time, inside one read transaction: every payment written
    during the copy is either wholly in it (with its grant) or not at all."""
    db = seeded_database(tmp_path / "hotspotd.sqlite3", 3_000)
    monkeypatch.setattr(backup, "STEP_PAGES", 2)
    stop, written = threading.Event(), [0]

    def writer() -> None:
        writes = Database(db.path)
        while not stop.is_set():
            with writes.write() as conn:
                payment = conn.execute(
                    "INSERT INTO payments (public_id, plan_id, mac, phone, amount, status,"
                    " push_state, receipt, created_at) VALUES (?, 1, 'BB:00:00:00:00:01',"
                    " '254700000001', 20, 'completed', 'sent', ?, 0)",
                    (f"w{written[0]}", f"W{written[0]:09d}")).lastrowid
                conn.execute("INSERT INTO grants (mac, plan_id, payment_id, source, seconds,"
                             " starts_at, expires_at, created_at) VALUES ('BB:00:00:00:00:01',"
                             " 1, ?, 'stk', 3600, 0, 3600, 0)", (payment,))
            written[0] += 1
        writes.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 10:
            time.sleep(0.01)
        info = backup.backup_database(db.path, tmp_path / "b.sqlite3", stop=threading.Event())
        during = written[0]
    finally:
        stop.set()
        thread.join()
    assert during > 10
    copy = sqlite3.connect(info.path)
    new, grants = copy.execute("SELECT (SELECT COUNT(*) FROM payments WHERE public_id LIKE"
                               " 'w%'), (SELECT COUNT(*) FROM grants)").fetchone()
    copy.close()
    assert new == grants and 10 <= new <= written[0]
    assert info.payments == 3_000 + new
    db.close()


def test_a_long_statement_is_interrupted_when_the_daemon_stops() -> None:
    """The check of a backup and the retention sweep run like this: a stop ends them."""
    conn = sqlite3.connect(":memory:")
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with (pytest.raises(sqlite3.OperationalError, match="interrupted"),
          interrupted_when(stop, conn, poll=0.05)):
        conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                     " WHERE i < 2000000000) SELECT COUNT(*) FROM n").fetchone()
    assert time.monotonic() - started < 5  # the count alone takes minutes
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection still serves
    conn.close()


def test_stopping_the_appliance_abandons_its_scheduled_backup(tmp_path: Path) -> None:
    with running_appliance(tmp_path) as appliance:
        assert not appliance.ops.stopping.is_set()
        assert appliance.ops.backup_now() is not None
    assert appliance.ops.stopping.is_set()  # set by the stop, before it waits for jobs
    assert appliance.ops.backup_now() is None  # a backup running at a stop gives way
    assert len(list((tmp_path / "backups").iterdir())) == 1


def test_sigterm_stops_the_real_daemon_cleanly_within_two_seconds(tmp_path: Path) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = tmp_path / "notify"
    notify.bind(str(notify_path))
    notify.settimeout(5)
    try:
        with Daemon(tmp_path / "data") as daemon:
            daemon.start(env={"NOTIFY_SOCKET": str(notify_path)})
            assert daemon.get("/healthz?live").status_code == 200
            assert b"READY=1" in notify.recv(4096)
            started = time.monotonic()
            code = daemon.stop(timeout=30)
            seconds = time.monotonic() - started
            assert b"STOPPING=1" in notify.recv(4096)
            log = daemon.log_text()
    finally:
        notify.close()
    assert code == 0 and "hotspotd stopped" in log
    assert seconds < STOP_TARGET_SECONDS, f"SIGTERM to exit took {seconds:.2f} s"
    assert not is_locked(tmp_path / "data")
    assert not Path(str(daemon.database_path) + "-wal").exists(), "database not closed"


def test_a_listener_stops_without_waiting_out_its_long_polls() -> None:
    """A venue always has portal pages waiting on live status (up to 20 s each): the stop
    tells them their client is gone rather than wait 2 s for them (then cut them off)."""
    served: list[str] = []

    def long_poll(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        gone = environ["waitress.client_disconnected"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not gone():
            time.sleep(0.05)
        served.append("gone" if gone() else "timed out")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    app = ServedApp(long_poll, threads=4, name="long-poll").start()
    waiting = [threading.Thread(target=_get_quietly, args=(app.url,)) for _ in range(3)]
    for thread in waiting:
        thread.start()
    wait_until(lambda: app._server.task_dispatcher.active_count == 3, interval=0.02,
               message="the three long polls to be served")
    started = time.monotonic()
    app.stop()
    seconds = time.monotonic() - started
    for thread in waiting:
        thread.join(10)
    assert served == ["gone"] * 3
    assert seconds < 1.5, f"the stop took {seconds:.2f} s"


def _get_quietly(url: str) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):  # dropped at the stop
        urllib.request.urlopen(url, timeout=30).read()
