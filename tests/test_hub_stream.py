"""The appliance → hub stream end to end over HTTPS: every event exactly once in the hub,
projections equal to the appliance's tables, after hub outages and crashes on both sides."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from support import hub as hub_fixtures
from support.hub import ApplianceSide, HubProcess, sell, wait_for, write_self_signed

from hotspotd.hub.config import HubConfig
from hotspotd.hub.enrolment import create_venue
from hotspotd.hub.link import enrol_appliance
from hotspotd.hub.pgstore import HubStore
from hotspotd.hub.server import HubListener, tls_context
from hotspotd.hub.shipper import Shipper
from hotspotd.hub.web import create_hub_app
from hotspotd.secretbox import SecretBox

pg_cluster, hub_dsn = hub_fixtures.pg_cluster, hub_fixtures.hub_dsn  # fixtures

SALES_KINDS = ("payment", "grant", "device")


def hub_rows(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def hub_shipped(dsn: str) -> int:
    rows = hub_rows(dsn, "SELECT shipped_seq FROM appliances ORDER BY id LIMIT 1")
    return rows[0]["shipped_seq"] if rows else 0


def assert_hub_mirrors(dsn: str, appliance: ApplianceSide) -> None:
    """Every seq once and in order; payments, grants and devices equal the appliance's."""
    seqs = [row["seq"] for row in hub_rows(dsn, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1)), "a seq is missing or repeated at the hub"
    local = appliance.db.query("SELECT seq, kind, body FROM hub_journal ORDER BY seq")
    remote = {row["seq"]: row for row in hub_rows(
        dsn, "SELECT seq, kind, body FROM events")}
    for row in local:  # what the appliance still keeps is what the hub has, byte for byte
        if row["seq"] in remote:
            assert remote[row["seq"]]["body"] == json.loads(row["body"])
    payments = {(r["id"], r["status"], r["receipt"], r["paid_amount"], r["amount"])
                for r in appliance.db.query("SELECT * FROM payments")}
    assert payments == {(r["local_id"], r["status"], r["receipt"], r["paid_amount"],
                         r["amount"]) for r in hub_rows(dsn, "SELECT * FROM payments")}
    grants = {(r["id"], r["mac"], r["receipt"], r["seconds"])
              for r in appliance.db.query("SELECT * FROM grants")}
    assert grants == {(r["local_id"], r["mac"], r["receipt"], r["seconds"])
                      for r in hub_rows(dsn, "SELECT * FROM grants")}
    devices = {r["mac"] for r in appliance.db.query("SELECT mac FROM devices")}
    assert devices == {r["mac"] for r in hub_rows(dsn, "SELECT mac FROM devices")}


def sales_events_at_hub(dsn: str) -> int:
    return hub_rows(dsn, "SELECT COUNT(*) AS n FROM events WHERE kind <> 'health'")[0]["n"]


def test_2000_events_exactly_once_through_hub_and_shipper_kills(
        tmp_path: Path, hub_dsn: str) -> None:
    hub = HubProcess(tmp_path / "hub", hub_dsn).start()
    appliance = ApplianceSide(tmp_path / "appliance", batch_events=20)
    try:
        token = hub.cli("enroll", "--venue", "Cafe A").stdout.strip().splitlines()[-1]
        enrolled = appliance.cli("enroll", "--hub-url", hub.url, "--token", token,
                                 "--ca-file", str(hub.cert))
        assert enrolled.returncode == 0, enrolled.stderr
        appliance.start_shipper()

        def write() -> None:  # 500 sales = 2,000 journal rows, while shipping goes on
            for chunk in range(20):
                sell(appliance.db, 25, start=chunk * 25 + 1)
                time.sleep(0.1)

        writer = threading.Thread(target=write)
        writer.start()
        wait_for(lambda: hub_shipped(hub_dsn) >= 300, timeout=30, message="300 shipped")
        hub.kill()  # SIGKILL mid-stream: its open transaction is rolled back by PostgreSQL
        time.sleep(0.5)
        hub.start()
        for mark in (900, 1300):
            wait_for(lambda m=mark: hub_shipped(hub_dsn) >= m, timeout=30,
                     message=f"{mark} shipped")
            appliance.kill_shipper()  # SIGKILL mid-batch: its ack may not be recorded
            appliance.start_shipper()
        writer.join()
        wait_for(lambda: sales_events_at_hub(hub_dsn) >= 2000, timeout=30,
                 message="every sale's event at the hub")
        appliance.stop_shipper()
        assert sales_events_at_hub(hub_dsn) == 2000
        assert_hub_mirrors(hub_dsn, appliance)
        assert hub.starts == 2 and appliance.starts == 3
    finally:
        appliance.close()
        hub.stop()


@pytest.fixture
def in_process_hub(tmp_path: Path, hub_dsn: str) -> Any:
    """The hub's app on a real HTTPS listener in this process, and a store to enrol with."""
    store = HubStore(hub_dsn).open()
    cert, key = write_self_signed(tmp_path)
    app = create_hub_app(store, HubConfig(dsn=hub_dsn), secure_cookies=True)
    listener = HubListener(app, "127.0.0.1", 0, threads=4,
                           context=tls_context(str(cert), str(key))).start()
    yield SimpleNamespace(store=store, listener=listener, cert=cert, url=listener.url)
    listener.stop()
    store.close()


def settings(**changes: Any) -> SimpleNamespace:
    values = {"ship_interval_seconds": 1.0, "health_interval_seconds": 60,
              "batch_events": 100, "timeout_seconds": 5.0, "backoff_max_seconds": 1,
              "keep_shipped_days": 7}
    return SimpleNamespace(**{**values, **changes})


def test_shipper_thread_ships_health_and_stops_within_a_second(
        tmp_path: Path, in_process_hub: Any, hub_dsn: str) -> None:
    appliance = ApplianceSide(tmp_path / "appliance")
    box = SecretBox.from_key_file(appliance.key_file)
    token = create_venue(in_process_hub.store, "Cafe A")
    enrol_appliance(appliance.db, box, in_process_hub.url, token, str(in_process_hub.cert))
    assert "hub-key-" not in str(appliance.db.query("SELECT * FROM hub_state")[0][:])
    sell(appliance.db, 50)
    shipper = Shipper(settings(), appliance.db, box).start()
    try:
        wait_for(lambda: sales_events_at_hub(hub_dsn) == 200, timeout=10, message="200")
        # The health row is journalled after the 200 sales, so it may come a batch later.
        health = wait_for(lambda: hub_rows(hub_dsn, "SELECT * FROM health"), timeout=10,
                          message="the health snapshot at the hub")
        assert health[0]["payments_waiting"] == 0 and health[0]["version"]
        sell(appliance.db, 1, start=51)
        shipper.wake()
        wait_for(lambda: sales_events_at_hub(hub_dsn) == 204, timeout=5, message="204")
    finally:
        shipper.stop()
    assert not shipper.running()  # stop() waits for the thread, one second at most
    assert_hub_mirrors(hub_dsn, appliance)
    assert appliance.db.query("SELECT last_ok_at FROM hub_state")[0][0] is not None
    appliance.close()


def test_a_hub_that_is_down_costs_only_delay(tmp_path: Path, in_process_hub: Any,
                                             hub_dsn: str, caplog: Any) -> None:
    appliance = ApplianceSide(tmp_path / "appliance")
    box = SecretBox.from_key_file(appliance.key_file)
    enrol_appliance(appliance.db, box, in_process_hub.url,
                    create_venue(in_process_hub.store, "Cafe A"), str(in_process_hub.cert))
    with appliance.db.write() as conn:  # point it at a port where nothing listens
        conn.execute("UPDATE hub_state SET hub_url = 'https://127.0.0.1:9/'")
    sell(appliance.db, 10)
    shipper = Shipper(settings(), appliance.db, box).start()
    try:
        wait_for(lambda: appliance.db.query("SELECT last_error FROM hub_state")[0][0],
                 timeout=5, message="the error recorded")
        sell(appliance.db, 10, start=11)  # selling goes on while the hub is away
        wait_for(lambda: shipper.failed_rounds >= 3, timeout=15, message="three failed rounds")
        failing = [r for r in caplog.records if "hub shipper: failing" in r.getMessage()]
        assert len(failing) == 1  # logged once per change of state, not per attempt
        with appliance.db.write() as conn:
            conn.execute("UPDATE hub_state SET hub_url = ?", (in_process_hub.url,))
        wait_for(lambda: sales_events_at_hub(hub_dsn) == 80, timeout=10, message="caught up")
    finally:
        shipper.stop()
    assert_hub_mirrors(hub_dsn, appliance)
    appliance.close()


@pytest.mark.parametrize("sold_after", [5, 15])
def test_an_appliance_restored_from_a_backup_does_not_lose_new_events(
        tmp_path: Path, in_process_hub: Any, hub_dsn: str, sold_after: int) -> None:
    """The restored appliance numbers new events with seqs the hub already has: fewer than
    the hub holds (answered as a replay) or more (an overlap the hub finds different): both
    are renumbered after the hub's `acked`, none is dropped."""
    appliance = ApplianceSide(tmp_path / "appliance")
    box = SecretBox.from_key_file(appliance.key_file)
    enrol_appliance(appliance.db, box, in_process_hub.url,
                    create_venue(in_process_hub.store, "Cafe A"), str(in_process_hub.cert))
    backup = tmp_path / "backup.sqlite3"
    appliance.db.connection().execute(f"VACUUM INTO '{backup}'")  # before anything shipped
    sell(appliance.db, 10)
    shipper = Shipper(settings(), appliance.db, box).start()
    wait_for(lambda: sales_events_at_hub(hub_dsn) == 40, timeout=10, message="40")
    shipper.stop()
    appliance.db.close()
    backup.replace(appliance.db_path)  # the box died; the backup goes on a new one
    appliance.db.path.with_name(appliance.db_path.name + "-wal").unlink(missing_ok=True)
    appliance.db = type(appliance.db)(appliance.db_path).open()
    sell(appliance.db, sold_after, start=100)
    shipper = Shipper(settings(), appliance.db, box).start()
    try:
        wait_for(lambda: sales_events_at_hub(hub_dsn) == 40 + 4 * sold_after, timeout=10,
                 message="every sale at the hub")
    finally:
        shipper.stop()
    receipts = {r["receipt"] for r in hub_rows(hub_dsn, "SELECT receipt FROM payments")}
    assert {f"R{n:08d}" for n in [*range(1, 11), *range(100, 100 + sold_after)]} == receipts
    appliance.close()
