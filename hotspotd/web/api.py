"""The JSON API the portal (and anything else on the WiFi) uses. No phone numbers leave here."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from hotspotd.ledger.errors import BillingError, InvalidMac, UnknownDevice, UnknownPayment
from hotspotd.ledger.grants import get_entitlement
from hotspotd.ledger.macs import checked_mac
from hotspotd.ledger.payments import get_payment
from hotspotd.ledger.plans import list_plans
from hotspotd.mpesa.customer_messages import customer_message
from hotspotd.mpesa.status import purchase_status
from hotspotd.router.placement import NotPlaced
from hotspotd.web.context import web_context
from hotspotd.web.device import not_placed_json, this_device
from hotspotd.web.i18n import billing_error_text

blueprint = Blueprint("api", __name__, url_prefix="/api")


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _lang() -> str:
    """`?lang=sw` (or `"lang": "sw"` in a JSON body) asks for Swahili; English otherwise."""
    body = request.get_json(silent=True) if request.is_json else None
    lang = request.args.get("lang") or (body.get("lang") if isinstance(body, dict) else "")
    return "sw" if lang == "sw" else "en"


@blueprint.errorhandler(BillingError)
def _billing_error(exc: BillingError) -> Any:
    result_code = getattr(exc, "result_code", None)
    # A limit has its own words (why and when); others by code (ERRORS_SW).
    message = billing_error_text(exc, _lang())
    if result_code and _lang() != "en" and not hasattr(exc, "in_language"):
        message = customer_message(result_code, "failed", _lang())
    body = error_body(exc.code, message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        body["error"]["retry_after"] = math.ceil(retry_after)
    response = jsonify(body)
    if retry_after:
        response.headers["Retry-After"] = str(math.ceil(retry_after))
    return response, exc.status


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return jsonify(error_body(exc.name.lower().replace(" ", "_"), exc.description or "")), exc.code


@blueprint.errorhandler(NotPlaced)
def _not_placed(exc: NotPlaced) -> Any:
    body, status = not_placed_json(exc)
    return jsonify(body), status


@blueprint.get("/plans")
def plans() -> Any:
    return jsonify([plan.as_json() for plan in list_plans(web_context().db.connection())])


@blueprint.post("/purchases")
def create_purchase() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BillingError("Send a JSON object with plan_id and phone.")
    for key in ("plan_id", "phone"):
        if body.get(key) in (None, ""):
            raise BillingError(f"{key} is missing.")
    phone = body["phone"]
    if not isinstance(phone, str):
        raise BillingError("Enter your M-Pesa phone number, like 0712 345 678.")
    device = this_device(fresh=True)  # `mac`/`ip` in the body are hints that must agree
    ctx = web_context()
    payment = ctx.purchases.start_purchase(plan_id=body["plan_id"], phone=phone,
                                           mac=device.mac, ip=device.ip)
    view = purchase_status(ctx.db.connection(), payment, ctx.now(), _lang())
    return jsonify(view), 202


@blueprint.get("/purchases/<public_id>")
def purchase(public_id: str) -> Any:
    ctx = web_context()
    device = this_device()
    payment = get_payment(ctx.db, public_id=public_id)
    if payment is None or payment.mac != device.mac:  # a device reads only its own
        raise UnknownPayment("No such purchase.")
    return jsonify(purchase_status(ctx.db.connection(), payment, ctx.now(), _lang()))


@blueprint.get("/devices/<mac>")
def device_by_mac(mac: str) -> Any:
    """The requesting device's own time; any other MAC is "no such device"."""
    try:
        asked = checked_mac(mac)
    except InvalidMac as exc:
        raise BillingError(exc.message) from None
    if asked != this_device().mac:
        raise UnknownDevice("No such device.")
    return this_device_time()


@blueprint.get("/device")
def this_device_time() -> Any:
    """`{mac, seconds_remaining, expires_at}` of the device the request comes from."""
    ctx = web_context()
    device_mac = this_device().mac
    entitlement = get_entitlement(ctx.db.connection(), device_mac)
    now = ctx.now()
    remaining = entitlement.seconds_remaining(now) if entitlement else 0
    return jsonify({"mac": device_mac, "seconds_remaining": remaining,
                    "expires_at": entitlement.expires_at if remaining else None})
