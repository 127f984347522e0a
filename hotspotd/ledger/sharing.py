"""One plan, several devices: the payer adds a device (a laptop beside the phone) to a paid
plan that allows more than one, with the M-Pesa receipt and the paying phone.

Time is shared, never added: an added device is online until the payment's own time ends,
with the plan's rate limit and data cap. The payer proves the payment the way recovery does
(receipt + paying phone; a mismatch says no more than "no match"), and the device is the one
the network placed, never one named in the form. A payment has at most `plans.devices`
devices: the one that paid plus those added (table `shared_devices`, migration 0017); adding
the same device twice changes nothing.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from hotspotd.ledger.errors import BillingError
from hotspotd.ledger.events import record_event
from hotspotd.ledger.grants import get_entitlement, grant_time
from hotspotd.ledger.macs import checked_mac
from hotspotd.ledger.recovery import NO_MATCH, RecoveryRefused, payer_facts
from hotspotd.store.db import Database


class SharingFull(BillingError):
    """Every device the plan allows is in use."""

    code = "sharing_full"


class SharingOver(BillingError):
    """The payment's time has ended (or this device already has that much)."""

    code = "sharing_over"


@dataclass(frozen=True)
class Shared:
    mac: str
    until: float
    seconds: int  # what this device was given now (0: it was already added)
    devices: int  # devices on the payment now, the payer's included
    allowed: int


def add_device(db: Database, *, receipt: str, phone: str, mac: str, ip: str | None,
               now: float) -> Shared:
    """Let device `mac` use the plan paid with `receipt` from `phone`, until its time ends."""
    device = checked_mac(mac)
    code, msisdn = payer_facts(receipt, phone)
    with db.write() as conn:
        payment = conn.execute(
            "SELECT p.id, p.mac, p.phone, p.plan_id, g.expires_at, pl.devices FROM payments p"
            " JOIN grants g ON g.payment_id = p.id JOIN plans pl ON pl.id = p.plan_id"
            " WHERE p.receipt = ? AND p.status = 'completed'", (code,)).fetchone()
        if payment is None or payment["phone"] != msisdn:
            raise RecoveryRefused(NO_MATCH)
        return _add(conn, payment, device, ip, now)


def _add(conn: sqlite3.Connection, payment: sqlite3.Row, mac: str, ip: str | None,
         now: float) -> Shared:
    until, allowed = float(payment["expires_at"]), int(payment["devices"])
    added = [row["mac"] for row in conn.execute(
        "SELECT mac FROM shared_devices WHERE payment_id = ? ORDER BY id", (payment["id"],))]
    on_it = 1 + len(added)
    if mac == payment["mac"] or mac in added:
        return Shared(mac, until, 0, on_it, allowed)
    if allowed <= 1:
        raise SharingFull("This plan is for one device. Buy a plan for more devices to add"
                          " this one.")
    if on_it >= allowed:
        raise SharingFull(f"This plan allows {allowed} devices and all {allowed} are in use.")
    current = get_entitlement(conn, mac)
    starts = max(now, current.expires_at) if current else now
    seconds = math.ceil(until - starts)
    if until - starts < 1:
        raise SharingOver("The time of that payment has ended, or this device already has"
                          " time beyond it.")
    plan = conn.execute("SELECT rate_limit FROM plans WHERE id = ?",
                        (payment["plan_id"],)).fetchone()
    grant = grant_time(conn, mac=mac, seconds=seconds, now=now, plan_id=payment["plan_id"],
                       rate_limit=plan["rate_limit"], source="shared", ip=ip)
    # Whole seconds in the grant, the payment's exact end on the device: never more time.
    conn.execute("UPDATE entitlements SET expires_at = ? WHERE mac = ?", (until, mac))
    conn.execute("INSERT INTO shared_devices (payment_id, mac, grant_id, until, added_at)"
                 " VALUES (?, ?, ?, ?, ?)", (payment["id"], mac, grant.id, until, now))
    record_event(conn, now, "sharing.added", payment_id=payment["id"], mac=mac,
                 seconds=seconds, devices=on_it + 1, allowed=allowed)
    return Shared(mac, until, seconds, on_it + 1, allowed)
