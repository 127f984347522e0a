"""Recovery after a MAC change: the M-Pesa receipt plus the paying phone moves the time left.

Android and iOS randomise MAC addresses, so a paid device can come back as a stranger. The
payer holds two things nobody else on the WiFi has together: the receipt code from the
M-Pesa SMS and the phone that paid. Both must match a completed payment; then the time left
on the old device moves to this one, once (the UNIQUE receipt in `recoveries`), in one
transaction with the grant and the router changes.

Nobody learns anything about a receipt that is not theirs: an unknown receipt, a wrong
phone and a payment that never completed give the same answer. Only the payer (both facts
right) hears "already moved" or "no time left". Attempts are rate limited by the caller.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from hotspotd.daraja.msisdn import InvalidPhoneNumber, normalise_msisdn
from hotspotd.ledger.errors import BillingError
from hotspotd.ledger.events import record_event
from hotspotd.ledger.grants import get_entitlement, grant_time
from hotspotd.ledger.macs import checked_mac
from hotspotd.ledger.router_ops import enqueue_router_op
from hotspotd.store.db import Database

RECEIPT_FORM = re.compile(r"^[A-Z0-9]{8,12}$")  # an M-Pesa receipt code
NO_MATCH = ("We could not match that receipt code and phone number. Check both (the code is"
            " in the M-Pesa SMS, like RKT1A2B3C4) and try again.")


class RecoveryRefused(BillingError):
    """No completed payment with this receipt and phone (deliberately says no more)."""

    code = "recovery_no_match"


class AlreadyRecovered(BillingError):
    code = "recovery_used"


class NothingToRecover(BillingError):
    code = "recovery_nothing_left"


@dataclass(frozen=True)
class Recovery:
    from_mac: str
    to_mac: str
    seconds: int
    expires_at: float


def normalise_receipt(text: str) -> str:
    return "".join(ch for ch in str(text).upper() if ch.isalnum())


def payer_facts(receipt: str, phone: str) -> tuple[str, str]:
    """(receipt code, MSISDN) as the payer typed them, or RecoveryRefused saying no more
    than "no match" (recovery and adding a device ask for the same two facts)."""
    code = normalise_receipt(receipt)
    try:
        msisdn = normalise_msisdn(phone)
    except InvalidPhoneNumber:
        raise RecoveryRefused(NO_MATCH) from None
    if not RECEIPT_FORM.match(code):
        raise RecoveryRefused(NO_MATCH)
    return code, msisdn


def recover_time(db: Database, *, receipt: str, phone: str, mac: str, ip: str | None,
                 now: float) -> Recovery:
    """Move the time left on the paying device to `mac`, once per receipt."""
    to_mac = checked_mac(mac)
    code, msisdn = payer_facts(receipt, phone)
    with db.write() as conn:
        payment = conn.execute(
            "SELECT id, mac, phone FROM payments WHERE receipt = ? AND status = 'completed'",
            (code,)).fetchone()
        if payment is None or payment["phone"] != msisdn:
            raise RecoveryRefused(NO_MATCH)
        return _move(conn, code, payment, to_mac, ip, now)


def _move(conn: sqlite3.Connection, receipt: str, payment: sqlite3.Row, to_mac: str,
          ip: str | None, now: float) -> Recovery:
    done = conn.execute("SELECT to_mac FROM recoveries WHERE receipt = ?",
                        (receipt,)).fetchone()
    if done is not None:
        raise AlreadyRecovered("The time of that payment was already moved to a device;"
                               " it can move only once.")
    from_mac = payment["mac"]
    if from_mac == to_mac:
        raise NothingToRecover("That payment's time is already on this device.")
    source = get_entitlement(conn, from_mac)
    seconds = source.seconds_remaining(now) if source else 0
    if source is None or seconds <= 0:
        raise NothingToRecover("The time bought with that payment has run out; there is"
                               " nothing left to move.")
    conn.execute("UPDATE entitlements SET expires_at = ?, updated_at = ? WHERE mac = ?",
                 (now, now, from_mac))
    enqueue_router_op(conn, mac=from_mac, ip=None, action="disconnect", now=now)
    grant = grant_time(conn, mac=to_mac, seconds=seconds, now=now, plan_id=source.plan_id,
                       rate_limit=source.rate_limit, source="recovery", ip=ip)
    conn.execute("INSERT INTO recoveries (receipt, payment_id, from_mac, to_mac, seconds,"
                 " grant_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (receipt, payment["id"], from_mac, to_mac, seconds, grant.id, now))
    record_event(conn, now, "recovery.moved", payment_id=payment["id"], mac=to_mac,
                 from_mac=from_mac, seconds=seconds, grant_id=grant.id)
    return Recovery(from_mac, to_mac, seconds, grant.expires_at)


# --- roaming: paid time moving between the venues of a network (docs/HUB.md) -------------


@dataclass(frozen=True)
class MovedTime:
    """The hub's yes: the time left on payment `receipt` at venue `home` moves here."""

    claim_id: int
    receipt: str
    home: str
    seconds: int


def grant_moved_in(db: Database, moved: MovedTime, *, mac: str, ip: str | None,
                   now: float) -> Recovery:
    """Grant time that moved here from another venue: once per hub claim (a retry of the
    same claim returns what was given)."""
    with db.write() as conn:
        done = conn.execute("SELECT g.expires_at, r.seconds FROM roamed_time r JOIN grants g"
                            " ON g.id = r.grant_id WHERE r.claim_id = ?",
                            (moved.claim_id,)).fetchone()
        if done is not None:
            return Recovery(moved.home, mac, done["seconds"], done["expires_at"])
        grant = grant_time(conn, mac=mac, seconds=moved.seconds, now=now, plan_id=None,
                           rate_limit=None, source="roamed-time", ip=ip)
        conn.execute("INSERT INTO roamed_time (claim_id, receipt, home, mac, seconds, grant_id,"
                     " moved_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (moved.claim_id, moved.receipt, moved.home, mac, moved.seconds, grant.id,
                      now))
        record_event(conn, now, "recovery.moved_in", mac=mac, claim_id=moved.claim_id,
                     home=moved.home, seconds=moved.seconds, grant_id=grant.id)
    return Recovery(moved.home, mac, moved.seconds, grant.expires_at)


def take_moved_away(conn: sqlite3.Connection, *, claim_id: int, payment_id: int, seconds: int,
                    venue: str, now: float) -> str:
    """The time of this venue's payment moved to another venue: take it off the paying
    device here. Returns "taken", "known" (already), or "conflict" (the time had moved to
    a device here too, offline or before this venue heard: both keep it; recorded)."""
    if conn.execute("SELECT 1 FROM time_moved_away WHERE claim_id = ?",
                    (claim_id,)).fetchone() is not None:
        return "known"
    payment = conn.execute("SELECT id, mac, receipt FROM payments WHERE id = ?",
                           (payment_id,)).fetchone()
    if payment is None:
        return "known"
    if conn.execute("SELECT 1 FROM recoveries WHERE receipt = ?",
                    (payment["receipt"],)).fetchone() is not None:
        record_event(conn, now, "recovery.conflict", payment_id=payment_id, claim_id=claim_id,
                     venue=venue)
        outcome = "conflict"
    else:
        current = get_entitlement(conn, payment["mac"])
        if current is not None and current.expires_at > now:
            left = current.expires_at - seconds
            left = now if left < now + 1 else left  # the clocks differ by a moment
            conn.execute("UPDATE entitlements SET expires_at = ?, updated_at = ? WHERE mac = ?",
                         (left, now, payment["mac"]))
            action = "disconnect" if left <= now else "login"  # login: re-sync its timeout
            enqueue_router_op(conn, mac=payment["mac"], ip=None, action=action, now=now)
        record_event(conn, now, "recovery.moved_away", payment_id=payment_id,
                     mac=payment["mac"], claim_id=claim_id, venue=venue, seconds=seconds)
        outcome = "taken"
    conn.execute("INSERT INTO time_moved_away (claim_id, payment_id, from_mac, venue, seconds,"
                 " applied_at) VALUES (?, ?, ?, ?, ?, ?)",
                 (claim_id, payment_id, payment["mac"], venue, seconds, now))
    return outcome
