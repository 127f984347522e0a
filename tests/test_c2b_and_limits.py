"""Issue 3: C2B (validation, confirmation, unmatched credit, dedup with STK), Pull
Transactions, account codes, abuse limits and the simulator's control endpoint."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from support.mpesa import buy, callback_root, fast_appliance, rows, wait_final
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.daraja.client import DarajaClient
from hotspotd.ledger.account_codes import ALPHABET, account_code_for, device_for_account_code
from hotspotd.mpesa.channel_clients import ChannelClients
from hotspotd.mpesa.push_limits import PushGuard, PushLimited, PushLimits
from hotspotd.store.db import Database

MAC = "AA:BB:CC:00:30:01"


def client(appliance: Appliance) -> DarajaClient:
    return appliance.mpesa.purchases._daraja  # noqa: SLF001 - the appliance's own client


def register(appliance: Appliance) -> dict:
    root = callback_root(appliance)
    return client(appliance).register_c2b_urls(confirmation_url=root + "/c2b/confirmation",
                                               validation_url=root + "/c2b/validation")


def code_for(appliance: Appliance, mac: str) -> str:
    with appliance.db.write() as conn:
        return account_code_for(conn, mac)


def test_account_codes_are_short_unambiguous_and_stable(db: Database) -> None:
    with db.write() as conn:
        codes = {account_code_for(conn, f"AA:BB:CC:00:00:{n:02d}") for n in range(50)}
        again = account_code_for(conn, "AA:BB:CC:00:00:07")
    assert len(codes) == 50 and again in codes
    assert all(len(code) == 5 and set(code) <= set(ALPHABET) for code in codes)
    assert not set("0O1IL") & set(ALPHABET)
    assert device_for_account_code(db.connection(), again.lower()) == "AA:BB:CC:00:00:07"
    assert device_for_account_code(db.connection(), "ZZZZZ") is None


def test_c2b_validation_confirmation_and_unmatched_credit(appliance: Appliance) -> None:
    assert register(appliance)["ResponseCode"] == "0"
    code = code_for(appliance, MAC)
    daraja = client(appliance)
    paid = daraja.simulate_c2b(amount=20, msisdn="0711222333", bill_ref=code)
    unknown = daraja.simulate_c2b(amount=20, msisdn="0711222333", bill_ref="NOSUCH")
    too_little = daraja.simulate_c2b(amount=5, msisdn="0711222333", bill_ref=code)
    odd = daraja.simulate_c2b(amount=15, msisdn="0711222333", bill_ref=code)
    wait_until(lambda: len(rows(appliance, "SELECT * FROM c2b_transactions")) == 2,
               message="two confirmations")
    sim_states = {t["trans_id"]: t["state"]
                  for t in appliance.daraja_simulator.c2b_transactions()}
    assert sim_states[unknown["TransID"]] == sim_states[too_little["TransID"]] == "rejected"
    [grant] = rows(appliance, "SELECT * FROM grants")
    assert (grant["mac"], grant["receipt"], grant["seconds"]) == (MAC, paid["TransID"], 3600)
    [held] = rows(appliance, "SELECT * FROM unmatched_payments")
    assert (held["receipt"], held["amount"]) == (odd["TransID"], 15)
    assert "matches no plan" in held["reason"]


def test_validation_codes_over_http(appliance: Appliance) -> None:
    code = code_for(appliance, MAC)
    url = callback_root(appliance) + "/c2b/validation"

    def validate(bill_ref: str, amount: str) -> str:
        body = {"TransID": "SIMVAL0001", "TransAmount": amount, "BillRefNumber": bill_ref}
        return requests.post(url, json=body, timeout=5).json()["ResultCode"]

    assert validate(code, "10.00") == "0"
    assert validate("WRONG", "10.00") == "C2B00012"
    assert validate(code, "9.00") == "C2B00013"
    assert validate(code, "abc") == "C2B00016"


def test_stk_payment_reported_by_callback_and_c2b_grants_once(appliance: Appliance) -> None:
    register(appliance)
    appliance.daraja_simulator.faults.update(c2b_for_stk=True, duplicate_callbacks=1)
    public_id = buy(appliance, "254708374149", MAC).json()["id"]
    assert wait_final(appliance, public_id)["status"] == "completed"
    wait_until(lambda: rows(appliance, "SELECT * FROM c2b_transactions"),
               message="the C2B confirmation")
    [grant] = rows(appliance, "SELECT * FROM grants")
    [payment] = rows(appliance, "SELECT * FROM payments")
    assert grant["receipt"] == payment["receipt"] == \
        appliance.daraja_simulator.prompts()[0]["receipt"]
    [seen] = rows(appliance, "SELECT outcome FROM c2b_transactions")
    assert seen["outcome"] in ("duplicate", "settled_payment")  # whichever came first
    assert rows(appliance, "SELECT * FROM unmatched_payments") == []


@pytest.mark.appliance(c2b={"pull_interval_seconds": 3600})
def test_pull_fills_in_confirmations_that_never_arrived(appliance: Appliance) -> None:
    code = code_for(appliance, MAC)
    wait_until(lambda: rows(appliance, "SELECT * FROM pull_state WHERE checked_at > 0"),
               message="the first Pull run")
    register(appliance)
    appliance.daraja_simulator.faults.drop_callbacks = True  # confirmations lost
    paid = client(appliance).simulate_c2b(amount=10, msisdn="0711222333", bill_ref=code)
    wait_until(lambda: appliance.daraja_simulator.c2b_transactions(), message="the payment")
    assert rows(appliance, "SELECT * FROM grants") == []
    assert appliance.mpesa.pull.run() == 1
    [grant] = rows(appliance, "SELECT * FROM grants")
    assert (grant["receipt"], grant["source"]) == (paid["TransID"], "c2b")
    assert appliance.mpesa.pull.run() == 0  # idempotent
    assert appliance.daraja_simulator.stats()["pull_register"] == 1  # registered once


def test_push_limits_per_device_and_phone_survive_a_restart(tmp_path: Path) -> None:
    limits = {"push_per_device": 2, "push_per_phone": 3, "push_window_seconds": 600}
    with fast_appliance(tmp_path, limits=limits) as appliance:
        for number in ("254700000001", "254700000017"):  # each unpaid, one open at a time
            answer = buy(appliance, number, MAC)
            assert answer.status_code == 202
            assert wait_final(appliance, answer.json()["id"])["status"] == "failed"
        refused = buy(appliance, "254700000019", MAC)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 500
        assert "Too many unpaid payment requests from this device" in \
            refused.json()["error"]["message"]
        pushes = appliance.daraja_simulator.stats()["stkpush"]
    with fast_appliance(tmp_path, limits=limits) as appliance:  # same database
        assert buy(appliance, "254700000037", MAC).status_code == 429
        assert appliance.daraja_simulator.stats()["stkpush"] == 0 < pushes


def test_cooldown_after_repeated_cancellations(tmp_path: Path) -> None:
    limits = {"cancel_limit": 2, "push_per_phone": 10, "push_per_device": 10}
    with fast_appliance(tmp_path, limits=limits) as appliance:
        for n in range(2):
            public_id = buy(appliance, "254700000032", f"AA:BB:CC:00:31:{n:02d}").json()["id"]
            assert wait_final(appliance, public_id)["status"] == "cancelled"
        refused = buy(appliance, "254700000032", "AA:BB:CC:00:31:09")
        assert refused.status_code == 429
        assert "cancelled or did not answer" in refused.json()["error"]["message"]
        assert buy(appliance, "254708374149", "AA:BB:CC:00:31:09").status_code == 202
        with pytest.raises(PushLimited) as again:  # kept in the database: a restart keeps it
            PushGuard(appliance.db, PushLimits(cancel_limit=2)).check(
                mac="AA:BB:CC:00:31:10", phone="254700000032")
        assert again.value.reason == "cooldown" and again.value.retry_after > 1700


def test_simulator_control_endpoint(appliance: Appliance) -> None:
    url = appliance.addresses["daraja_url"] + "/simulator/faults"
    set_ = requests.post(url, json={"drop_callbacks": True, "spike_arrest_next": 1},
                         timeout=5).json()
    assert set_["drop_callbacks"] is True and set_["spike_arrest_next"] == 1
    assert requests.post(url, json={"nope": 1}, timeout=5).status_code == 400
    reset = requests.post(url, json={"reset": True}, timeout=5).json()
    assert reset["drop_callbacks"] is False
    base = appliance.addresses["daraja_url"]
    for n in range(2):  # the second purchase refetches the invalidated token
        public_id = buy(appliance, "254708374149", f"AA:BB:CC:00:32:0{n}").json()["id"]
        assert wait_final(appliance, public_id)["status"] == "completed"
        assert requests.post(base + "/simulator/invalidate-tokens", timeout=5).ok
    stats = requests.get(base + "/simulator/stats", timeout=5).json()
    assert stats["oauth"] >= 2


def test_callback_after_pull_settled_an_uncertain_push_learns_its_id(db: Database) -> None:
    from decimal import Decimal

    from hotspotd.daraja.callbacks import StkCallback
    from hotspotd.ledger import payments
    from hotspotd.ledger.plans import create_plan
    from hotspotd.mpesa.c2b import C2BPayment, record_c2b
    from hotspotd.mpesa.purchases import PurchaseService, SettlementPolicy

    with db.write() as conn:
        plan = create_plan(conn, name="1 hour", price=20, duration_seconds=3600,
                           rate_limit=None, now=1.0)
    payment = payments.create_payment(db, plan=plan, phone="254708374149", mac=MAC, ip=None,
                                      now=1.0, reference_prefix="WIFI")
    payments.record_push_uncertain(db, payment.id, reason="timeout", now=1.0)
    outcome = record_c2b(db, C2BPayment("RCPT000001", Decimal(20), payment.reference or "",
                                        "", "174379"), source="pull", now=2.0)
    assert (outcome.outcome, outcome.granted) == ("settled_payment", True)
    daraja: Any = SimpleNamespace(shortcode="174379")  # a late callback asks Daraja nothing
    channels = ChannelClients(db, daraja, default_token="t", callback_base="https://x.test",
                              key_file=Path("/nonexistent/secret.key"))
    service = PurchaseService(db, daraja, channels=channels, policy=SettlementPolicy(),
                              schedule=lambda d, j: None, now=lambda: 3.0,
                              guard=PushGuard(db, PushLimits(), lambda: 3.0),
                              on_grant=lambda: None, on_queued=lambda: None)
    settlement = service.handle_stk_callback(StkCallback(
        "m", "ws_CO_late", "0", "ok", amount=20, receipt="RCPT000001", phone="254708374149"))
    assert settlement.outcome == "duplicate"
    stored = payments.get_payment(db, payment_id=payment.id)
    assert stored is not None and stored.checkout_request_id == "ws_CO_late"
    assert db.query("SELECT * FROM unmatched_payments") == []
    assert len(db.query("SELECT * FROM grants")) == 1


def test_push_guard_counts_unpaid_purchases_in_a_sliding_window(
        db: Database, clock, make_plan) -> None:
    plan = make_plan()
    guard = PushGuard(db, PushLimits(per_device=2, per_phone=3, window=600,
                                     open_per_device=2), clock)

    def stored(number: str, status: str, **columns: object) -> int:
        row = {"status": status, "settled_at": clock() if status != "pending" else None,
               **columns}
        with db.write() as conn:
            return int(conn.execute(
                "INSERT INTO payments (public_id, plan_id, mac, phone, amount, created_at,"
                f" {', '.join(row)}) VALUES (?, ?, ?, ?, 20, ?{', ?' * len(row)})",
                (f"p{number}{clock()}", plan.id, MAC, number, clock(), *row.values())
            ).lastrowid)

    stored("254711000001", "completed")  # paid: counts for nothing
    stored("254711000002", "expired", settled_by="queue")  # ended in line: never prompted
    first = stored("254711000003", "failed")
    clock.advance(100)
    assert guard.check(mac=MAC, phone="254711000004", plan_id=plan.id) is None
    open_one = stored("254711000004", "pending", push_sent_at=clock())
    # The same purchase again is the open one (below the open cap too): no second prompt.
    assert guard.check(mac=MAC, phone="254711000004", plan_id=plan.id) == open_one
    with pytest.raises(PushLimited) as refused:  # two unpaid (one still open) in 600 s
        guard.check(mac=MAC, phone="254711000005", plan_id=plan.id)
    assert refused.value.reason == "device" and refused.value.retry_after == 500
    clock.advance(500)  # the first unpaid one leaves the window
    assert first and guard.check(mac=MAC, phone="254711000005", plan_id=plan.id) is None
