"""The Daraja request budget lets go of its waiters when the daemon stops: a caller waiting
for its slot (a reconcile round, a queued push) gets BudgetExhausted at once, so the stop is
not held up until its turn; what it would have done is in the database for the next start."""

from __future__ import annotations

import threading

import pytest
from support.wait import wait_until

from hotspotd.daraja.budget import BudgetExhausted, RequestBudget


def test_closing_the_budget_releases_every_waiter_and_refuses_newcomers() -> None:
    budget = RequestBudget(per_minute=1)
    budget.acquire(0)  # the only slot of the next 60 s is taken
    outcomes: list[str] = []

    def wait_for_a_slot(priority: bool) -> None:
        try:
            budget.acquire(1000, priority=priority)
            outcomes.append("got a slot")
        except BudgetExhausted as exc:
            outcomes.append(str(exc))

    waiters = [threading.Thread(target=wait_for_a_slot, args=(priority,))
               for priority in (True, False, False)]
    for waiter in waiters:
        waiter.start()
    wait_until(lambda: budget.waiting() == (1, 2), message="three callers in line")
    budget.close()
    for waiter in waiters:
        waiter.join(10)
        assert not waiter.is_alive()
    assert outcomes == ["stopping: no more Daraja requests"] * 3
    assert budget.waiting() == (0, 0)
    with pytest.raises(BudgetExhausted, match="stopping"):
        budget.acquire(120, priority=True)
