"""What the hub's owner UI shows, computed in SQL from the projections.

Money is M-Pesa money the appliances settled (completed payments, the paid amount), in the
operator's time zone: today, this week (from Monday) and this month. Devices online and the
appliance's own health come from its latest health snapshot; an appliance not heard from
within `stale_after_seconds` is flagged stale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hotspotd.hub.pgstore import HubStore


@dataclass(frozen=True)
class Periods:
    day: float
    week: float
    month: float


def period_starts(now: float, utc_offset_minutes: int) -> Periods:
    """Epoch seconds at which today, this week (Monday) and this month began, locally."""
    zone = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    local = dt.datetime.fromtimestamp(now, zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - dt.timedelta(days=day.weekday())
    month = day.replace(day=1)
    return Periods(day.timestamp(), week.timestamp(), month.timestamp())


_VENUES = """
SELECT a.id, a.name, a.network, a.last_heard, a.enrolled_at, a.revoked_at, a.shipped_seq,
       COALESCE(p.today, 0) AS today, COALESCE(p.week, 0) AS week,
       COALESCE(p.month, 0) AS month, COALESCE(p.waiting, 0) AS waiting,
       COALESCE(u.open, 0) AS unmatched_count, COALESCE(u.amount, 0) AS unmatched_amount,
       h.devices_online, h.sessions_online, h.outbox_depth, h.journal_depth, h.version,
       h.at AS health_at, h.payments_waiting AS health_waiting
FROM appliances a
LEFT JOIN (
    SELECT appliance_id,
           SUM(COALESCE(paid_amount, amount)) FILTER (WHERE status = 'completed'
               AND settled_at >= %(day)s) AS today,
           SUM(COALESCE(paid_amount, amount)) FILTER (WHERE status = 'completed'
               AND settled_at >= %(week)s) AS week,
           SUM(COALESCE(paid_amount, amount)) FILTER (WHERE status = 'completed'
               AND settled_at >= %(month)s) AS month,
           COUNT(*) FILTER (WHERE status = 'pending') AS waiting
    FROM payments WHERE status = 'pending' OR settled_at >= LEAST(%(week)s, %(month)s)
    GROUP BY appliance_id) p ON p.appliance_id = a.id
LEFT JOIN (
    SELECT appliance_id, COUNT(*) AS open, SUM(amount) AS amount
    FROM unmatched_payments WHERE resolved_at IS NULL GROUP BY appliance_id
) u ON u.appliance_id = a.id
LEFT JOIN health h ON h.appliance_id = a.id
{where}
ORDER BY a.name
"""

TOTALS = ("today", "week", "month", "waiting", "unmatched_count", "unmatched_amount",
          "devices_online")


def venues(store: HubStore, now: float, utc_offset_minutes: int, stale_after: float,
           venue_id: int | None = None) -> list[dict[str, Any]]:
    """One dict per venue (all, or the one `venue_id`), with `stale` and `state` added."""
    periods = period_starts(now, utc_offset_minutes)
    where = "WHERE a.id = %(venue)s" if venue_id is not None else ""
    with store.connection() as conn:
        rows = conn.execute(_VENUES.format(where=where), {
            "day": periods.day, "week": periods.week, "month": periods.month,
            "venue": venue_id}).fetchall()
    for row in rows:
        row["stale"] = row["last_heard"] is None or now - row["last_heard"] > stale_after
        row["state"] = ("revoked" if row["revoked_at"] else "not enrolled"
                        if row["enrolled_at"] is None else "stale" if row["stale"] else "ok")
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(row[name] or 0 for row in rows) for name in TOTALS}


def recent_payments(store: HubStore, venue_id: int, limit: int = 20) -> list[dict[str, Any]]:
    with store.connection() as conn:
        return conn.execute(
            "SELECT local_id, status, amount, paid_amount, receipt, phone_masked, mac,"
            " created_at, settled_at FROM payments WHERE appliance_id = %s"
            " ORDER BY local_id DESC LIMIT %s", (venue_id, limit)).fetchall()


def when(epoch: float | None, utc_offset_minutes: int) -> str:
    """A time for the page, in the operator's zone; "never" for None."""
    if epoch is None:
        return "never"
    zone = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    return dt.datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M:%S")


def roaming(store: HubStore, venue_id: int, limit: int = 20) -> dict[str, Any]:
    """The venue's roaming: its vouchers redeemed elsewhere, others' redeemed here, time
    that moved, and double redemptions (the conflict rule: both customers kept time)."""
    with store.connection() as conn:
        claims = conn.execute(
            "SELECT c.code, c.mac, c.claimed_at, h.name AS home, b.name AS claimed_by"
            " FROM voucher_claims c JOIN appliances h ON h.id = c.home_appliance_id"
            " JOIN appliances b ON b.id = c.claimed_by WHERE (c.home_appliance_id = %(v)s"
            " OR c.claimed_by = %(v)s) AND c.claimed_by <> c.home_appliance_id"
            " ORDER BY c.id DESC LIMIT %(n)s", {"v": venue_id, "n": limit}).fetchall()
        moves = conn.execute(
            "SELECT t.receipt, t.mac, t.seconds, t.claimed_at, h.name AS home,"
            " b.name AS claimed_by FROM time_claims t JOIN appliances h"
            " ON h.id = t.home_appliance_id JOIN appliances b ON b.id = t.claimed_by"
            " WHERE t.home_appliance_id = %(v)s OR t.claimed_by = %(v)s"
            " ORDER BY t.id DESC LIMIT %(n)s", {"v": venue_id, "n": limit}).fetchall()
        conflicts = conn.execute(
            "SELECT c.code, c.mac AS claimed_mac, b.name AS claimed_by, f.home_used_by_mac,"
            " f.home_used_at, f.found_at FROM voucher_conflicts f JOIN voucher_claims c"
            " ON c.id = f.claim_id JOIN appliances b ON b.id = c.claimed_by"
            " WHERE c.home_appliance_id = %(v)s ORDER BY f.found_at DESC LIMIT %(n)s",
            {"v": venue_id, "n": limit}).fetchall()
    return {"claims": claims, "moves": moves, "conflicts": conflicts}
