"""Other ways in: a voucher code, recovery of paid time after a MAC change, and adding a
device to a plan for several devices.

Both are guessable by brute force, so both are rate limited per device and per source
address (persistent windows: a restart does not reset them) before anything is looked up.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, request

from hotspotd.ledger.errors import BillingError
from hotspotd.ledger.sharing import add_device
from hotspotd.ratelimit import RateLimiter
from hotspotd.web.context import web_context
from hotspotd.web.i18n import choose_language, error_text, format_duration, translate
from hotspotd.web.portal.common import placed_fields, query_string, render
from hotspotd.web.portal.pages import csrf_refused, form_error, safe_link

ADDRESS_FACTOR = 5


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/voucher", "voucher", voucher, methods=["POST"])
    blueprint.add_url_rule("/recover", "recover", recover, methods=["POST"])
    blueprint.add_url_rule("/share", "share", share, methods=["POST"])


def rate_limited(kind: str, limit: int, device: dict[str, str]) -> Any | None:
    """Count one attempt per device and per source address; the page again if over."""
    ctx = web_context()
    limiter = RateLimiter(ctx.db, ctx.now)
    # Per address a wider limit: the address outlives a device that changes its MAC.
    keys = [(f"{kind}:ip:{device['ip']}", limit * ADDRESS_FACTOR),
            (f"{kind}:mac:{device['mac']}", limit)]
    window = ctx.portal.attempt_window_seconds
    for key, key_limit in keys:
        verdict = limiter.hit(key, limit=key_limit, window=window)
        if not verdict.allowed:
            minutes = max(1, math.ceil(verdict.retry_after / 60))
            lang = choose_language(request)
            return form_error(translate(lang, "too_many", minutes=minutes), 429,
                              open_section=kind)
    return None


def voucher() -> Any:
    router = placed_fields(request.form, fresh=True)
    refused = csrf_refused() or rate_limited("voucher", web_context().portal.voucher_attempts,
                                             router)
    if refused is not None:
        return refused
    ctx = web_context()
    try:
        grant = ctx.redeem_voucher(code=request.form.get("code", ""), mac=router["mac"],
                                   ip=router["ip"], now=ctx.now())
    except BillingError as exc:
        return form_error(error_text(exc.code, exc.message, choose_language(request)),
                          exc.status, code=request.form.get("code", ""),
                          open_section="voucher")
    ctx.wake_router()
    return _done("voucher_ok", grant.seconds, int(grant.expires_at - ctx.now()), router)


def recover() -> Any:
    router = placed_fields(request.form, fresh=True)  # the time moves to this device
    refused = csrf_refused() or rate_limited("recover",
                                             web_context().portal.recovery_attempts, router)
    if refused is not None:
        return refused
    ctx = web_context()
    try:
        moved = ctx.recover_time(receipt=request.form.get("receipt", ""),
                                 phone=request.form.get("phone", ""), mac=router["mac"],
                                 ip=router["ip"], now=ctx.now())
    except BillingError as exc:
        return form_error(error_text(exc.code, exc.message, choose_language(request)),
                          exc.status, receipt=request.form.get("receipt", ""),
                          open_section="recover")
    ctx.wake_router()
    lang = choose_language(request)
    message = translate(lang, "recover_ok", time=format_duration(moved.seconds, lang))
    return _done(message, moved.seconds, int(moved.expires_at - ctx.now()), router)


def share() -> Any:
    router = placed_fields(request.form, fresh=True)  # the device the network placed
    refused = csrf_refused() or rate_limited("share",
                                             web_context().portal.recovery_attempts, router)
    if refused is not None:
        return refused
    ctx = web_context()
    try:
        shared = add_device(ctx.db, receipt=request.form.get("receipt", ""),
                            phone=request.form.get("phone", ""), mac=router["mac"],
                            ip=router["ip"], now=ctx.now())
    except BillingError as exc:
        return form_error(error_text(exc.code, exc.message, choose_language(request)),
                          exc.status, receipt=request.form.get("receipt", ""),
                          open_section="share")
    ctx.wake_router()
    lang = choose_language(request)
    left = int(shared.until - ctx.now())
    message = translate(lang, "share_ok", time=format_duration(left, lang),
                        count=shared.devices, allowed=shared.allowed)
    return _done(message, shared.seconds, left, router)


def _done(message_key: str, seconds: int, left: int, router: dict[str, str]) -> Any:
    lang = choose_language(request)
    message = translate(lang, message_key) if message_key.isidentifier() else message_key
    return render("done.html", router=router, lang=lang, message=message,
                  seconds_left=left, home=query_string(router, lang),
                  link_orig=safe_link(router["link-orig"]))
