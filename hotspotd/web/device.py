"""The device a web request comes from, placed by the network (see `router.placement`).

Every device-scoped action calls `this_device()`: purchases (form and JSON), top-ups,
vouchers, recovery, the status and live pages, the RFC 8908 API, the account code for menu
payments. The request's source address is its `remote_addr`, or the X-Forwarded-For of a
configured `[web] trusted_proxies` proxy; the router says which MAC holds it. The `mac` and
`ip` the router's redirect put in the query string or form (or a JSON body's) are hints:
if present they must agree, else the request is refused. A request that cannot be placed
gets a clear page (English/Swahili) or a JSON error, and nothing is created.
"""

from __future__ import annotations

from typing import Any

from flask import request

from hotspotd.macs import looks_like_mac, normalise_mac
from hotspotd.router.placement import NotPlaced, Placed
from hotspotd.web.context import web_context

NOT_PLACED_STATUS = {"unknown": 403, "nat": 403, "mismatch": 409, "router": 503}
MESSAGE_KEYS = {"unknown": "open_on_wifi", "nat": "open_on_wifi", "mismatch": "other_device",
                "router": "router_busy"}
ENGLISH = {
    "unknown": "Open this page on the WiFi: this address is not a device on the hotspot.",
    "nat": "Open this page on the WiFi: the router hides devices' addresses from the"
           " appliance (NAT), so it cannot tell which device you are.",
    "mismatch": "This request names another device than the one it comes from.",
    "router": "The router did not say which device this is; try again shortly.",
}


def source_address() -> str:
    """The client's address: the peer, or X-Forwarded-For behind our own proxies only."""
    ctx = web_context()
    return ctx.web_sources.source_of(request.remote_addr,
                                     request.headers.get("X-Forwarded-For"))


def this_device(*, fresh: bool = False) -> Placed:
    """The device this request comes from; raises NotPlaced. `fresh`: ask the router now
    (anything that creates or moves money or time)."""
    address = source_address()
    placed = web_context().locator.place(address, fresh=fresh)
    for hint in _hints("mac"):
        if looks_like_mac(hint) and normalise_mac(hint) != placed.mac:
            raise NotPlaced("mismatch", address)
        if hint and not looks_like_mac(hint):
            raise NotPlaced("mismatch", address)
    if any(hint != placed.ip for hint in _hints("ip")):
        raise NotPlaced("mismatch", address)
    return placed


def _hints(name: str) -> list[str]:
    """The values a request gives for `name` in its query string, form and JSON body."""
    values = [request.args.get(name, ""), request.form.get(name, "")]
    if request.is_json:
        body: Any = request.get_json(silent=True)
        if isinstance(body, dict) and body.get(name) is not None:
            values.append(str(body[name]))
    return [value.strip() for value in values if value and value.strip()]


def not_placed_status(exc: NotPlaced) -> int:
    return NOT_PLACED_STATUS.get(exc.reason, 403)


def not_placed_json(exc: NotPlaced) -> tuple[dict[str, Any], int]:
    code = "device_not_on_wifi" if exc.reason in ("unknown", "nat") else f"device_{exc.reason}"
    return {"error": {"code": code, "message": ENGLISH[exc.reason]}}, not_placed_status(exc)
