"""Plans and voucher batches as the owner manages them (audited).

A plan change never alters time already paid: grants copied the seconds and rate limit
they were sold with, and entitlements keep their own expiry. The data cap and idle timeout
are the plan's current ones (RADIUS reads them at each login).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from hotspotd.admin.accounts import AdminError
from hotspotd.admin.actions import Actor
from hotspotd.admin.audit import record_audit
from hotspotd.ledger import vouchers
from hotspotd.ledger.plans import (
    change_plan,
    create_plan,
    next_sort_order,
    plan_order,
    set_plan_order,
)
from hotspotd.store.db import Database

RATE_LIMIT = re.compile(r"^\d+[kKmMgG]?(/\d+[kKmMgG]?)?$")
PLAN_FIELDS = ("name", "price", "duration_seconds", "rate_limit", "data_cap_bytes",
               "idle_timeout_seconds", "sort_order", "active", "devices")
MB = 1_000_000


def all_plans(db: Database) -> list[sqlite3.Row]:
    return db.query("SELECT * FROM plans ORDER BY active DESC, sort_order, price, id")


def parse_plan_form(form: Any) -> dict[str, Any]:
    """Checked plan fields from a form: name, price (KES), minutes, rate limit, data cap
    (MB), idle timeout (minutes; the router logs an idle device out, its time keeps)."""
    name = (form.get("name") or "").strip()
    if not 1 <= len(name) <= 40:
        raise AdminError("A plan name is 1-40 characters.")
    try:
        price = int(form.get("price", ""))
        minutes = int(form.get("minutes", ""))
    except ValueError:
        raise AdminError("Price and minutes are whole numbers.") from None
    if not 1 <= price <= 150_000:
        raise AdminError("The price is between KES 1 and KES 150,000 (M-Pesa's limit).")
    if not 1 <= minutes <= 60 * 24 * 366:
        raise AdminError("The duration is between 1 minute and a year.")
    rate = (form.get("rate_limit") or "").strip() or None
    if rate is not None and not RATE_LIMIT.match(rate):
        raise AdminError("A rate limit looks like 2M/5M (upload/download) or 512k.")
    cap_text = (form.get("data_cap_mb") or "").strip()
    if cap_text and (not cap_text.isdigit() or int(cap_text) < 1):
        raise AdminError("A data cap is a whole number of MB (empty: no cap).")
    idle_text = (form.get("idle_minutes") or "").strip()
    if idle_text and (not idle_text.isdigit() or not 1 <= int(idle_text) <= 24 * 60):
        raise AdminError("An idle timeout is 1-1440 minutes (empty: none).")
    devices_text = (form.get("devices") or "1").strip()
    if not devices_text.isdigit() or not 1 <= int(devices_text) <= 10:
        raise AdminError("A plan is for 1-10 devices at once.")
    return {"name": name, "price": price, "duration_seconds": minutes * 60, "rate_limit": rate,
            "data_cap_bytes": int(cap_text) * MB if cap_text else None,
            "idle_timeout_seconds": int(idle_text) * 60 if idle_text else None,
            "devices": int(devices_text)}


def _plan_row(conn: sqlite3.Connection, plan_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM plans WHERE id = ?", (plan_id,)).fetchone()
    if row is None:
        raise AdminError("No such plan.")
    return {key: row[key] for key in PLAN_FIELDS}


def add_plan(db: Database, actor: Actor, fields: dict[str, Any]) -> int:
    with db.write() as conn:
        terms = {key: fields.pop(key, default) for key, default in (
            ("data_cap_bytes", None), ("idle_timeout_seconds", None), ("devices", 1))}
        plan = create_plan(conn, now=actor.now, sort_order=next_sort_order(conn), **fields)
        change_plan(conn, plan.id, terms)
        fields.update(terms)
        record_audit(conn, at=actor.now, username=actor.username, action="plan.create",
                     target=str(plan.id), after=fields, source_ip=actor.source_ip)
    return plan.id


def update_plan(db: Database, actor: Actor, plan_id: int, changes: dict[str, Any]) -> None:
    """Change a plan's fields (only those in PLAN_FIELDS); the old values go to the audit."""
    unknown = set(changes) - set(PLAN_FIELDS)
    if unknown:
        raise AdminError(f"Unknown plan fields: {sorted(unknown)}")
    with db.write() as conn:
        before = _plan_row(conn, plan_id)
        change_plan(conn, plan_id, changes)
        record_audit(conn, at=actor.now, username=actor.username, action="plan.update",
                     target=str(plan_id), before={k: before[k] for k in changes},
                     after=changes, source_ip=actor.source_ip)


def move_plan(db: Database, actor: Actor, plan_id: int, direction: int) -> None:
    """Swap a plan with its neighbour in the portal's order (direction -1 up, +1 down)."""
    with db.write() as conn:
        ids = plan_order(conn)
        if plan_id not in ids:
            raise AdminError("No such plan.")
        index = ids.index(plan_id)
        other = index + (1 if direction > 0 else -1)
        if not 0 <= other < len(ids):
            return
        ids[index], ids[other] = ids[other], ids[index]
        set_plan_order(conn, ids)
        record_audit(conn, at=actor.now, username=actor.username, action="plan.reorder",
                     target=str(plan_id), after={"order": ids}, source_ip=actor.source_ip)


def make_voucher_batch(db: Database, actor: Actor, *, plan_id: object, count: object,
                       valid_days: object) -> str:
    try:
        how_many = int(str(count))
        days = int(str(valid_days or 0))
        plan = int(str(plan_id))
    except ValueError:
        raise AdminError("Count, plan and days are whole numbers.") from None
    batch, made = vouchers.create_batch(db, plan_id=plan, count=how_many, now=actor.now,
                                        valid_for=days * 86400 if days > 0 else None)
    with db.write() as conn:
        record_audit(conn, at=actor.now, username=actor.username, action="vouchers.create",
                     target=batch, after={"plan_id": plan, "count": len(made),
                                          "valid_days": days}, source_ip=actor.source_ip)
    return batch


def void_vouchers(db: Database, actor: Actor, voucher_ids: list[int]) -> int:
    done = sum(vouchers.void(db, voucher_id=each, now=actor.now) for each in voucher_ids)
    with db.write() as conn:
        record_audit(conn, at=actor.now, username=actor.username, action="vouchers.void",
                     target=",".join(map(str, voucher_ids))[:200], after={"voided": done},
                     source_ip=actor.source_ip)
    return done


def voucher_batches(db: Database) -> list[sqlite3.Row]:
    return db.query(
        "SELECT v.batch, v.plan_id, p.name AS plan_name, MIN(v.created_at) AS created_at,"
        " COUNT(*) AS total, SUM(v.status = 'unused') AS unused, SUM(v.status = 'used') AS used,"
        " SUM(v.status = 'void') AS void FROM vouchers v JOIN plans p ON p.id = v.plan_id"
        " GROUP BY v.batch ORDER BY created_at DESC LIMIT 100")
