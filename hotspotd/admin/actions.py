"""What the owner changes about devices and money: each action one transaction, audited."""

from __future__ import annotations

from dataclasses import dataclass

from hotspotd.admin.accounts import AdminError
from hotspotd.admin.audit import record_audit
from hotspotd.ledger import unmatched
from hotspotd.ledger.events import record_event
from hotspotd.ledger.grants import DuplicateGrant, Grant, get_entitlement, grant_time
from hotspotd.ledger.macs import checked_mac
from hotspotd.ledger.plans import get_plan
from hotspotd.ledger.router_ops import enqueue_router_op
from hotspotd.store.db import Database

MAX_FREE_MINUTES = 60 * 24 * 31


@dataclass(frozen=True)
class Actor:
    """Who is acting, for the audit log."""

    username: str
    source_ip: str | None
    now: float


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise AdminError("Say why (a few words for the audit log).")
    return text[:200]


def give_time(db: Database, actor: Actor, *, mac: str, minutes: int, reason: str) -> Grant:
    """Extend a device or give it free time: stacks like paid time, source `owner`."""
    device = checked_mac(mac)
    why = _reason(reason)
    if not 1 <= minutes <= MAX_FREE_MINUTES:
        raise AdminError(f"Give between 1 and {MAX_FREE_MINUTES} minutes.")
    with db.write() as conn:
        current = get_entitlement(conn, device)
        last_ip = conn.execute("SELECT last_ip FROM devices WHERE mac = ?", (device,)).fetchone()
        grant = grant_time(conn, mac=device, seconds=minutes * 60, now=actor.now,
                           plan_id=current.plan_id if current else None,
                           rate_limit=current.rate_limit if current else None, source="owner",
                           ip=last_ip["last_ip"] if last_ip else None)
        record_audit(conn, at=actor.now, username=actor.username, action="device.give_time",
                     target=device, source_ip=actor.source_ip,
                     before={"expires_at": current.expires_at if current else None},
                     after={"expires_at": grant.expires_at, "minutes": minutes,
                            "reason": why})
    return grant


def disconnect_device(db: Database, actor: Actor, *, mac: str) -> None:
    """End the device's session on the router now (its paid time is kept)."""
    device = checked_mac(mac)
    with db.write() as conn:
        enqueue_router_op(conn, mac=device, ip=None, action="disconnect", now=actor.now)
        record_event(conn, actor.now, "owner.disconnect", mac=device, by=actor.username)
        record_audit(conn, at=actor.now, username=actor.username, action="device.disconnect",
                     target=device, source_ip=actor.source_ip)


def block_mac(db: Database, actor: Actor, *, mac: str, reason: str) -> None:
    """Refuse the device from now on and end its session."""
    device = checked_mac(mac)
    why = _reason(reason)
    with db.write() as conn:
        conn.execute("INSERT INTO blocked_macs (mac, reason, blocked_by, blocked_at)"
                     " VALUES (?, ?, ?, ?) ON CONFLICT (mac) DO UPDATE SET"
                     " reason = excluded.reason", (device, why, actor.username, actor.now))
        enqueue_router_op(conn, mac=device, ip=None, action="disconnect", now=actor.now)
        record_event(conn, actor.now, "owner.block", mac=device, reason=why)
        record_audit(conn, at=actor.now, username=actor.username, action="device.block",
                     target=device, source_ip=actor.source_ip, after={"reason": why})


def unblock_mac(db: Database, actor: Actor, *, mac: str) -> None:
    device = checked_mac(mac)
    with db.write() as conn:
        row = conn.execute("SELECT reason FROM blocked_macs WHERE mac = ?",
                           (device,)).fetchone()
        conn.execute("DELETE FROM blocked_macs WHERE mac = ?", (device,))
        record_audit(conn, at=actor.now, username=actor.username, action="device.unblock",
                     target=device, source_ip=actor.source_ip,
                     before={"reason": row["reason"]} if row else None)


def is_blocked(db: Database, mac: str) -> bool:
    return db.query_one("SELECT 1 FROM blocked_macs WHERE mac = ?", (mac,)) is not None


def assign_unmatched(db: Database, actor: Actor, *, unmatched_id: int, mac: str,
                     plan_id: object) -> Grant:
    """Give held money's time to a device: grant and resolution commit together, once."""
    device = checked_mac(mac)
    with db.write() as conn:
        row = unmatched.get(conn, unmatched_id)
        if row is None:
            raise AdminError("No such unmatched payment.")
        if row["resolved_at"] is not None:
            raise AdminError("This money was assigned already.")
        plan = get_plan(conn, plan_id, include_hidden=True)
        last_ip = conn.execute("SELECT last_ip FROM devices WHERE mac = ?", (device,)).fetchone()
        try:
            grant = grant_time(conn, mac=device, seconds=plan.duration_seconds, now=actor.now,
                               plan_id=plan.id, rate_limit=plan.rate_limit, source="owner",
                               receipt=row["receipt"],
                               ip=last_ip["last_ip"] if last_ip else None)
        except DuplicateGrant:
            raise AdminError("This M-Pesa receipt has given time already.") from None
        unmatched.resolve(conn, unmatched_id, now=actor.now)
        record_event(conn, actor.now, "unmatched.assigned", mac=device,
                     unmatched_id=unmatched_id, receipt=row["receipt"], plan_id=plan.id)
        record_audit(conn, at=actor.now, username=actor.username, action="unmatched.assign",
                     target=str(unmatched_id), source_ip=actor.source_ip,
                     before={"amount": row["amount"], "receipt": row["receipt"]},
                     after={"mac": device, "plan_id": plan.id, "grant_id": grant.id})
    return grant


def set_refund_needed(db: Database, actor: Actor, *, payment_id: int, needed: bool,
                      note: str = "") -> None:
    with db.write() as conn:
        if conn.execute("SELECT 1 FROM payments WHERE id = ?", (payment_id,)).fetchone() is None:
            raise AdminError("No such payment.")
        before = conn.execute("SELECT refund_needed, note FROM payment_flags"
                              " WHERE payment_id = ?", (payment_id,)).fetchone()
        conn.execute("INSERT INTO payment_flags (payment_id, refund_needed, note, updated_by,"
                     " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO UPDATE"
                     " SET refund_needed = excluded.refund_needed, note = excluded.note,"
                     " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                     (payment_id, int(needed), note[:200], actor.username, actor.now))
        record_audit(conn, at=actor.now, username=actor.username, action="payment.refund_flag",
                     target=str(payment_id), source_ip=actor.source_ip,
                     before=dict(before) if before else None,
                     after={"refund_needed": needed, "note": note[:200]})
