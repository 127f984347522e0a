"""The hub arbitrates roaming vouchers: a code printed at one venue redeems once at any venue
of the same network (docs/HUB.md "Roaming").

`claim` runs in one PostgreSQL transaction: the voucher is found among the venues of the
caller's network, its home's projection must say it is unused, and the claim row's UNIQUE
code makes a second claim impossible however two venues race. A retry of the same claim
(same venue, same device) gets the same answer. The home venue asks `claims_against` for
the claims on its codes, and marks those vouchers used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from hotspotd.hub.ingest import authenticate
from hotspotd.hub.pgstore import HubStore
from hotspotd.hub.protocol import MAX_CLAIMS, BatchRefused


def claim(store: HubStore, bearer: str | None, body: Any, now: Callable[[], float]
          ) -> dict[str, Any]:
    """Claim voucher `code` for device `mac` at the caller's venue: what it gives, or why not."""
    code, mac = _claim_fields(body)
    with store.transaction() as conn:
        caller = authenticate(conn, bearer)
        voucher = _find(conn, caller["id"], code)
        taken = _retry_of(conn, "voucher_claims", "code", code, caller["id"], mac,
                          BatchRefused(409, "voucher_used", "that voucher has already been used"))
        if taken is not None:
            return _answer(taken, voucher)
        _check_usable(voucher, now())
        made = conn.execute(
            "INSERT INTO voucher_claims (code, home_appliance_id, voucher_local_id,"
            " claimed_by, mac, claimed_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
            (code, voucher["appliance_id"], voucher["local_id"], caller["id"], mac,
             now())).fetchone()
        return _answer(made, voucher)


def claims_against(store: HubStore, bearer: str | None, after: Any) -> dict[str, Any]:
    """Claims on the caller's own vouchers made after claim `after`, oldest first."""
    since = _after(after)
    with store.transaction() as conn:
        caller = authenticate(conn, bearer)
        rows = conn.execute(
            "SELECT c.id, c.code, c.voucher_local_id, c.mac, c.claimed_at, a.name AS venue"
            " FROM voucher_claims c JOIN appliances a ON a.id = c.claimed_by"
            " WHERE c.home_appliance_id = %s AND c.id > %s"
            " AND c.claimed_by <> c.home_appliance_id ORDER BY c.id LIMIT %s",
            (caller["id"], since, MAX_CLAIMS)).fetchall()
    return {"claims": [dict(row) for row in rows]}


CLAIM_KEYS = {("voucher_claims", "code"), ("time_claims", "receipt")}


def _retry_of(conn: psycopg.Connection, table: str, column: str, key: str, caller_id: int,
              mac: str, taken: BatchRefused) -> dict[str, Any] | None:
    """The claim already made on `key` (locked) when it is this venue's for this device: a
    retry, answered again; None when there is none; `taken` raised when it is someone
    else's."""
    if (table, column) not in CLAIM_KEYS:
        raise ValueError(f"{table}.{column}")
    row = conn.execute(f"SELECT * FROM {table} WHERE {column} = %s FOR UPDATE",  # noqa: S608
                       (key,)).fetchone()
    if row is None:
        return None
    if (row["claimed_by"], row["mac"]) == (caller_id, mac):
        return row
    raise taken


def _after(after: Any) -> int:
    try:
        return int(after or 0)
    except (TypeError, ValueError):
        raise BatchRefused(400, "bad_request", "after must be a claim id") from None


def _claim_fields(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise BatchRefused(400, "bad_request", "the body must be a JSON object")
    code = "".join(ch for ch in str(body.get("code", "")).upper() if ch.isalnum())
    mac = str(body.get("mac", "")).upper()
    if not 4 <= len(code) <= 20 or len(mac) != 17:
        raise BatchRefused(400, "bad_request", "send a voucher code and the device's MAC")
    return code, mac


def _find(conn: psycopg.Connection, caller_id: int, code: str) -> dict[str, Any]:
    """The voucher with this code at the caller's venue or a venue of its network."""
    rows = conn.execute(
        "SELECT v.*, a.name AS home FROM vouchers v JOIN appliances a ON a.id = v.appliance_id"
        " JOIN appliances me ON me.id = %s WHERE v.code = %s AND a.revoked_at IS NULL"
        " AND (a.id = me.id OR (a.network IS NOT NULL AND a.network = me.network))",
        (caller_id, code)).fetchall()
    if len(rows) != 1:  # none, or the same code at two venues: nobody can tell which
        raise BatchRefused(404, "voucher_unknown", "no venue of this network has that code")
    return rows[0]


def _check_usable(voucher: dict[str, Any], now: float) -> None:
    if voucher["status"] == "void":
        raise BatchRefused(404, "voucher_unknown", "no venue of this network has that code")
    if voucher["status"] == "used":
        raise BatchRefused(409, "voucher_used", "that voucher has already been used")
    if voucher["valid_until"] is not None and now > voucher["valid_until"]:
        raise BatchRefused(409, "voucher_expired", "that voucher has expired")
    if not voucher["seconds"]:
        raise BatchRefused(409, "voucher_unknown", "the hub does not know what that voucher"
                           " gives yet; try again at its own venue")


def _answer(claim_row: dict[str, Any], voucher: dict[str, Any]) -> dict[str, Any]:
    return {"claim": claim_row["id"], "code": claim_row["code"], "home": voucher["home"],
            "home_appliance": voucher["appliance_id"], "plan_name": voucher["plan_name"],
            "seconds": voucher["seconds"], "rate_limit": voucher["rate_limit"],
            "data_cap_bytes": voucher["data_cap_bytes"]}


# --- paid time: the M-Pesa receipt + paying phone move the time left to another venue ------


def claim_time(store: HubStore, bearer: str | None, body: Any, now: Callable[[], float]
               ) -> dict[str, Any]:
    """Move the time left on payment `receipt` (paid from the phone whose mask is
    `phone_masked`) to device `mac` at the caller's venue: once per receipt, network-wide."""
    receipt, masked, mac = _time_fields(body)
    with store.transaction() as conn:
        caller = authenticate(conn, bearer)
        payment = _paid(conn, caller["id"], receipt, masked)
        taken = _retry_of(conn, "time_claims", "receipt", receipt, caller["id"], mac,
                          BatchRefused(409, "time_moved", "the time of that payment was"
                                       " already moved to a device; it can move only once"))
        if taken is not None:
            return _time_answer(taken, payment)
        seconds = _seconds_left(conn, payment, now())
        if seconds <= 0:
            raise BatchRefused(409, "time_over", "the time bought with that payment has run"
                               " out; there is nothing left to move")
        made = conn.execute(
            "INSERT INTO time_claims (receipt, home_appliance_id, payment_local_id, claimed_by,"
            " mac, seconds, claimed_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (receipt, payment["appliance_id"], payment["local_id"], caller["id"], mac,
             seconds, now())).fetchone()
        return _time_answer(made, payment)


def time_claims_against(store: HubStore, bearer: str | None, after: Any) -> dict[str, Any]:
    """Moves of the caller's payments' time to other venues, after claim `after`."""
    since = _after(after)
    with store.transaction() as conn:
        caller = authenticate(conn, bearer)
        rows = conn.execute(
            "SELECT c.id, c.receipt, c.payment_local_id, c.mac, c.seconds, c.claimed_at,"
            " a.name AS venue FROM time_claims c JOIN appliances a ON a.id = c.claimed_by"
            " WHERE c.home_appliance_id = %s AND c.id > %s ORDER BY c.id LIMIT %s",
            (caller["id"], since, MAX_CLAIMS)).fetchall()
    return {"claims": [dict(row) for row in rows]}


NO_MATCH = "no completed payment of this network has that receipt and phone"


def _time_fields(body: Any) -> tuple[str, str, str]:
    if not isinstance(body, dict):
        raise BatchRefused(400, "bad_request", "the body must be a JSON object")
    receipt = "".join(ch for ch in str(body.get("receipt", "")).upper() if ch.isalnum())
    masked, mac = str(body.get("phone_masked", "")), str(body.get("mac", "")).upper()
    if not 8 <= len(receipt) <= 12 or not 8 <= len(masked) <= 16 or len(mac) != 17:
        raise BatchRefused(400, "bad_request", "send the receipt, the masked paying phone"
                           " and the device's MAC")
    return receipt, masked, mac


def _paid(conn: psycopg.Connection, caller_id: int, receipt: str, masked: str
          ) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT p.*, a.name AS home FROM payments p JOIN appliances a ON a.id = p.appliance_id"
        " JOIN appliances me ON me.id = %s WHERE p.receipt = %s AND p.status = 'completed'"
        " AND a.id <> me.id AND a.revoked_at IS NULL AND a.network IS NOT NULL"
        " AND a.network = me.network", (caller_id, receipt)).fetchall()
    if len(rows) != 1 or rows[0]["phone_masked"] != masked:  # says no more than "no match"
        raise BatchRefused(404, "no_match", NO_MATCH)
    return rows[0]


def _seconds_left(conn: psycopg.Connection, payment: dict[str, Any], now: float) -> int:
    """What is left of the payment's own grant now (a stacked grant starts later)."""
    grant = conn.execute("SELECT seconds, starts_at, expires_at FROM grants WHERE"
                         " appliance_id = %s AND payment_id = %s",
                         (payment["appliance_id"], payment["local_id"])).fetchone()
    if grant is None:
        return 0
    return int(min(grant["seconds"], grant["expires_at"] - max(now, grant["starts_at"])))


def _time_answer(claim_row: dict[str, Any], payment: dict[str, Any]) -> dict[str, Any]:
    return {"claim": claim_row["id"], "receipt": claim_row["receipt"],
            "home": payment["home"], "seconds": claim_row["seconds"],
            "plan_id": payment["plan_id"]}
