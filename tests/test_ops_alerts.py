"""Owner alerts: conditions, rate limiting, the SMS (Africa's Talking) and e-mail backends
over real sockets, customer receipts."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotspotd.config import ConfigError, load_config
from hotspotd.httpserver import ServedApp
from hotspotd.ops.alerts import AlertMonitor, AlertOptions
from hotspotd.ops.notifiers import (
    AfricasTalkingSms,
    EmailNotifier,
    LogNotifier,
    NotifyError,
    build_notifier,
)
from hotspotd.ops.sms_simulator import SmsSimulator
from hotspotd.store.db import Database

OWNER = "254711222333"


@pytest.fixture
def sms() -> Iterator[tuple[SmsSimulator, str]]:
    simulator = SmsSimulator(username="venue", api_key="at-key-123")
    served = ServedApp(simulator.app(), "127.0.0.1", 0, threads=2, name="sms").start()
    yield simulator, served.url
    served.stop()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def stuck_router(db: Database, now: float) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO router_ops (mac, action, state, attempts, next_attempt_at,"
                     " last_error, created_at) VALUES ('AA:00:00:00:00:09', 'login', 'pending',"
                     " 4, ?, 'timed out', ?)", (now + 60, now - 600))


def test_sms_backend_talks_africas_talking(sms: tuple[SmsSimulator, str]) -> None:
    simulator, url = sms
    notifier = AfricasTalkingSms(base_url=url, username="venue", api_key="at-key-123",
                                 sender="HOTSPOT")
    notifier.send([OWNER], "router unreachable", "3 changes waiting")
    assert simulator.messages == [{"to": "+" + OWNER, "from": "HOTSPOT",
                                   "message": "router unreachable: 3 changes waiting"}]
    with pytest.raises(NotifyError, match="HTTP 401"):
        AfricasTalkingSms(base_url=url, username="venue", api_key="wrong").send(
            [OWNER], "x", "y")
    with pytest.raises(NotifyError, match="refused"):
        notifier.send(["12345"], "x", "y")


def test_alerts_are_sent_once_repeated_late_and_resolved(
        tmp_path: Path, db: Database, sms: tuple[SmsSimulator, str]) -> None:
    simulator, url = sms
    clock = Clock()
    notifier = AfricasTalkingSms(base_url=url, username="venue", api_key="at-key-123")
    monitor = AlertMonitor(db, notifier, AlertOptions(recipients=(OWNER,),
                                                      repeat_seconds=3600),
                           data_dir=tmp_path, now=clock)
    assert monitor.run_once()["router_unreachable"] is None
    stuck_router(db, clock.now)
    found = monitor.run_once()
    assert "1 router change(s) waiting for 600 s; last error: timed out" in \
        str(found["router_unreachable"])
    assert len(simulator.messages) == 1
    clock.now += 600
    monitor.run_once()
    assert len(simulator.messages) == 1  # rate limited
    clock.now += 3600
    monitor.run_once()
    assert len(simulator.messages) == 2  # repeated after repeat_minutes
    with db.write() as conn:
        conn.execute("UPDATE router_ops SET state = 'done'")
    monitor.run_once()
    assert simulator.messages[-1]["message"].startswith("resolved: router unreachable")
    state = db.query_one("SELECT * FROM alert_state WHERE key = 'router_unreachable'")
    assert state["active"] == 0 and state["sent_count"] == 3


def test_a_failed_delivery_is_retried_next_run(tmp_path: Path, db: Database,
                                               sms: tuple[SmsSimulator, str]) -> None:
    simulator, url = sms
    simulator.fail_next = 1
    clock = Clock()
    monitor = AlertMonitor(db, AfricasTalkingSms(base_url=url, username="venue",
                                                 api_key="at-key-123"),
                           AlertOptions(recipients=(OWNER,)), data_dir=tmp_path, now=clock)
    stuck_router(db, clock.now)
    monitor.run_once()
    assert simulator.messages == []
    clock.now += 60
    monitor.run_once()
    assert len(simulator.messages) == 1


def add_payments(db: Database, statuses: list[str], now: float) -> None:
    with db.write() as conn:
        conn.execute("INSERT OR IGNORE INTO plans (id, name, price, duration_seconds,"
                     " created_at) VALUES (1, 'hour', 20, 3600, 0)")
        for status in statuses:
            conn.execute("INSERT INTO payments (public_id, plan_id, mac, phone, amount, status,"
                         " created_at) VALUES (?, 1, 'AA:00:00:00:00:01', '254700000000', 20,"
                         " ?, ?)", (f"x{uuid.uuid4()}", status, now - 60))


def test_payment_failures_daraja_failures_and_disk(tmp_path: Path, db: Database) -> None:
    clock = Clock()
    monitor = AlertMonitor(db, LogNotifier(), AlertOptions(
        payment_failure_minimum=4, payment_failure_ratio=0.5, daraja_failures=2,
        disk_free_bytes=1), data_dir=tmp_path, now=clock)
    add_payments(db, ["completed", "failed", "expired"], clock.now)
    assert monitor.payments_failing(clock.now) is None  # too few to judge
    add_payments(db, ["failed"], clock.now)
    assert monitor.payments_failing(clock.now) == \
        "3 of the last hour's 4 payments failed or expired."
    with db.write() as conn:
        for kind in ("push.accepted", "push.rejected", "push.uncertain"):
            conn.execute("INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)",
                         (clock.now, kind, '{"reason": "read timed out"}'))
    assert "last 2 STK pushes failed (latest: read timed out)" in \
        str(monitor.daraja_failing(clock.now))
    assert monitor.disk_low(clock.now) is None
    huge = AlertMonitor(db, LogNotifier(), AlertOptions(disk_free_bytes=1 << 60),
                        data_dir=tmp_path, now=clock)
    assert "MB free" in str(huge.disk_low(clock.now))


def test_customer_receipts_follow_completed_payments(
        tmp_path: Path, db: Database, sms: tuple[SmsSimulator, str]) -> None:
    simulator, url = sms
    clock = Clock()
    notifier = AfricasTalkingSms(base_url=url, username="venue", api_key="at-key-123")
    monitor = AlertMonitor(db, notifier, AlertOptions(customer_receipts=True),
                           data_dir=tmp_path, now=clock, receipts=notifier)
    add_payments(db, ["completed"], clock.now)
    with db.write() as conn:
        conn.execute("INSERT INTO events (at, kind, payment_id) VALUES (0, 'payment.settled',"
                     " 1)")
    monitor.run_once()  # first run: starts from now, old customers get nothing
    assert simulator.messages == []
    with db.write() as conn:
        conn.execute("UPDATE payments SET phone = '254733444555', receipt = 'QAB12CD34'")
        conn.execute("INSERT INTO events (at, kind, payment_id) VALUES (1, 'payment.settled',"
                     " 1)")
    monitor.run_once()
    monitor.run_once()
    assert [m["to"] for m in simulator.messages] == ["+254733444555"]
    assert "KES 20 received, M-Pesa QAB12CD34" in simulator.messages[0]["message"]


class _Smtp(socketserver.StreamRequestHandler):
    received: list[str] = []

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        data = False
        lines: list[str] = []
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if data:
                if line == ".":
                    data = False
                    _Smtp.received.append("\n".join(lines))
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line)
                continue
            verb = line.split(" ", 1)[0].upper()
            if verb == "DATA":
                data = True
                self.wfile.write(b"354 go on\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_email_backend_over_smtp() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        notifier = EmailNotifier(host="127.0.0.1", port=server.server_address[1],
                                 starttls=False, user="", password="", sender="hs@venue.ke")
        notifier.send(["owner@venue.ke"], "disk low", "only 12 MB free")
        assert "Subject: [hotspotd] disk low" in _Smtp.received[-1]
        assert "only 12 MB free" in _Smtp.received[-1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        with pytest.raises(NotifyError):
            EmailNotifier(host="127.0.0.1", port=port, starttls=False, user="", password="",
                          sender="hs@venue.ke").send(["owner@venue.ke"], "x", "y")
    finally:
        server.shutdown()
        server.server_close()


def test_build_notifier_by_config() -> None:
    assert isinstance(build_notifier(load_config(None, env={})), LogNotifier)
    with pytest.raises(ConfigError, match=r"\[alerts\] sms_api_key is required"):
        build_notifier(load_config(None, env={}, overrides={"alerts": {
            "backend": "sms", "recipients": [OWNER], "sms_username": "venue"}}))
    email = build_notifier(load_config(None, env={}, overrides={"alerts": {
        "backend": "email", "recipients": ["o@venue.ke"]}}))
    assert isinstance(email, EmailNotifier)
