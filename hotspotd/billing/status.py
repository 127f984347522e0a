"""How a purchase looks from outside: status, code, a sentence for the customer, time left."""

from __future__ import annotations

import sqlite3
from typing import Any

from hotspotd.billing.grants import get_entitlement
from hotspotd.billing.payments import Payment
from hotspotd.daraja.result_codes import COMPLETED, meaning_of

PENDING_SENT = "Check your phone and enter your M-Pesa PIN to pay."
PENDING_UNCERTAIN = ("M-Pesa is slow to answer. If a prompt appears on your phone, enter your"
                     " PIN; we are checking the payment.")
CONNECTED = "Paid. You are connected."


def purchase_status(conn: sqlite3.Connection, payment: Payment, now: float) -> dict[str, Any]:
    """The JSON body of GET /api/purchases/<id>. No phone number, no receipt of others."""
    entitlement = get_entitlement(conn, payment.mac)
    seconds = entitlement.seconds_remaining(now) if entitlement else 0
    return {"id": payment.public_id, "status": payment.status,
            "result_code": payment.result_code, "message": _message(payment),
            "seconds_remaining": seconds, "receipt": payment.receipt,
            "mac": payment.mac}


def _message(payment: Payment) -> str:
    if payment.status == "pending":
        return PENDING_UNCERTAIN if payment.push_state == "uncertain" else PENDING_SENT
    if payment.status == COMPLETED:
        return CONNECTED
    if payment.result_code and payment.result_code.startswith("HOTSPOTD_"):
        return payment.result_desc or "The payment did not go through."
    if payment.settled_by == "push":
        return payment.result_desc or "M-Pesa did not accept the request."
    return f"{meaning_of(payment.result_code or '')}. Nothing was charged; you can try again."
