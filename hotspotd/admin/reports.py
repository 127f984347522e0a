"""The dashboard's figures, computed in SQL over indexed ranges (fast with a year of history):
past days come from the cached daily summary (`admin.daily_summary`), recent ones live.

Days and hours are the venue's, `utc_offset_minutes` east of UTC.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hotspotd.admin.daily_summary import LIVE_DAYS, day_start, past_days, scan_days
from hotspotd.ledger import unmatched
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


def _daily(db: Database, since: float, today_start: float, offset_minutes: int,
           now: float) -> dict[int, tuple[int, int, int]]:
    """{venue day number: (revenue, purchases, completed)} from `since` on: past days from
    the cached daily summary, the last few days scanned live from `payments`."""
    live_first = _day_number(today_start, offset_minutes) - (LIVE_DAYS - 1)
    days = past_days(db, _day_number(since, offset_minutes), live_first, offset_minutes, now)
    live_since = max(since, day_start(live_first, offset_minutes))
    for day, sums in scan_days(db.connection(), live_since, None, offset_minutes).items():
        days[day] = sums[:3]
    return days


def _day_number(start: float, offset_minutes: int) -> int:
    return int((start + offset_minutes * 60) // DAY)


def dashboard_figures(db: Database, now: float, offset_minutes: int,
                      chart_days: int = 30) -> dict[str, Any]:
    """Today / week / month figures, the revenue chart's days, and the live counts."""
    starts = period_starts(now, offset_minutes)
    first_chart_day = starts["today"] - (chart_days - 1) * DAY
    daily = _daily(db, min(first_chart_day, *starts.values()), starts["today"],
                   offset_minutes, now)
    periods = []
    for label, start in starts.items():
        first = _day_number(start, offset_minutes)
        sums = [value for day, value in daily.items() if day >= first]
        periods.append(Period(label, start, sum(v[0] for v in sums), sum(v[1] for v in sums),
                              sum(v[2] for v in sums)))
    revenue_days = [(day_start, daily.get(_day_number(day_start, offset_minutes),
                                          (0, 0, 0))[0])
                    for day_start in (first_chart_day + i * DAY for i in range(chart_days))]
    return {"periods": periods, "revenue_days": revenue_days, **_live_counts(db, now)}


def _live_counts(db: Database, now: float) -> dict[str, Any]:
    one = db.query_one
    held = unmatched.unresolved_totals(db)
    router = one("SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'failed'"
                 " AND created_at >= ?), 0) FROM router_ops WHERE state IN ('pending', 'failed')",
                 (now - DAY,))
    daraja = one("SELECT COUNT(*), COALESCE(SUM(push_state = 'rejected'), 0),"
                 " COALESCE(SUM(push_state = 'uncertain'), 0) FROM payments"
                 " WHERE created_at >= ?", (now - 3600,))
    return {
        "online": one("SELECT COUNT(DISTINCT mac) FROM radius_sessions"
                      " WHERE status = 'online'")[0],
        "entitled": one("SELECT COUNT(*) FROM entitlements WHERE expires_at > ?", (now,))[0],
        "waiting": one("SELECT COUNT(*) FROM payments WHERE status = 'pending'")[0],
        "unmatched_count": held[0], "unmatched_amount": held[1],
        "router_pending": router[0], "router_failed": router[1],
        "pushes_last_hour": daraja[0], "pushes_refused": daraja[1],
        "pushes_uncertain": daraja[2],
    }


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
