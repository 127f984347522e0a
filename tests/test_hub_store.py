"""The hub's PostgreSQL schema and the appliance's hub journal (triggers on the ledger)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from support import hub as hub_fixtures

from hotspotd.hub.pgstore import HubStore, HubStoreError, available_migrations
from hotspotd.store.db import Database

pg_cluster, hub_dsn = hub_fixtures.pg_cluster, hub_fixtures.hub_dsn  # fixtures

HUB_TABLES = {"appliances", "enrolment_tokens", "events", "payments", "grants", "vouchers",
              "devices", "unmatched_payments", "health", "owners", "hub_secrets",
              "schema_migrations"}


def test_hub_migrations_apply_once_and_record_each_version(hub_dsn: str) -> None:
    store = HubStore(hub_dsn).open()
    HubStore(hub_dsn).open().close()  # a second start applies nothing again
    with store.connection() as conn:
        tables = {row["tablename"] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        versions = [row["version"] for row in conn.execute(
            "SELECT version FROM schema_migrations ORDER BY version")]
    store.close()
    assert tables >= HUB_TABLES
    assert versions == [m.version for m in available_migrations()]


def test_a_newer_hub_schema_is_refused(hub_dsn: str) -> None:
    HubStore(hub_dsn).open().close()
    with psycopg.connect(hub_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
    with pytest.raises(HubStoreError, match="newer than this"):
        HubStore(hub_dsn).open()


def test_an_unreachable_hub_database_is_one_clear_error() -> None:
    store = HubStore("host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1")
    with pytest.raises(HubStoreError, match="cannot connect"):
        store.open()


def _journal(db: Database) -> list[tuple[str, object, dict]]:
    return [(row["kind"], row["entity_id"], json.loads(row["body"]))
            for row in db.query("SELECT kind, entity_id, body FROM hub_journal ORDER BY seq")]


def test_journal_triggers_follow_the_ledger_columns_that_matter(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.sqlite3").open()
    with db.write() as conn:
        conn.execute("INSERT INTO plans (id, name, price, duration_seconds, created_at)"
                     " VALUES (1, 'hour', 20, 3600, 0)")
        conn.execute("INSERT INTO payments (id, public_id, plan_id, mac, phone, amount,"
                     " created_at) VALUES (1, 'p1', 1, 'AA:BB:CC:00:00:01', '254708374149',"
                     " 20, 1.0)")
        conn.execute("UPDATE payments SET query_count = 3, next_query_at = 9 WHERE id = 1")
        conn.execute("UPDATE payments SET status = 'completed', receipt = 'R1',"
                     " paid_amount = 20, settled_at = 2.0 WHERE id = 1")
        conn.execute("INSERT INTO grants (id, mac, plan_id, payment_id, receipt, source,"
                     " seconds, starts_at, expires_at, created_at) VALUES (1,"
                     " 'AA:BB:CC:00:00:01', 1, 1, 'R1', 'stk', 3600, 2, 3602, 2)")
        conn.execute("INSERT INTO devices (mac, first_seen, last_seen) VALUES"
                     " ('AA:BB:CC:00:00:01', 1, 1)")
        conn.execute("UPDATE devices SET last_seen = 5")
        conn.execute("INSERT INTO vouchers (id, code, plan_id, batch, created_at) VALUES"
                     " (1, 'ABCD-EFGH', 1, 'b1', 1)")
        conn.execute("UPDATE vouchers SET status = 'used', used_at = 3,"
                     " used_by_mac = 'AA:BB:CC:00:00:02' WHERE id = 1")
        conn.execute("INSERT INTO unmatched_payments (id, source, receipt, amount, phone,"
                     " reason, received_at) VALUES (1, 'c2b', 'R2', 5, '254711222333',"
                     " 'below price', 4)")
        conn.execute("UPDATE unmatched_payments SET resolved_at = 6 WHERE id = 1")
    journal = _journal(db)
    db.close()
    assert [(kind, entity) for kind, entity, _ in journal] == [
        ("payment", 1), ("payment", 1), ("grant", 1), ("device", "AA:BB:CC:00:00:01"),
        ("voucher", 1), ("voucher", 1), ("unmatched", 1), ("unmatched", 1)]
    assert journal[1][2]["status"] == "completed" and journal[1][2]["receipt"] == "R1"
    assert journal[0][2]["phone_masked"] == "2547*****149"  # no phone number leaves
    assert "254708374149" not in json.dumps([body for _, _, body in journal])
    assert journal[5][2]["used_by_mac"] == "AA:BB:CC:00:00:02"
    assert journal[7][2]["resolved_at"] == 6


def test_a_rolled_back_ledger_change_leaves_no_journal_row(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.sqlite3").open()
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO devices (mac, first_seen, last_seen) VALUES ('M', 1, 1)")
        raise RuntimeError("crash before commit")
    assert db.query("SELECT COUNT(*) FROM hub_journal")[0][0] == 0
    assert db.query("SELECT shipped_seq FROM hub_state")[0][0] == 0
    db.close()
