"""Vouchers: codes the owner prints and sells for cash; a code grants its plan once.

Codes use an alphabet without look-alikes (no 0/O, 1/I/L) so they are easy to read off
paper and type on a phone. Redemption and the grant commit in one transaction; the UNIQUE
index on grants.voucher_id makes a second grant for the same voucher impossible.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass

from hotspotd.ledger.errors import BillingError
from hotspotd.ledger.events import record_event
from hotspotd.ledger.grants import DuplicateGrant, Grant, grant_time
from hotspotd.ledger.plans import get_plan
from hotspotd.store.db import Database

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


class VoucherError(BillingError):
    code = "voucher_invalid"


class UnknownVoucher(VoucherError):
    code = "voucher_unknown"


class VoucherUsed(VoucherError):
    code = "voucher_used"


class VoucherExpired(VoucherError):
    code = "voucher_expired"


@dataclass(frozen=True)
class Voucher:
    id: int
    code: str
    plan_id: int
    batch: str
    status: str
    valid_until: float | None
    used_at: float | None
    used_by_mac: str | None


def normalise_code(text: str) -> str:
    """What a customer types → the stored form: upper case, no spaces or dashes."""
    return "".join(ch for ch in str(text).upper() if ch.isalnum())


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """ABCD2345 → ABCD-2345 for printing."""
    return f"{code[:4]}-{code[4:]}" if len(code) == CODE_LENGTH else code


def _voucher(row: sqlite3.Row) -> Voucher:
    return Voucher(row["id"], row["code"], row["plan_id"], row["batch"], row["status"],
                   row["valid_until"], row["used_at"], row["used_by_mac"])


def create_batch(db: Database, *, plan_id: int, count: int, now: float,
                 valid_for: float | None = None) -> tuple[str, list[Voucher]]:
    """Make `count` unused vouchers for a plan. Returns the batch id and the vouchers."""
    if not 1 <= count <= 1000:
        raise BillingError("A batch holds between 1 and 1000 vouchers.")
    batch = secrets.token_hex(4)
    with db.write() as conn:
        get_plan(conn, plan_id, include_hidden=True)
        made = 0
        while made < count:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO vouchers (code, plan_id, batch, created_at, valid_until)"
                " VALUES (?, ?, ?, ?, ?)", (new_code(), plan_id, batch, now,
                                            now + valid_for if valid_for else None))
            made += cursor.rowcount
        record_event(conn, now, "vouchers.created", batch=batch, plan_id=plan_id, count=count)
    return batch, list_batch(db, batch)


def list_batch(db: Database, batch: str) -> list[Voucher]:
    return [_voucher(row) for row in db.query(
        "SELECT * FROM vouchers WHERE batch = ? ORDER BY id", (batch,))]


def find_voucher(conn: sqlite3.Connection, code: str) -> Voucher | None:
    row = conn.execute("SELECT * FROM vouchers WHERE code = ?",
                       (normalise_code(code),)).fetchone()
    return _voucher(row) if row else None


def redeem(db: Database, *, code: str, mac: str, ip: str | None, now: float,
           claim_id: int | None = None) -> Grant:
    """Grant the voucher's plan to a device, once. Raises a VoucherError the customer reads.

    `claim_id`: the hub's claim that let this venue redeem its own voucher (roaming: the
    network knows it is used; docs/HUB.md)."""
    with db.write() as conn:
        voucher = find_voucher(conn, code)
        if voucher is None or voucher.status == "void":
            raise UnknownVoucher("That voucher code is not valid. Check it and try again.")
        if voucher.status == "used":
            raise VoucherUsed("That voucher has already been used.")
        if voucher.valid_until is not None and now > voucher.valid_until:
            raise VoucherExpired("That voucher has expired.")
        plan = conn.execute("SELECT duration_seconds, rate_limit FROM plans WHERE id = ?",
                            (voucher.plan_id,)).fetchone()
        try:
            grant = grant_time(conn, mac=mac, seconds=plan["duration_seconds"], now=now,
                               plan_id=voucher.plan_id, rate_limit=plan["rate_limit"],
                               source="voucher", ip=ip)
            conn.execute("UPDATE grants SET voucher_id = ? WHERE id = ?", (voucher.id, grant.id))
        except (DuplicateGrant, sqlite3.IntegrityError):
            raise VoucherUsed("That voucher has already been used.") from None
        conn.execute("UPDATE vouchers SET status = 'used', used_at = ?, used_by_mac = ?,"
                     " grant_id = ?, claim_id = ? WHERE id = ? AND status = 'unused'",
                     (now, mac, grant.id, claim_id, voucher.id))
        record_event(conn, now, "voucher.redeemed", mac=mac, voucher_id=voucher.id,
                     grant_id=grant.id)
    return grant


def void(db: Database, *, voucher_id: int, now: float) -> bool:
    """Withdraw an unused voucher. Returns False if it was used or void already."""
    with db.write() as conn:
        cursor = conn.execute("UPDATE vouchers SET status = 'void' WHERE id = ?"
                              " AND status = 'unused'", (voucher_id,))
        if cursor.rowcount:
            record_event(conn, now, "voucher.voided", voucher_id=voucher_id)
        return bool(cursor.rowcount)


# --- roaming: vouchers of the operator's other venues (the hub arbitrates; docs/HUB.md) ---


@dataclass(frozen=True)
class NetworkClaim:
    """The hub's yes: voucher `code` of venue `home` may be redeemed here, once."""

    claim_id: int
    code: str
    home: str
    seconds: int
    rate_limit: str | None


def grant_claimed(db: Database, claim: NetworkClaim, *, mac: str, ip: str | None,
                  now: float) -> Grant:
    """Grant another venue's voucher that the hub let this venue redeem: once per claim (a
    retry of the same claim returns the grant already made)."""
    with db.write() as conn:
        done = conn.execute("SELECT g.* FROM roamed_vouchers r JOIN grants g ON"
                            " g.id = r.grant_id WHERE r.claim_id = ?",
                            (claim.claim_id,)).fetchone()
        if done is not None:
            return Grant(done["id"], done["mac"], done["seconds"], done["starts_at"],
                         done["expires_at"])
        grant = grant_time(conn, mac=mac, seconds=claim.seconds, now=now, plan_id=None,
                           rate_limit=claim.rate_limit, source="roamed-voucher", ip=ip)
        conn.execute("INSERT INTO roamed_vouchers (claim_id, code, home, mac, grant_id,"
                     " redeemed_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (claim.claim_id, claim.code, claim.home, mac, grant.id, now))
        record_event(conn, now, "voucher.roamed_in", mac=mac, claim_id=claim.claim_id,
                     home=claim.home, grant_id=grant.id)
    return grant


def mark_claimed_elsewhere(conn: sqlite3.Connection, *, voucher_id: int, claim_id: int,
                           mac: str, venue: str, at: float, now: float) -> str:
    """Another venue redeemed this venue's voucher through the hub: it is used here too.
    Returns "marked", "known" (already), or "conflict" (this venue had redeemed it itself,
    offline or before it heard: both customers keep their time; the hub lists it)."""
    row = conn.execute("SELECT status, claim_id FROM vouchers WHERE id = ?",
                       (voucher_id,)).fetchone()
    if row is None or row["claim_id"] == claim_id:
        return "known"
    if row["status"] != "unused":  # used (or voided) here meanwhile
        record_event(conn, now, "voucher.conflict", voucher_id=voucher_id, claim_id=claim_id,
                     venue=venue, claimed_by_mac=mac)
        return "conflict"
    conn.execute("UPDATE vouchers SET status = 'used', used_at = ?, used_by_mac = ?,"
                 " claim_id = ? WHERE id = ?", (at, mac, claim_id, voucher_id))
    record_event(conn, now, "voucher.used_elsewhere", voucher_id=voucher_id,
                 claim_id=claim_id, venue=venue, mac=mac)
    return "marked"
