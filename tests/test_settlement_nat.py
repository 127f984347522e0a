"""Issue 3: settlement with no inbound callback, one Daraja request budget, uncertain pushes.

Real HTTP against the embedded Daraja simulator (in-process appliance, loopback, port 0).
"""

from __future__ import annotations

import threading
import time

import pytest
from support.mpesa import buy, rows, status, wait_final
from support.wait import wait_until

from hotspotd.app import Appliance
from hotspotd.daraja.budget import BudgetExhausted, RequestBudget
from hotspotd.mpesa.customer_messages import customer_message, known_codes


def test_budget_hands_out_slots_in_order_and_refuses_beyond_max_wait() -> None:
    budget = RequestBudget(per_minute=120)  # a slot every 0.5 s
    started = time.monotonic()
    for _ in range(3):
        budget.acquire(max_wait=5)
    assert time.monotonic() - started >= 0.99  # second and third waited their turn
    with pytest.raises(BudgetExhausted):
        budget.acquire(max_wait=0.2)  # the next slot is 0.5 s away
    assert budget.used == 3


def test_budget_spike_arrest_pauses_everyone_doubling_then_resets() -> None:
    budget = RequestBudget(per_minute=6000, backoff_start=2.0, backoff_max=5.0)
    assert budget.back_off("500.003.02") == 2.0
    assert budget.back_off("500.003.02") == 4.0
    assert budget.back_off("500.003.02") == 5.0  # capped
    with pytest.raises(BudgetExhausted):
        budget.acquire(max_wait=1.0)
    budget.succeeded()
    assert budget.back_off("500.003.03") == 2.0


def test_budget_settlement_goes_first_but_leaves_new_work_its_share() -> None:
    """Queries that settle paid money do not wait behind a burst of pushes: when both
    classes wait, settlement takes two slots for each push; within a class, first come
    first served."""
    budget = RequestBudget(per_minute=600, backoff_start=2.0)  # a slot every 0.1 s
    order: list[str] = []
    budget.acquire(max_wait=1)  # a push just went out
    order.append("push0")
    budget.back_off("500.003.02")  # everybody waits 2 s: the line forms meanwhile

    def take(name: str, priority: bool) -> None:
        budget.acquire(5, priority=priority)
        order.append(name)

    threads = []
    for name, priority in [("push1", False), ("push2", False), ("query1", True),
                           ("query2", True), ("query3", True), ("query4", True)]:
        threads.append(threading.Thread(target=take, args=(name, priority)))
        settle, new = budget.waiting()
        threads[-1].start()
        wait_until(lambda settle=settle, new=new: sum(budget.waiting()) == settle + new + 1,
                   timeout=2, message="the caller to join the line")
    for thread in threads:
        thread.join(10)
    assert order == ["push0", "query1", "query2", "push1", "query3", "query4", "push2"]
    assert (budget.used, budget.used_for_settlement) == (7, 4)


def test_budget_settlement_caller_waits_from_the_next_slot_at_a_slow_pace() -> None:
    budget = RequestBudget(per_minute=30)  # a slot every 2 s
    budget.acquire(max_wait=1)
    with pytest.raises(BudgetExhausted):
        budget.acquire(max_wait=1)  # new work: the next slot is 2 s away
    started = time.monotonic()
    budget.acquire(max_wait=1, priority=True)  # settlement: 1 s beyond the next slot
    assert 1.5 < time.monotonic() - started < 5.0


def test_callbacks_off_every_purchase_settles_by_query(appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    sim.faults.drop_callbacks = True
    ids = [buy(appliance, phone, f"AA:BB:CC:00:10:{n:02d}").json()["id"]
           for n, phone in enumerate(["254708374149", "254700000032", "254700000001"])]
    finals = [wait_final(appliance, public_id) for public_id in ids]
    assert [f["status"] for f in finals] == ["completed", "cancelled", "failed"]
    assert all(p["callback_dropped"] for p in sim.prompts())
    settled_by = {r["settled_by"] for r in rows(appliance, "SELECT * FROM payments")}
    assert settled_by == {"query"}
    assert finals[0]["seconds_remaining"] > 1700


@pytest.mark.appliance(settlement={"pending_expiry_seconds": 2})
def test_no_final_answer_expires_with_the_reason_and_queries_stop(appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    public_id = buy(appliance, "254700000099", "AA:BB:CC:00:11:01").json()["id"]
    final = wait_final(appliance, public_id)
    assert (final["status"], final["result_code"]) == ("expired", "HOTSPOTD_TIMEOUT")
    [payment] = rows(appliance, "SELECT * FROM payments")
    assert "No final answer from M-Pesa within 2 s" in payment["result_desc"]
    assert payment["query_count"] >= 1
    # Settled: nothing more is asked. Proved by a later purchase that settles only by
    # STK Query (callbacks lost): its queries go out, and none for the expired one.
    client = appliance.mpesa.purchases.gateway_for(payment["channel"])
    asked: list[str] = []
    query = client.stk_query
    client.stk_query = lambda checkout_id, **options: (  # a spy, for this appliance
        asked.append(checkout_id), query(checkout_id, **options))[1]
    sim.faults.update(drop_callbacks=True)
    later = buy(appliance, "254708374149", "AA:BB:CC:00:11:02").json()["id"]
    assert wait_final(appliance, later)["status"] == "completed"
    [settled] = rows(appliance, "SELECT * FROM payments WHERE public_id = ?", later)
    assert settled["settled_by"] == "query" and settled["checkout_request_id"] in asked
    assert payment["checkout_request_id"] not in asked
    assert "in time" in final["message"]


def test_spike_arrest_on_queries_backs_off_and_still_settles(appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    sim.faults.update(drop_callbacks=True)
    public_id = buy(appliance, "254708374149", "AA:BB:CC:00:12:01").json()["id"]
    sim.faults.spike_arrest_next = 2
    assert wait_final(appliance, public_id, timeout=30)["status"] == "completed"
    budget = appliance.mpesa.purchases._daraja.budget  # noqa: SLF001 - the one budget
    assert budget.backoffs >= 1


@pytest.mark.appliance(daraja={"requests_per_minute": 600})
def test_a_burst_is_queued_in_order_and_none_is_dropped(appliance: Appliance) -> None:
    answers: list[int] = []

    def one(n: int) -> None:
        answers.append(buy(appliance, "254708374149" if n == 0 else f"2547000000{n:02d}",
                           f"AA:BB:CC:00:13:{n:02d}").status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in (0, 40, 41, 42, 43, 44)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [202] * 6
    created = sorted(p["created_at"] for p in appliance.daraja_simulator.prompts())
    assert len(created) == 6
    assert created[-1] - created[0] >= 0.4  # paced by the budget (0.1 s a request)


@pytest.mark.appliance(daraja={"timeout_seconds": 1.0}, c2b={"pull_interval_seconds": 3600})
def test_timed_out_push_is_uncertain_never_resent_and_pull_settles_it(appliance: Appliance) -> None:
    sim = appliance.daraja_simulator
    wait_until(lambda: appliance.db.query_one(
        "SELECT 1 FROM pull_state WHERE checked_at > 0"), message="first Pull run")
    sim.faults.update(timeout_next=1, hang_seconds=2.0, drop_callbacks=True)
    response = buy(appliance, "254708374149", "AA:BB:CC:00:14:01")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["result_code"]) == ("pending", None)
    assert "Check your phone" in body["message"]
    assert "Angalia simu yako" in status(appliance, body["id"], "sw")["message"]
    wait_until(lambda: sim.prompts()[0]["state"] == "resolved", message="approval")
    assert sim.stats()["stkpush"] == 1  # never re-sent
    assert appliance.mpesa.pull.run() == 1
    final = status(appliance, body["id"])
    assert (final["status"], final["receipt"]) == ("completed", sim.prompts()[0]["receipt"])
    assert len(rows(appliance, "SELECT * FROM grants")) == 1
    assert appliance.mpesa.pull.run() == 0  # idempotent


def test_subscriber_locked_gets_a_specific_message(appliance: Appliance) -> None:
    assert buy(appliance, "254700000050", "AA:BB:CC:00:15:01").status_code == 202
    locked = buy(appliance, "254700000050", "AA:BB:CC:00:15:02")
    assert locked.status_code == 502
    assert "Another M-Pesa request" in locked.json()["error"]["message"]
    in_swahili = buy(appliance, "254700000050", "AA:BB:CC:00:15:03", lang="sw")
    assert "Kuna ombi lingine" in in_swahili.json()["error"]["message"]


@pytest.mark.parametrize("code", known_codes())
def test_every_code_has_a_message_in_english_and_swahili(code: str) -> None:
    english = customer_message(code, "failed", "en")
    swahili = customer_message(code, "failed", "sw")
    assert english and swahili and english != swahili
    assert english != customer_message(None, "failed", "en")  # specific, not the fallback
