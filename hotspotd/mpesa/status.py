"""How a purchase looks from outside: status, code, a sentence for the customer, time left."""

from __future__ import annotations

import sqlite3
from typing import Any

from hotspotd.ledger.grants import get_entitlement
from hotspotd.ledger.payment_line import position
from hotspotd.ledger.payments import Payment
from hotspotd.mpesa.customer_messages import QUEUED_CODE, UNCERTAIN_CODE, customer_message


def purchase_status(conn: sqlite3.Connection, payment: Payment, now: float,
                    lang: str = "en") -> dict[str, Any]:
    """The JSON body of GET /api/purchases/<id>. No phone number, no receipt of others."""
    entitlement = get_entitlement(conn, payment.mac)
    seconds = entitlement.seconds_remaining(now) if entitlement else 0
    return {"id": payment.public_id, "status": payment.status,
            "result_code": payment.result_code, "message": message_for(payment, lang),
            "seconds_remaining": seconds, "receipt": payment.receipt,
            "mac": payment.mac, "queued": payment.queued,
            "queue_position": position(conn, payment.id) if payment.queued else 0}


def message_for(payment: Payment, lang: str = "en") -> str:
    code = payment.result_code
    if payment.status == "pending" and payment.push_state == "uncertain":
        code = UNCERTAIN_CODE
    elif payment.queued:
        code = QUEUED_CODE
    return customer_message(code, payment.status, lang)
