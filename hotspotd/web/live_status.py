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

from hotspotd.ledger.errors import BillingError, InvalidMac, UnknownDevice, UnknownPayment
from hotspotd.ledger.grants import get_entitlement
from hotspotd.ledger.macs import checked_mac
from hotspotd.ledger.payments import get_payment
from hotspotd.router.placement import NotPlaced
from hotspotd.web.context import web_context
from hotspotd.web.device import not_placed_json, this_device
from hotspotd.web.i18n import choose_language, format_duration
from hotspotd.web.portal.views import purchase_view

blueprint = Blueprint("live", __name__, url_prefix="/live")
CHECK_INTERVAL = 0.25
BUSY_RETRY_SECONDS = 2.0


class Waiters:
    """Who is waiting: a bounded number of slots, and one waiter per watched thing.

    A page that reloads or navigates away leaves its request waiting on the server (WSGI
    cannot see the browser go); the next request for the same purchase or device releases
    the old one at once, so abandoned waits never pile up on the server's threads.
    """

    def __init__(self, limit: int) -> None:
        self.slots = threading.BoundedSemaphore(max(1, limit))
        self._lock = threading.Lock()
        self._current: dict[str, threading.Event] = {}

    def enter(self, key: str) -> threading.Event:
        mine = threading.Event()
        with self._lock:
            previous = self._current.get(key)
            self._current[key] = mine
        if previous is not None:
            previous.set()
        return mine

    def leave(self, key: str, mine: threading.Event) -> None:
        with self._lock:
            if self._current.get(key) is mine:
                del self._current[key]


def _waiters() -> Waiters:
    extensions = current_app.extensions
    if "hotspotd.live" not in extensions:
        extensions["hotspotd.live"] = Waiters(web_context().portal.max_waiters)
    return extensions["hotspotd.live"]


def wait_for_change(key: str, read: Callable[[], dict[str, Any]],
                    changed: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read until `changed(view)`, a newer waiter for `key`, or the time is up."""
    ctx = web_context()
    view = read()
    if changed(view):
        return view
    waiters = _waiters()
    if not waiters.slots.acquire(blocking=False):
        return {**view, "retry_after": BUSY_RETRY_SECONDS}
    mine = waiters.enter(key)
    try:
        deadline = time.monotonic() + min(ctx.portal.long_poll_seconds,
                                          _float(request.args.get("wait"), 25.0))
        gone = request.environ.get("waitress.client_disconnected", lambda: False)
        while time.monotonic() < deadline and not mine.wait(CHECK_INTERVAL) and not gone():
            view = read()
            if changed(view):
                break
    finally:
        waiters.leave(key, mine)
        waiters.slots.release()
    return view


def _float(text: str | None, default: float) -> float:
    try:
        return max(0.0, float(text)) if text else default
    except ValueError:
        return default


@blueprint.get("/purchase/<public_id>")
def purchase(public_id: str) -> Any:
    ctx = web_context()
    lang = choose_language(request)
    seen = request.args.get("phase", "")

    mac = this_device().mac  # a device follows only its own purchases

    def read() -> dict[str, Any]:
        payment = get_payment(ctx.db, public_id=public_id)
        if payment is None or payment.mac != mac:
            raise UnknownPayment("No such purchase.")
        return purchase_view(ctx.db.connection(), payment, ctx.now(), lang,
                             ctx.portal.seconds_per_place)

    return _json(wait_for_change("purchase:" + public_id, read,
                                 lambda view: view["phase"] != seen))


@blueprint.get("/device/<mac>")
def device(mac: str) -> Any:
    ctx = web_context()
    lang = choose_language(request)
    try:
        device_mac = checked_mac(mac)
    except InvalidMac as exc:
        raise BillingError(exc.message) from None
    if device_mac != this_device().mac:  # a device watches only its own time
        raise UnknownDevice("No such device.")
    known = _float(request.args.get("expires_at"), 0.0)

    def read() -> dict[str, Any]:
        entitlement = get_entitlement(ctx.db.connection(), device_mac)
        left = entitlement.seconds_remaining(ctx.now()) if entitlement else 0
        return {"expires_at": entitlement.expires_at if entitlement else 0,
                "seconds_remaining": left, "time_left": format_duration(left, lang)}

    return _json(wait_for_change("device:" + device_mac, read,
                                 lambda view: view["expires_at"] > known + 1))


def _json(view: dict[str, Any]) -> Any:
    response = jsonify(view)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.errorhandler(NotPlaced)
def _not_placed(exc: NotPlaced) -> Any:
    body, status = not_placed_json(exc)
    return jsonify(body), status


@blueprint.errorhandler(BillingError)
def _billing_error(exc: BillingError) -> Any:
    return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status
