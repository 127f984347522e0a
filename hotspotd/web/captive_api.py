"""The Captive Portal API (RFC 8908): what a phone's OS asks before showing the portal.

`GET /captive-portal/api` answers `application/captive+json` for the requesting client,
found by its source address in the router's host table (`web.device.this_device`). The
router advertises this URL with DHCP option 114.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from flask import Blueprint, Response, request

from hotspotd.ledger.data_usage import bytes_left
from hotspotd.ledger.grants import get_entitlement
from hotspotd.router.placement import NotPlaced
from hotspotd.web.context import web_context
from hotspotd.web.device import this_device

blueprint = Blueprint("captive_api", __name__)
MEDIA_TYPE = "application/captive+json"
PATH = "/captive-portal/api"


def bytes_remaining(conn: sqlite3.Connection, mac: str, now: float) -> int | None:
    """What the device has left of the data it bought (None: no cap)."""
    try:
        return bytes_left(conn, mac, now)
    except sqlite3.OperationalError:  # a database without data caps
        return None


def captive_state(conn: sqlite3.Connection, mac: str | None, now: float,
                  portal_url: str) -> dict[str, Any]:
    """The RFC 8908 JSON object for the device `mac` (None: the network does not know the
    client, which is then captive). The portal finds the device by itself: no MAC in the
    URL."""
    entitlement = get_entitlement(conn, mac) if mac else None
    seconds = entitlement.seconds_remaining(now) if entitlement else 0
    state: dict[str, Any] = {"captive": seconds <= 0, "user-portal-url": portal_url,
                             "can-extend-session": True}
    if seconds > 0 and entitlement is not None and mac is not None:
        state["seconds-remaining"] = seconds
        remaining = bytes_remaining(conn, mac, now)
        if remaining is not None:
            state["bytes-remaining"] = remaining
    return state


@blueprint.get(PATH)
def captive_api() -> Response:
    ctx = web_context()
    base = (ctx.portal.public_url or request.host_url).rstrip("/") + "/"
    try:
        mac: str | None = this_device().mac
    except NotPlaced:
        mac = None
    state = captive_state(ctx.db.connection(), mac, ctx.now(), base)
    response = Response(json.dumps(state), mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "private, no-store"
    return response
