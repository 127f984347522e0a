"""The owner UI's core without HTTP: accounts, reports' day boundaries, owner actions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import FakeClock

from hotspotd.admin.accounts import (
    AccountExists,
    WeakPassword,
    create_account,
    owner_exists,
    verify_login,
)
from hotspotd.admin.actions import Actor, assign_unmatched, block_mac, give_time, is_blocked
from hotspotd.admin.payments_view import PaymentQuery, search_payments
from hotspotd.admin.reports import dashboard_figures, local_day_start, period_starts
from hotspotd.admin.selftest import run_self_test
from hotspotd.ledger.errors import BillingError
from hotspotd.ledger.plans import Plan
from hotspotd.store.db import Database


def test_accounts(db: Database, clock: FakeClock) -> None:
    assert not owner_exists(db)
    with pytest.raises(WeakPassword):
        create_account(db, username="owner", password="short", now=clock())
    create_account(db, username="owner", password="a good long password", now=clock())
    assert owner_exists(db)
    with pytest.raises(AccountExists):
        create_account(db, username="Owner", password="another long password", now=clock())
    assert verify_login(db, "owner", "wrong password!", clock()) is None
    assert verify_login(db, "ghost", "a good long password", clock()) is None
    account = verify_login(db, "owner", "a good long password", clock())
    assert account is not None and account.role == "owner" and account.can_change
    stored = db.query_one("SELECT password_hash FROM admin_accounts")[0]
    assert stored.startswith("$argon2id$") and "a good long password" not in stored


def test_venue_days_start_at_local_midnight() -> None:
    # 2026-11-28 00:30 in Nairobi (UTC+3) is 2026-11-27 21:30 UTC.
    now = 1795815000.0  # 2026-11-27T21:30:00Z
    start = local_day_start(now, 180)
    assert now - start == 30 * 60
    starts = period_starts(now, 180)  # a Saturday
    assert starts["today"] - starts["week"] == 5 * 86400
    assert starts["today"] - starts["month"] == 27 * 86400


def test_assign_unmatched_money_grants_once(db: Database, clock: FakeClock,
                                            make_plan: Callable[..., Plan]) -> None:
    plan = make_plan(price=20, duration_seconds=3600)
    with db.write() as conn:
        conn.execute("INSERT INTO unmatched_payments (source, receipt, amount, phone, reason,"
                     " received_at) VALUES ('c2b', 'RCPT000001', 20, '254711000001',"
                     " 'unknown account', ?)", (clock(),))
        conn.execute("INSERT INTO unmatched_payments (source, receipt, amount, phone, reason,"
                     " received_at) VALUES ('stk', 'RCPT000001X', 20, '254711000001',"
                     " 'late', ?)", (clock(),))
    actor = Actor("owner", "127.0.0.1", clock())
    grant = assign_unmatched(db, actor, unmatched_id=1, mac="aa-bb-cc-dd-ee-01",
                             plan_id=plan.id)
    assert (grant.mac, grant.seconds) == ("AA:BB:CC:DD:EE:01", 3600)
    with pytest.raises(BillingError, match="assigned already"):
        assign_unmatched(db, actor, unmatched_id=1, mac="AA:BB:CC:DD:EE:02", plan_id=plan.id)
    # A receipt that already gave time (here: made to look so) cannot give it again.
    with db.write() as conn:
        conn.execute("UPDATE grants SET receipt = 'RCPT000001X' WHERE id = ?", (grant.id,))
    with pytest.raises(BillingError, match="given time already"):
        assign_unmatched(db, actor, unmatched_id=2, mac="AA:BB:CC:DD:EE:03", plan_id=plan.id)
    assert db.query_one("SELECT resolved_at FROM unmatched_payments WHERE id = 2")[0] is None
    audit = db.query("SELECT action FROM admin_audit")
    assert [row[0] for row in audit] == ["unmatched.assign"]


def test_give_time_stacks_and_needs_a_reason(db: Database, clock: FakeClock) -> None:
    actor = Actor("owner", None, clock())
    with pytest.raises(BillingError, match="Say why"):
        give_time(db, actor, mac="AA:BB:CC:DD:EE:04", minutes=10, reason=" ")
    first = give_time(db, actor, mac="AA:BB:CC:DD:EE:04", minutes=10, reason="sorry")
    second = give_time(db, actor, mac="AA:BB:CC:DD:EE:04", minutes=5, reason="sorry again")
    assert second.expires_at == first.expires_at + 300
    figures = dashboard_figures(db, clock(), 180)
    assert figures["entitled"] == 1 and figures["periods"][0].revenue == 0


def test_block_queues_a_disconnect(db: Database, clock: FakeClock) -> None:
    block_mac(db, Actor("owner", None, clock()), mac="aabb.ccdd.ee05", reason="abuse")
    assert is_blocked(db, "AA:BB:CC:DD:EE:05")
    op = db.query_one("SELECT action, state FROM router_ops WHERE mac = 'AA:BB:CC:DD:EE:05'")
    assert tuple(op) == ("disconnect", "pending")


def test_self_test_says_what_to_fix(db: Database, clock: FakeClock) -> None:
    def broken() -> list[object]:
        raise RuntimeError("probe exploded")

    checks = {c.name: c for c in run_self_test(db, clock(), broken,
                                               public_url="http://127.0.0.1:1")}
    assert checks["database"].ok and checks["disk space"].ok
    assert not checks["RADIUS accounting"].ok
    assert "radius-accounting=yes" in checks["RADIUS accounting"].fix
    assert not checks["callbacks reachable"].ok
    assert "STK Query" in checks["callbacks reachable"].fix
    assert not checks["live checks"].ok and "probe exploded" in checks["live checks"].detail


def test_payment_search_by_phone_receipt_account_code_and_status(
        db: Database, clock: FakeClock, make_plan: Callable[..., Plan]) -> None:
    plan = make_plan()
    with db.write() as conn:
        for index, (phone, status, receipt) in enumerate([
                ("254712000001", "completed", "RCPTA00001"), ("254712000002", "failed", None),
                ("254712000001", "cancelled", None)]):
            conn.execute("INSERT INTO payments (public_id, plan_id, mac, phone, amount, status,"
                         " receipt, created_at) VALUES (?, ?, ?, ?, 20, ?, ?, ?)",
                         (f"pub{index}", plan.id, f"AA:BB:CC:DD:00:0{index}", phone, status,
                          receipt, clock() + index))
        conn.execute("INSERT INTO account_codes (code, mac, created_at) VALUES ('K7Q2',"
                     " 'AA:BB:CC:DD:00:01', 0)")

    def ids(**query: object) -> list[str]:
        return [row["public_id"] for row in search_payments(db, PaymentQuery(**query))]

    assert ids(phone="0712 000 001") == ["pub2", "pub0"]  # newest first
    assert ids(phone="0712000001", status="completed") == ["pub0"]
    assert ids(receipt="rcpta00001") == ["pub0"]
    assert ids(code="k7q2") == ["pub1"]
    assert ids(code="aa-bb-cc-dd-00-02") == ["pub2"]
    assert ids(start=clock() + 1, end=clock() + 2) == ["pub1"]
