"""The dashboard's figures, computed in SQL over indexed ranges (fast with a year of history).

Days and hours are the venue's, `utc_offset_minutes` east of UTC.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hotspotd.store.db import Database

DAY = 86400


@dataclass(frozen=True)
class Period:
    label: str
    start: float
    revenue: int
    purchases: int
    completed: int

    @property
    def success_rate(self) -> float | None:
        return self.completed / self.purchases if self.purchases else None


def local_day_start(now: float, offset_minutes: int) -> float:
    offset = offset_minutes * 60
    return (now + offset) // DAY * DAY - offset


def period_starts(now: float, offset_minutes: int) -> dict[str, float]:
    """Start of today, of this week (Monday) and of this month, in the venue's time."""
    today = local_day_start(now, offset_minutes)
    local = time.gmtime(today + offset_minutes * 60)
    week = today - local.tm_wday * DAY
    month = today - (local.tm_mday - 1) * DAY
    return {"today": today, "week": week, "month": month}


def _period(db: Database, label: str, start: float, end: float) -> Period:
    row = db.query_one(
        "SELECT COUNT(*) AS purchases,"
        " COALESCE(SUM(status = 'completed'), 0) AS completed,"
        " COALESCE(SUM(CASE WHEN status = 'completed' THEN COALESCE(paid_amount, amount)"
        " END), 0) AS revenue FROM payments WHERE created_at >= ? AND created_at < ?",
        (start, end))
    assert row is not None
    return Period(label, start, int(row["revenue"]), int(row["purchases"]),
                  int(row["completed"]))


def dashboard_figures(db: Database, now: float, offset_minutes: int) -> dict[str, Any]:
    starts = period_starts(now, offset_minutes)
    periods = [_period(db, label, start, now + 1) for label, start in starts.items()]
    one = db.query_one
    unmatched = one("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM unmatched_payments"
                    " WHERE resolved_at IS NULL")
    router = one("SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'failed'"
                 " AND created_at >= ?), 0) FROM router_ops WHERE state IN ('pending', 'failed')",
                 (now - DAY,))
    daraja = one("SELECT COUNT(*), COALESCE(SUM(push_state = 'rejected'), 0),"
                 " COALESCE(SUM(push_state = 'uncertain'), 0) FROM payments"
                 " WHERE created_at >= ?", (now - 3600,))
    return {
        "periods": periods,
        "online": one("SELECT COUNT(DISTINCT mac) FROM radius_sessions"
                      " WHERE status = 'online'")[0],
        "entitled": one("SELECT COUNT(*) FROM entitlements WHERE expires_at > ?", (now,))[0],
        "waiting": one("SELECT COUNT(*) FROM payments WHERE status = 'pending'")[0],
        "unmatched_count": unmatched[0], "unmatched_amount": unmatched[1],
        "router_pending": router[0], "router_failed": router[1],
        "pushes_last_hour": daraja[0], "pushes_refused": daraja[1],
        "pushes_uncertain": daraja[2],
    }


def revenue_per_day(db: Database, now: float, offset_minutes: int,
                    days: int = 30) -> list[tuple[float, int]]:
    """(day start, revenue) for each of the last `days` days, oldest first, zeros included."""
    first = local_day_start(now, offset_minutes) - (days - 1) * DAY
    offset = offset_minutes * 60
    rows = db.query(
        "SELECT CAST((created_at + ?) / 86400 AS INTEGER) AS day,"
        " SUM(COALESCE(paid_amount, amount)) AS revenue FROM payments"
        " WHERE created_at >= ? AND status = 'completed' GROUP BY day", (offset, first))
    by_day = {int(row["day"]): int(row["revenue"]) for row in rows}
    result = []
    for index in range(days):
        start = first + index * DAY
        result.append((start, by_day.get(int((start + offset) // DAY), 0)))
    return result


def purchases_per_hour(db: Database, now: float, offset_minutes: int) -> list[int]:
    """Purchases started in each hour of today (venue time), 24 numbers."""
    start = local_day_start(now, offset_minutes)
    rows = db.query("SELECT CAST((created_at - ?) / 3600 AS INTEGER) AS hour, COUNT(*) AS n"
                    " FROM payments WHERE created_at >= ? GROUP BY hour", (start, start))
    hours = [0] * 24
    for row in rows:
        if 0 <= row["hour"] < 24:
            hours[int(row["hour"])] = int(row["n"])
    return hours
