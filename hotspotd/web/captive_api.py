"""The Captive Portal API (RFC 8908): what a phone's OS asks before showing the portal.

`GET /captive-portal/api` answers `application/captive+json` for the requesting client,
found by its source address (`router.presence.device_for_ip`: accounting, then the last IP
the device was seen with). The router advertises this URL with DHCP option 114.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from hotspotd.billing.data_usage import bytes_left
from hotspotd.billing.grants import get_entitlement
from hotspotd.router.presence import device_for_ip
from hotspotd.web.context import web_context

blueprint = Blueprint("captive_api", __name__)
MEDIA_TYPE = "application/captive+json"
PATH = "/captive-portal/api"


def bytes_remaining(conn: sqlite3.Connection, mac: str, now: float) -> int | None:
    """What the device has left of the data it bought (None: no cap)."""
    try:
        return bytes_left(conn, mac, now)
    except sqlite3.OperationalError:  # a database without data caps
        return None


def captive_state(conn: sqlite3.Connection, ip: str, now: float,
                  portal_url: str) -> dict[str, Any]:
    """The RFC 8908 JSON object for the client at `ip`."""
    mac = device_for_ip(conn, ip)
    entitlement = get_entitlement(conn, mac) if mac else None
    seconds = entitlement.seconds_remaining(now) if entitlement else 0
    query = urlencode([("mac", mac or ""), ("ip", ip)]) if mac else urlencode([("ip", ip)])
    state: dict[str, Any] = {"captive": seconds <= 0,
                             "user-portal-url": f"{portal_url}?{query}",
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
    state = captive_state(ctx.db.connection(), request.remote_addr or "", ctx.now(), base)
    response = Response(json.dumps(state), mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "private, no-store"
    return response
