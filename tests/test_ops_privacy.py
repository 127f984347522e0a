"""Kenya DPA: retention erases phone numbers from old payments, export/erase per number;
the books (amounts, receipts, grants) stay balanced; every run is audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotspotd.cli import main
from hotspotd.ops.privacy import ERASED_PHONE, apply_retention, erase_phone, export_phone
from hotspotd.store.db import Database

DAY = 86400.0
NOW = 1_750_000_000.0
ALICE, BOB = "254711000001", "254722000002"


def add_payment(db: Database, pid: int, phone: str, *, age_days: float,
                status: str = "completed") -> None:
    at = NOW - age_days * DAY
    with db.write() as conn:
        conn.execute("INSERT OR IGNORE INTO plans (id, name, price, duration_seconds,"
                     " created_at) VALUES (1, 'hour', 20, 3600, 0)")
        conn.execute(
            "INSERT INTO payments (id, public_id, plan_id, mac, phone, amount, status,"
            " push_state, receipt, created_at, settled_at) VALUES (?, ?, 1, 'AA:00:00:00:00:01',"
            " ?, 20, ?, 'sent', ?, ?, ?)",
            (pid, f"p{pid}", phone, status, f"R{pid}" if status == "completed" else None, at,
             None if status == "pending" else at))
        if status == "completed":
            conn.execute("INSERT INTO grants (mac, plan_id, payment_id, receipt, source,"
                         " seconds, starts_at, expires_at, created_at) VALUES"
                         " ('AA:00:00:00:00:01', 1, ?, ?, 'stk', 3600, ?, ?, ?)",
                         (pid, f"R{pid}", at, at + 3600, at))
        conn.execute("INSERT INTO events (at, kind, payment_id) VALUES (?, 'payment.created',"
                     " ?)", (at, pid))


def books(db: Database) -> tuple[object, ...]:
    return tuple(db.query_one(
        "SELECT COUNT(*), SUM(amount), GROUP_CONCAT(receipt), (SELECT COUNT(*) FROM grants),"
        " (SELECT SUM(seconds) FROM grants) FROM payments WHERE status = 'completed'"))


@pytest.fixture
def people(db: Database) -> Database:
    add_payment(db, 1, ALICE, age_days=400)
    add_payment(db, 2, ALICE, age_days=10)
    add_payment(db, 3, BOB, age_days=500)
    add_payment(db, 4, BOB, age_days=500, status="failed")
    add_payment(db, 5, BOB, age_days=2, status="pending")
    with db.write() as conn:
        conn.execute("INSERT INTO unmatched_payments (source, receipt, amount, phone, reason,"
                     " body, received_at) VALUES ('c2b', 'U1', 50, ?, 'no such account',"
                     " ?, ?)", (ALICE, json.dumps({"MSISDN": ALICE, "FirstName": "Alice"}),
                                NOW - 2 * DAY))
        conn.execute("INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1)",
                     (f"push:{ALICE}", NOW))
    return db


def phones(db: Database) -> dict[int, str]:
    return {row["id"]: row["phone"] for row in db.query("SELECT id, phone FROM payments")}


def test_retention_erases_old_phone_numbers_and_keeps_the_books(people: Database) -> None:
    before = books(people)
    assert apply_retention(people, retention_days=365, now=NOW) == 3
    assert phones(people) == {1: ERASED_PHONE, 2: ALICE, 3: ERASED_PHONE, 4: ERASED_PHONE,
                              5: BOB}
    assert books(people) == before
    assert apply_retention(people, retention_days=365, now=NOW) == 0  # idempotent
    audit = people.query("SELECT * FROM privacy_requests")
    assert [(a["action"], a["rows_affected"], a["subject"]) for a in audit] == [
        ("retention", 3, None)]


def test_export_gathers_everything_about_one_number(people: Database) -> None:
    exported = export_phone(people, "0711 000 001", now=NOW, actor="test")
    data = exported["data"]
    assert exported["phone"] == ALICE
    assert [p["id"] for p in data["payments"]] == [1, 2]
    assert [g["payment_id"] for g in data["grants"]] == [1, 2]
    assert [u["receipt"] for u in data["unmatched_payments"]] == ["U1"]
    assert len(data["events"]) == 2
    audit = people.query_one("SELECT * FROM privacy_requests")
    assert audit["action"] == "export" and audit["subject"] == "2547*****001"
    assert ALICE not in json.dumps([dict(r) for r in people.query(
        "SELECT * FROM privacy_requests")])


def test_erase_removes_one_number_everywhere_and_keeps_the_books(people: Database) -> None:
    before = books(people)
    changed = erase_phone(people, ALICE, now=NOW, actor="test")
    assert changed == 4  # two payments, the unmatched row, the rate-limit key
    assert phones(people) == {1: ERASED_PHONE, 2: ERASED_PHONE, 3: BOB, 4: BOB, 5: BOB}
    unmatched = people.query_one("SELECT * FROM unmatched_payments")
    assert unmatched["phone"] is None and unmatched["body"] is None
    assert unmatched["amount"] == 50 and unmatched["receipt"] == "U1"
    assert people.query("SELECT * FROM rate_limits") == []
    assert books(people) == before
    assert export_phone(people, ALICE, now=NOW, actor="test")["data"]["payments"] == []
    actions = [r["action"] for r in people.query("SELECT action FROM privacy_requests")]
    assert actions == ["erase", "export"]


def test_cli_privacy_commands(people: Database, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hotspotd.toml"
    config.write_text(f'[database]\npath = "{people.path}"\n[privacy]\nretention_days = 30\n')
    out = tmp_path / "alice.json"
    assert main(["privacy", "export", "--phone", ALICE, "-o", str(out), "-c", str(config)]) == 0
    assert json.loads(out.read_text())["phone"] == ALICE
    assert out.stat().st_mode & 0o777 == 0o600
    assert main(["privacy", "erase", "--phone", "+254 722 000 002", "-c", str(config)]) == 0
    assert "erased: 3 row(s)" in capsys.readouterr().out
    assert main(["privacy", "retention", "-c", str(config)]) == 0
    assert "retention (30 days)" in capsys.readouterr().out
    assert main(["privacy", "erase", "--phone", "12345", "-c", str(config)]) == 1
    assert main(["privacy", "erase", "-c", str(config)]) == 1
    assert "needs --phone" in capsys.readouterr().err


def test_rate_limit_rows_holding_a_number_are_exported_erased_and_aged_out(
        people: Database) -> None:
    with people.write() as conn:
        conn.executemany("INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1)",
                         [(f"push:phone:{BOB}", NOW - 2 * DAY),
                          ("voucher:mac:AA:00:00:00:00:01", NOW - 2 * DAY)])
    exported = export_phone(people, BOB, now=NOW, actor="test")["data"]["rate_limits"]
    assert [row["key"] for row in exported] == [f"push:phone:{BOB}"]
    apply_retention(people, retention_days=365, now=NOW)
    # A day old: no window needs it; the fresh row of ALICE stays, as do rows of no number.
    assert sorted(r["key"] for r in people.query("SELECT key FROM rate_limits")) == [
        f"push:{ALICE}", "voucher:mac:AA:00:00:00:00:01"]
    [audit] = people.query("SELECT detail FROM privacy_requests WHERE action = 'retention'")
    assert json.loads(audit["detail"])["rate_limits"] == 1
