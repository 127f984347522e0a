"""Property tests: whatever order, duplication or contradiction the reports arrive in, the
money invariants hold (one grant per payment and per receipt, grant iff paid, time stacks,
every payment ends)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hotspotd.daraja.result_codes import RESULT_CODES, normalise_code, status_for
from hotspotd.ledger import payments
from hotspotd.ledger.plans import Plan, create_plan
from hotspotd.store.db import Database

START = 1_700_000_000.0
MACS = ("AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02", "AA:BB:CC:DD:EE:03")
PLANS = ((10, 600, "1M/2M"), (20, 1800, "2M/5M"), (50, 3600, "3M/8M"))  # price, s, rate
FAILURE_CODES = (1032, "1032", 1037, "1037", 2001, "2001", 1, 1019, 9999, "SFC_IC0003", 777)
FINAL = {"completed", "failed", "cancelled", "expired"}


@dataclass(frozen=True)
class Purchase:
    mac: str
    plan: int  # index into PLANS
    pushed: bool  # False: the daemon stopped before Daraja accepted the push
    underpaid: bool  # the M-Pesa callback reports less than the price


@dataclass(frozen=True)
class Report:
    payment: int  # index into the purchases
    kind: str
    code: object = 0
    other: int = 0  # for "foreign_receipt": whose receipt is replayed
    advance: float = 0.0  # seconds the clock moves before this report


purchases = st.builds(Purchase, mac=st.sampled_from(MACS), plan=st.integers(0, len(PLANS) - 1),
                      pushed=st.booleans() | st.just(True),
                      underpaid=st.sampled_from([False, False, False, True]))


@st.composite
def scenarios(draw):
    bought = draw(st.lists(purchases, min_size=1, max_size=6))
    index = st.integers(0, len(bought) - 1)
    advance = st.sampled_from([0.0, 0.0, 30.0, 400.0, 2000.0])
    report = st.one_of(
        st.builds(Report, index, st.just("callback_ok"), advance=advance),
        st.builds(Report, index, st.just("query_ok"), code=st.sampled_from([0, "0"]),
                  advance=advance),
        st.builds(Report, index, st.sampled_from(["callback_fail", "query_fail"]),
                  code=st.sampled_from(FAILURE_CODES), advance=advance),
        st.builds(Report, index, st.just("expire"), advance=advance),
        st.builds(Report, index, st.just("foreign_receipt"), other=index, advance=advance),
    )
    return bought, draw(st.lists(report, max_size=30))


def receipt_of(index: int) -> str:
    return f"RCPT{index:06d}"


def checkout_of(index: int) -> str:
    return f"ws_CO_{index}"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def apply_report(db: Database, clock: Clock, report: Report, bought: list[Purchase],
                 stored: list[payments.Payment], plans: list[Plan]) -> None:
    purchase = bought[report.payment]
    price = plans[purchase.plan].price
    paid = price - 1 if purchase.underpaid else price
    checkout = checkout_of(report.payment)
    if report.kind == "expire":
        payments.expire_payment(db, stored[report.payment].id, reason="no answer", now=clock())
    elif report.kind == "callback_ok":
        payments.apply_result(db, checkout_request_id=checkout, result_code=0, result_desc="ok",
                              source="callback", now=clock(), receipt=receipt_of(report.payment),
                              paid_amount=paid)
    elif report.kind == "foreign_receipt":
        payments.apply_result(db, checkout_request_id=checkout, result_code="0",
                              result_desc="replayed", source="callback", now=clock(),
                              receipt=receipt_of(report.other), paid_amount=paid)
    else:
        source = "callback" if report.kind.startswith("callback") else "query"
        payments.apply_result(db, checkout_request_id=checkout, result_code=report.code,
                              result_desc=f"code {report.code}", source=source, now=clock())


def run_scenario(db: Database, bought: list[Purchase], reports: list[Report]) -> Clock:
    clock = Clock()
    with db.write() as conn:
        plans = [create_plan(conn, name=f"plan {i}", price=price, duration_seconds=seconds,
                             rate_limit=rate, now=clock())
                 for i, (price, seconds, rate) in enumerate(PLANS)]
    stored = []
    for index, purchase in enumerate(bought):
        payment = payments.create_payment(db, plan=plans[purchase.plan], phone="254708374149",
                                          mac=purchase.mac, ip=None, now=clock())
        if purchase.pushed:
            payments.record_push_accepted(db, payment.id, merchant_request_id=f"mr-{index}",
                                          checkout_request_id=checkout_of(index), now=clock(),
                                          next_query_at=clock() + 7)
        stored.append(payment)
    for report in reports:
        clock.now += report.advance
        apply_report(db, clock, report, bought, stored, plans)
    clock.now += 1000
    payments.fail_interrupted_pushes(db, clock())
    for payment in payments.pending_payments(db):
        payments.expire_payment(db, payment.id, reason="final pass", now=clock())
    return clock


def check_invariants(db: Database) -> None:
    rows = db.query("SELECT p.*, pl.duration_seconds FROM payments p"
                    " JOIN plans pl ON pl.id = p.plan_id ORDER BY p.id")
    granted_by_payment = {r["payment_id"]: r for r in db.query("SELECT * FROM grants")}
    expected_seconds: dict[str, int] = {}
    for row in rows:
        count = db.query_one("SELECT COUNT(*) FROM grants WHERE payment_id = ?", (row["id"],))[0]
        assert count <= 1, f"payment {row['id']} granted {count} times"
        assert row["status"] in FINAL, f"payment {row['id']} still {row['status']}"
        covered = row["paid_amount"] is None or row["paid_amount"] >= row["amount"]
        should_grant = row["status"] == "completed" and covered
        assert (count == 1) == should_grant, dict(row)
        if should_grant:
            expected_seconds[row["mac"]] = (expected_seconds.get(row["mac"], 0)
                                            + row["duration_seconds"])
            grant = granted_by_payment[row["id"]]
            assert grant["receipt"] == row["receipt"]
            assert grant["seconds"] == row["duration_seconds"]
        if row["status"] == "completed" and not covered:
            held = db.query_one("SELECT reason FROM unmatched_payments WHERE reference = ?",
                                (row["public_id"],))
            assert held is not None and held["reason"], "underpayment not held for the owner"
    for mac in MACS:
        total = db.query_one("SELECT COALESCE(SUM(seconds), 0) FROM grants WHERE mac = ?",
                             (mac,))[0]
        assert total == expected_seconds.get(mac, 0)
    duplicates = db.query("SELECT receipt FROM grants WHERE receipt IS NOT NULL"
                          " GROUP BY receipt HAVING COUNT(*) > 1")
    assert duplicates == []
    check_stacking(db)


def check_stacking(db: Database) -> None:
    """Recompute each device's expiry from its grants in order: max(granted at, expiry) + s."""
    for mac in MACS:
        expiry = None
        for grant in db.query("SELECT * FROM grants WHERE mac = ? ORDER BY id", (mac,)):
            starts = grant["created_at"] if expiry is None else max(grant["created_at"], expiry)
            assert grant["starts_at"] == starts
            expiry = starts + grant["seconds"]
            assert grant["expires_at"] == expiry
        entitlement = db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?", (mac,))
        assert (entitlement["expires_at"] if entitlement else None) == expiry


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_any_order_of_reports_keeps_the_money_invariants(scenario):
    bought, reports = scenario
    with tempfile.TemporaryDirectory() as directory:
        db = Database(Path(directory) / "p.sqlite3").open()
        try:
            run_scenario(db, bought, reports)
            check_invariants(db)
        finally:
            db.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(MACS), min_size=1, max_size=6),
       st.lists(st.sampled_from([0, 1, 2]), min_size=6, max_size=6))
def test_frozen_clock_stacks_back_to_back(macs, plan_choice):
    """With time frozen, a device's expiry is now + the sum of everything it bought."""
    bought = [Purchase(mac, plan_choice[i], True, False) for i, mac in enumerate(macs)]
    reports = [Report(i, "callback_ok") for i in range(len(bought))]
    reports += [Report(i, "query_ok") for i in range(len(bought))]
    with tempfile.TemporaryDirectory() as directory:
        db = Database(Path(directory) / "p.sqlite3").open()
        try:
            run_scenario(db, bought, reports)
            for mac in set(macs):
                expected = START + sum(PLANS[p.plan][1] for p in bought if p.mac == mac)
                row = db.query_one("SELECT expires_at FROM entitlements WHERE mac = ?", (mac,))
                assert row["expires_at"] == expected
            check_invariants(db)
        finally:
            db.close()


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_a_number_and_its_string_form_are_the_same_code(number):
    forms = [number, str(number), f" {number} ", float(number)]
    if number >= 0:
        forms.append("0" + str(number))  # a leading zero does not make a new code
    assert {normalise_code(form) for form in forms} == {str(number)}
    assert len({status_for(form) for form in forms}) == 1


@given(st.sampled_from(sorted(RESULT_CODES)))
def test_every_table_code_maps_the_same_as_number_and_string(code):
    assert status_for(code) == RESULT_CODES[code].status
    if code.isdigit():
        assert status_for(int(code)) == status_for(code)
        assert normalise_code(int(code)) == code
