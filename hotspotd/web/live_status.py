"""Live updates for the portal by long poll: the request waits until something changes.

`GET /live/purchase/<id>?phase=<what the page shows>` answers as soon as the purchase's
phase differs (or after `long_poll_seconds` with the same view); `GET /live/device/<mac>
?expires_at=<what the page knows>` answers when the device's paid time changes (a payment
from the M-Pesa menu, a voucher, a recovery). One indexed read every quarter second; at
most `max_waiters` requests wait at once so long polls never take every server thread —
beyond that the answer comes at once with `retry_after` and the page asks again shortly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from hotspotd.billing.errors import BillingError, InvalidMac, UnknownPayment
from hotspotd.billing.grants import get_entitlement
from hotspotd.billing.macs import normalise_mac
from hotspotd.billing.payments import get_payment
from hotspotd.web.context import web_context
from hotspotd.web.i18n import choose_language, format_duration
from hotspotd.web.portal.views import purchase_view

blueprint = Blueprint("live", __name__, url_prefix="/live")
CHECK_INTERVAL = 0.25
BUSY_RETRY_SECONDS = 2.0


def _slots() -> threading.BoundedSemaphore:
    ctx = web_context()
    return current_app.extensions.setdefault(
        "hotspotd.live_slots", threading.BoundedSemaphore(max(1, ctx.portal.max_waiters)))


def wait_for_change(read: Callable[[], dict[str, Any]],
                    changed: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read until `changed(view)` or the long-poll time is up; return the last view."""
    ctx = web_context()
    view = read()
    if changed(view):
        return view
    slots = _slots()
    if not slots.acquire(blocking=False):
        return {**view, "retry_after": BUSY_RETRY_SECONDS}
    try:
        deadline = time.monotonic() + min(ctx.portal.long_poll_seconds,
                                          float(request.args.get("wait", 25) or 0))
        while time.monotonic() < deadline:
            time.sleep(CHECK_INTERVAL)
            view = read()
            if changed(view):
                break
    finally:
        slots.release()
    return view


@blueprint.get("/purchase/<public_id>")
def purchase(public_id: str) -> Any:
    ctx = web_context()
    lang = choose_language(request)
    seen = request.args.get("phase", "")

    def read() -> dict[str, Any]:
        payment = get_payment(ctx.db, public_id=public_id)
        if payment is None:
            raise UnknownPayment("No such purchase.")
        return purchase_view(ctx.db.connection(), payment, ctx.now(), lang)

    return _json(wait_for_change(read, lambda view: view["phase"] != seen))


@blueprint.get("/device/<mac>")
def device(mac: str) -> Any:
    ctx = web_context()
    lang = choose_language(request)
    try:
        device_mac = normalise_mac(mac)
    except InvalidMac as exc:
        raise BillingError(exc.message) from None
    try:
        known = float(request.args.get("expires_at", 0) or 0)
    except ValueError:
        known = 0.0

    def read() -> dict[str, Any]:
        entitlement = get_entitlement(ctx.db.connection(), device_mac)
        left = entitlement.seconds_remaining(ctx.now()) if entitlement else 0
        return {"expires_at": entitlement.expires_at if entitlement else 0,
                "seconds_remaining": left, "time_left": format_duration(left, lang)}

    return _json(wait_for_change(read, lambda view: view["expires_at"] > known + 1))


def _json(view: dict[str, Any]) -> Any:
    response = jsonify(view)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.errorhandler(BillingError)
def _billing_error(exc: BillingError) -> Any:
    return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status
