"""Per-day revenue, purchases and completed purchases for the dashboard, fast with years of
history: past days come from the `daily_revenue` table (migration 0011), filled once from
`payments`; the last `LIVE_DAYS` days are always computed from `payments` (a payment is
settled within minutes, but a late callback may still change one after midnight).

A cached day is recomputed when a payment for it appears later (seeded, imported, or money
assigned by the owner): `daily_revenue_state.payments_seen` remembers the highest payment id
already accounted for, and only rows above it are looked at. A day that still has a pending
payment is never cached.
"""

from __future__ import annotations

import sqlite3

from hotspotd.store.db import Database

DAY = 86400
LIVE_DAYS = 3  # today, yesterday and the day before: always from `payments`

Sums = tuple[int, int, int]  # (revenue, purchases, completed)


def scan_days(conn: sqlite3.Connection, start: float, end: float | None,
              offset_minutes: int) -> dict[int, tuple[int, int, int, int]]:
    """{venue day: (revenue, purchases, completed, pending)} of payments created in
    [start, end): one range scan of the covering index `payments_created`."""
    rows = conn.execute(
        "SELECT CAST((created_at + ?) / 86400 AS INTEGER) AS day, COUNT(*) AS purchases,"
        " SUM(status = 'completed') AS completed, SUM(status = 'pending') AS pending,"
        " COALESCE(SUM(CASE WHEN status = 'completed' THEN COALESCE(paid_amount, amount)"
        " END), 0) AS revenue FROM payments WHERE created_at >= ? AND created_at < ?"
        " GROUP BY day", (offset_minutes * 60, start, end if end is not None else 1e18))
    return {int(r[0]): (int(r[4]), int(r[1]), int(r[2]), int(r[3])) for r in rows}


def day_start(day: int, offset_minutes: int) -> float:
    return day * DAY - offset_minutes * 60


def past_days(db: Database, first_day: int, end_day: int, offset_minutes: int,
              now: float) -> dict[int, Sums]:
    """Sums of the venue days [first_day, end_day), from the cache, filling it as needed."""
    if first_day >= end_day:
        return {}
    conn = db.connection()
    newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM payments").fetchone()[0]
    seen_row = conn.execute("SELECT payments_seen FROM daily_revenue_state"
                            " WHERE offset_minutes = ?", (offset_minutes,)).fetchone()
    seen = seen_row[0] if seen_row else newest  # first look: nothing cached to check
    stale: set[int] = set()
    if newest > seen:  # payments since the last look: any for a cached day?
        stale = {int(r[0]) for r in conn.execute(
            "SELECT DISTINCT CAST((created_at + ?) / 86400 AS INTEGER) FROM payments"
            " WHERE id > ?", (offset_minutes * 60, seen))}
    cached = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in conn.execute(
        "SELECT day, revenue, purchases, completed FROM daily_revenue WHERE offset_minutes = ?"
        " AND day >= ? AND day < ?", (offset_minutes, first_day, end_day))
        if int(r[0]) not in stale}
    missing = [day for day in range(first_day, end_day) if day not in cached]
    fresh: dict[int, Sums] = {}
    unsettled: set[int] = set()
    if missing:
        scanned = scan_days(conn, day_start(missing[0], offset_minutes),
                            day_start(missing[-1] + 1, offset_minutes), offset_minutes)
        for day in missing:
            revenue, purchases, completed, pending = scanned.get(day, (0, 0, 0, 0))
            fresh[day] = (revenue, purchases, completed)
            if pending:
                unsettled.add(day)  # not final yet: computed again next time
    if missing or newest > seen or seen_row is None:
        store = {day: sums for day, sums in fresh.items() if day not in unsettled}
        drop = sorted((stale | unsettled) - set(store))
        with db.write() as writer:
            writer.executemany(
                "INSERT OR REPLACE INTO daily_revenue (offset_minutes, day, revenue, purchases,"
                " completed, computed_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(offset_minutes, day, *sums, now) for day, sums in store.items()])
            writer.executemany("DELETE FROM daily_revenue WHERE offset_minutes = ? AND day = ?",
                               [(offset_minutes, day) for day in drop])
            writer.execute("INSERT OR REPLACE INTO daily_revenue_state (offset_minutes,"
                           " payments_seen) VALUES (?, ?)", (offset_minutes, newest))
    return {**cached, **fresh}
