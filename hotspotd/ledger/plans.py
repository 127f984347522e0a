"""Plans: what a customer can buy (name, price in KES, duration, rate limit)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hotspotd.ledger.errors import UnknownPlan


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    price: int
    duration_seconds: int
    rate_limit: str | None
    devices: int = 1  # how many devices may use one purchase at once (ledger.sharing)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "price": self.price,
                "duration_seconds": self.duration_seconds, "rate_limit": self.rate_limit,
                "devices": self.devices}


DEMO_PLANS = (
    ("30 minutes", 10, 30 * 60, "1M/2M"),
    ("1 hour", 20, 60 * 60, "2M/5M"),
    ("1 day", 80, 24 * 3600, "2M/5M"),
    ("1 week", 400, 7 * 24 * 3600, "3M/8M"),
)


def _plan(row: sqlite3.Row) -> Plan:
    return Plan(row["id"], row["name"], row["price"], row["duration_seconds"], row["rate_limit"],
                row["devices"])


def list_plans(conn: sqlite3.Connection) -> list[Plan]:
    rows = conn.execute("SELECT * FROM plans WHERE active = 1 ORDER BY sort_order, price, id")
    return [_plan(row) for row in rows]


def get_plan(conn: sqlite3.Connection, plan_id: object, *, include_hidden: bool = False) -> Plan:
    try:
        wanted = int(plan_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise UnknownPlan("Choose one of the plans on the page.") from None
    row = conn.execute("SELECT * FROM plans WHERE id = ?", (wanted,)).fetchone()
    if row is None or (not row["active"] and not include_hidden):
        raise UnknownPlan("That plan is no longer sold; choose one of the plans on the page.")
    return _plan(row)


def create_plan(conn: sqlite3.Connection, *, name: str, price: int, duration_seconds: int,
                rate_limit: str | None, now: float, sort_order: int = 0) -> Plan:
    cursor = conn.execute(
        "INSERT INTO plans (name, price, duration_seconds, rate_limit, sort_order, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)", (name, price, duration_seconds, rate_limit, sort_order, now))
    return Plan(int(cursor.lastrowid or 0), name, price, duration_seconds, rate_limit)


def seed_demo_plans(conn: sqlite3.Connection, now: float) -> int:
    """Give an empty database the demo plans; returns how many were added."""
    if conn.execute("SELECT COUNT(*) FROM plans").fetchone()[0]:
        return 0
    for order, (name, price, seconds, rate) in enumerate(DEMO_PLANS):
        create_plan(conn, name=name, price=price, duration_seconds=seconds, rate_limit=rate,
                    now=now, sort_order=order)
    return len(DEMO_PLANS)


PLAN_COLUMNS = ("name", "price", "duration_seconds", "rate_limit", "active",
                "data_cap_bytes", "idle_timeout_seconds", "sort_order", "devices")


def next_sort_order(conn: sqlite3.Connection) -> int:
    """The place after the last plan in the portal's order."""
    return int(conn.execute("SELECT COALESCE(MAX(sort_order), 0) + 1 FROM plans").fetchone()[0])


def change_plan(conn: sqlite3.Connection, plan_id: int, changes: dict[str, object]) -> None:
    """Set a plan's columns (names from PLAN_COLUMNS only; anything else is refused)."""
    unknown = set(changes) - set(PLAN_COLUMNS)
    if unknown:
        raise ValueError(f"not plan columns: {sorted(unknown)}")
    if not changes:
        return
    assignments = ", ".join(f"{key} = ?" for key in changes)
    conn.execute(f"UPDATE plans SET {assignments} WHERE id = ?",  # noqa: S608 (keys checked)
                 [*changes.values(), plan_id])


def plan_order(conn: sqlite3.Connection) -> list[int]:
    """Plan ids in the portal's order."""
    return [row["id"] for row in conn.execute("SELECT id FROM plans ORDER BY sort_order,"
                                              " price, id")]


def set_plan_order(conn: sqlite3.Connection, ids: list[int]) -> None:
    for order, each in enumerate(ids):
        conn.execute("UPDATE plans SET sort_order = ? WHERE id = ?", (order, each))
