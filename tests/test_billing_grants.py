"""Grants and entitlements: time stacks (invariant 4), router ops commit with the grant."""

from __future__ import annotations

import pytest

from hotspotd.ledger.grants import (
    DuplicateGrant,
    get_entitlement,
    grant_time,
    total_granted_seconds,
)

MAC = "AA:BB:CC:DD:EE:01"
HOUR = 3600


def grant(db, clock, seconds=HOUR, *, mac=MAC, plan=None, rate_limit="2M/5M", **kwargs):
    with db.write() as conn:
        return grant_time(conn, mac=mac, seconds=seconds, now=clock(),
                          plan_id=plan.id if plan else None, rate_limit=rate_limit,
                          source="test", **kwargs)


def entitlement(db, mac=MAC):
    return get_entitlement(db.connection(), mac)


def test_first_grant_starts_now(db, clock):
    created = grant(db, clock, HOUR)
    assert (created.starts_at, created.expires_at) == (clock(), clock() + HOUR)
    assert entitlement(db).expires_at == clock() + HOUR
    assert entitlement(db).seconds_remaining(clock()) == HOUR


def test_grant_while_entitled_extends_from_the_current_expiry(db, clock):
    start = clock()
    grant(db, clock, HOUR)
    clock.advance(600)  # 50 minutes still left
    second = grant(db, clock, 30 * 60)
    assert second.starts_at == start + HOUR
    assert second.expires_at == start + HOUR + 30 * 60
    assert entitlement(db).expires_at == start + HOUR + 30 * 60
    assert entitlement(db).seconds_remaining(clock()) == HOUR - 600 + 30 * 60


def test_grant_after_expiry_starts_from_now(db, clock):
    grant(db, clock, HOUR)
    clock.advance(HOUR + 500)  # lapsed 500 s ago: those seconds are not given back
    second = grant(db, clock, HOUR)
    assert second.starts_at == clock()
    assert entitlement(db).expires_at == clock() + HOUR


def test_grant_exactly_at_expiry_continues_seamlessly(db, clock):
    first = grant(db, clock, HOUR)
    clock.now = first.expires_at
    second = grant(db, clock, HOUR)
    assert second.starts_at == first.expires_at


def test_entitlements_are_per_device(db, clock):
    grant(db, clock, HOUR, mac=MAC)
    grant(db, clock, 600, mac="AA:BB:CC:DD:EE:02")
    assert entitlement(db).expires_at == clock() + HOUR
    assert entitlement(db, "AA:BB:CC:DD:EE:02").expires_at == clock() + 600
    assert total_granted_seconds(db.connection(), MAC) == HOUR
    assert entitlement(db, "AA:BB:CC:DD:EE:03") is None


def test_rate_limit_and_plan_follow_the_latest_grant(db, clock, make_plan):
    slow = make_plan(name="30 minutes", price=10, duration_seconds=1800, rate_limit="1M/2M")
    fast = make_plan(name="1 week", price=400, duration_seconds=7 * 86400, rate_limit="3M/8M")
    grant(db, clock, slow.duration_seconds, plan=slow, rate_limit=slow.rate_limit)
    assert (entitlement(db).rate_limit, entitlement(db).plan_id) == ("1M/2M", slow.id)
    grant(db, clock, fast.duration_seconds, plan=fast, rate_limit=fast.rate_limit)
    assert (entitlement(db).rate_limit, entitlement(db).plan_id) == ("3M/8M", fast.id)
    grant(db, clock, slow.duration_seconds, plan=slow, rate_limit=slow.rate_limit)
    assert entitlement(db).rate_limit == "1M/2M"
    assert entitlement(db).expires_at == clock() + 2 * 1800 + 7 * 86400


def test_grant_queues_a_router_login_in_the_same_transaction(db, clock):
    grant(db, clock, HOUR, ip="10.5.50.7")
    ops = db.query("SELECT * FROM router_ops")
    assert [(op["mac"], op["ip"], op["action"], op["state"]) for op in ops] == [
        (MAC, "10.5.50.7", "login", "pending")]
    assert ops[0]["next_attempt_at"] == clock()


def test_failed_transaction_rolls_back_grant_entitlement_and_router_op(db, clock):
    class Crash(Exception):
        pass

    with pytest.raises(Crash), db.write() as conn:
        grant_time(conn, mac=MAC, seconds=HOUR, now=clock(), plan_id=None,
                   rate_limit=None, source="test")
        assert conn.execute("SELECT COUNT(*) FROM router_ops").fetchone()[0] == 1
        raise Crash()
    for table in ("grants", "entitlements", "router_ops", "events"):
        assert db.query_one(f"SELECT COUNT(*) FROM {table}")[0] == 0, table


def test_second_grant_for_a_receipt_is_refused_and_changes_nothing(db, clock):
    first = grant(db, clock, HOUR, receipt="QKJ1ABC2DE")
    with pytest.raises(DuplicateGrant):
        grant(db, clock, HOUR, receipt="QKJ1ABC2DE")
    assert entitlement(db).expires_at == first.expires_at
    assert db.query_one("SELECT COUNT(*) FROM router_ops")[0] == 1
    assert total_granted_seconds(db.connection(), MAC) == HOUR
