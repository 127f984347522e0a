"""Shared pieces later features stand on: vouchers, persistent rate limits, the secret box."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotspotd.ledger import vouchers
from hotspotd.ledger.grants import get_entitlement
from hotspotd.ratelimit import RateLimiter
from hotspotd.secretbox import SecretBox, SecretBoxError, create_key_file
from hotspotd.store.db import Database

MAC = "AA:BB:CC:00:00:99"


def test_voucher_grants_its_plan_once(db: Database, clock, make_plan) -> None:
    plan = make_plan(duration_seconds=3600)
    batch, made = vouchers.create_batch(db, plan_id=plan.id, count=5, now=clock())
    assert len({v.code for v in made}) == 5 and all(v.batch == batch for v in made)
    assert all(set(v.code) <= set(vouchers.ALPHABET) for v in made)
    code = vouchers.format_code(made[0].code).lower()  # typed loosely: dash, lower case
    grant = vouchers.redeem(db, code=code, mac=MAC, ip="10.0.0.9", now=clock())
    assert grant.seconds == 3600
    with pytest.raises(vouchers.VoucherUsed):
        vouchers.redeem(db, code=made[0].code, mac="AA:BB:CC:00:00:98", ip=None, now=clock())
    entitlement = get_entitlement(db.connection(), MAC)
    assert entitlement is not None and entitlement.seconds_remaining(clock()) == 3600
    assert db.query_one("SELECT COUNT(*) FROM grants WHERE voucher_id IS NOT NULL")[0] == 1


def test_void_unknown_and_expired_vouchers_are_refused(db: Database, clock, make_plan) -> None:
    plan = make_plan()
    _, made = vouchers.create_batch(db, plan_id=plan.id, count=2, now=clock(), valid_for=60)
    assert vouchers.void(db, voucher_id=made[0].id, now=clock())
    assert not vouchers.void(db, voucher_id=made[0].id, now=clock())
    with pytest.raises(vouchers.UnknownVoucher):
        vouchers.redeem(db, code=made[0].code, mac=MAC, ip=None, now=clock())
    with pytest.raises(vouchers.UnknownVoucher):
        vouchers.redeem(db, code="ZZZZ-ZZZZ", mac=MAC, ip=None, now=clock())
    clock.advance(61)
    with pytest.raises(vouchers.VoucherExpired):
        vouchers.redeem(db, code=made[1].code, mac=MAC, ip=None, now=clock())
    assert db.query_one("SELECT COUNT(*) FROM grants")[0] == 0


def test_second_grant_for_a_voucher_is_refused_by_the_database(db, clock, make_plan) -> None:
    plan = make_plan()
    _, made = vouchers.create_batch(db, plan_id=plan.id, count=1, now=clock())
    vouchers.redeem(db, code=made[0].code, mac=MAC, ip=None, now=clock())
    with pytest.raises(Exception, match="UNIQUE"), db.write() as conn:
        conn.execute("INSERT INTO grants (mac, source, seconds, starts_at, expires_at,"
                     " created_at, voucher_id) VALUES (?, 'voucher', 60, 0, 60, 0, ?)",
                     (MAC, made[0].id))


def test_rate_limit_window_and_persistence(tmp_path: Path, clock) -> None:
    path = tmp_path / "limits.sqlite3"
    limiter = RateLimiter(Database(path).open(), now=clock)
    assert [limiter.hit("k", limit=3, window=60).allowed for _ in range(4)] == [
        True, True, True, False]
    refused = limiter.peek("k", limit=3, window=60)
    assert not refused.allowed and 0 < refused.retry_after <= 60
    reopened = RateLimiter(Database(path).open(), now=clock)  # a restart keeps the count
    assert not reopened.hit("k", limit=3, window=60).allowed
    assert reopened.hit("other", limit=3, window=60).allowed
    clock.advance(60)
    assert reopened.hit("k", limit=3, window=60).allowed


def test_secret_box_round_trip_and_tamper(tmp_path: Path) -> None:
    key = tmp_path / "key"
    create_key_file(key)
    assert os.stat(key).st_mode & 0o777 == 0o600
    with pytest.raises(SecretBoxError):
        create_key_file(key)
    box = SecretBox.from_key_file(key)
    sealed = box.encrypt("consumer-secret-123", purpose="daraja.consumer_secret")
    assert "consumer-secret-123" not in sealed
    assert box.decrypt(sealed, purpose="daraja.consumer_secret") == "consumer-secret-123"
    with pytest.raises(SecretBoxError):
        box.decrypt(sealed, purpose="router.password")  # bound to its purpose
    with pytest.raises(SecretBoxError):
        box.decrypt(sealed[:-4] + "AAAA", purpose="daraja.consumer_secret")
    os.chmod(key, 0o644)
    with pytest.raises(SecretBoxError, match="chmod 600"):
        SecretBox.from_key_file(key)
