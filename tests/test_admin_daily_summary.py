"""The dashboard's daily summary: cached past days give the same figures as a full scan,
are really read from the cache, are recomputed when a payment for a cached day appears
later, and a day with a pending payment is never cached."""

from __future__ import annotations

import random
from collections.abc import Callable

from conftest import FakeClock

from hotspotd.admin.daily_summary import LIVE_DAYS
from hotspotd.admin.reports import dashboard_figures, local_day_start
from hotspotd.ledger.plans import Plan
from hotspotd.store.db import Database

OFFSET = 180
DAY = 86400


def insert(db: Database, rows: list[tuple[float, str, int, int | None]]) -> None:
    with db.write() as conn:
        start = conn.execute("SELECT COALESCE(MAX(id), 0) FROM payments").fetchone()[0]
        for index, (at, status, amount, paid) in enumerate(rows, start + 1):
            conn.execute("INSERT INTO payments (public_id, plan_id, mac, phone, amount, status,"
                         " paid_amount, created_at) VALUES (?, 1, 'AA:00:00:00:00:01',"
                         " '254700000001', ?, ?, ?, ?)", (f"p{index}", amount, status, paid, at))


def brute_force(db: Database, now: float) -> list[int]:
    """Revenue of each of the chart's 30 days, summed in Python from every payment."""
    today = local_day_start(now, OFFSET)
    days = [0] * 30
    for row in db.query("SELECT created_at, status, amount, paid_amount FROM payments"):
        index = 29 - int((today - local_day_start(row[0], OFFSET)) // DAY)
        if 0 <= index < 30 and row["status"] == "completed":
            days[index] += row["paid_amount"] if row["paid_amount"] is not None else row[2]
    return days


def chart(db: Database, now: float) -> list[int]:
    return [revenue for _, revenue in dashboard_figures(db, now, OFFSET)["revenue_days"]]


def test_cached_days_match_a_full_scan(db: Database, clock: FakeClock,
                                       make_plan: Callable[..., Plan]) -> None:
    make_plan()
    now = clock()
    rng = random.Random(6)
    insert(db, [(now - rng.uniform(0, 60 * DAY), rng.choice(["completed", "failed",
                                                             "cancelled", "expired"]),
                 rng.choice([10, 20, 80]), rng.choice([None, 5, 20])) for _ in range(3000)])
    expected = brute_force(db, now)
    assert chart(db, now) == expected  # first view fills the cache
    cached = db.query_one("SELECT COUNT(*) FROM daily_revenue")[0]
    assert cached >= 30 - LIVE_DAYS
    assert chart(db, now) == expected  # second view from the cache
    later = now + 2 * DAY  # two days on: more days cached, same history
    assert chart(db, later) == brute_force(db, later)
    assert db.query_one("SELECT COUNT(*) FROM daily_revenue")[0] > cached


def test_cache_is_read_and_invalidated_by_a_late_payment(
        db: Database, clock: FakeClock, make_plan: Callable[..., Plan]) -> None:
    make_plan()
    now = clock()
    ten_days_ago = now - 10 * DAY
    insert(db, [(ten_days_ago, "completed", 20, 20)])
    assert chart(db, now)[19] == 20
    day = db.query_one("SELECT day FROM daily_revenue WHERE revenue = 20")[0]
    db.connection().execute("UPDATE daily_revenue SET revenue = 999 WHERE day = ?", (day,))
    assert chart(db, now)[19] == 999  # proves the figure comes from the cache
    insert(db, [(ten_days_ago + 60, "completed", 80, None)])  # e.g. assigned money
    assert chart(db, now)[19] == 100  # the day was recomputed from payments


def test_a_day_with_a_pending_payment_is_not_cached(
        db: Database, clock: FakeClock, make_plan: Callable[..., Plan]) -> None:
    make_plan()
    now = clock()
    insert(db, [(now - 5 * DAY, "pending", 20, None)])
    assert chart(db, now)[24] == 0
    assert db.query_one("SELECT COUNT(*) FROM daily_revenue WHERE revenue > 0 OR"
                        " purchases > 0")[0] == 0
    db.connection().execute("UPDATE payments SET status = 'completed', paid_amount = 20")
    assert chart(db, now)[24] == 20
