"""Other ways in: a voucher code, recovery of paid time after a MAC change, and adding a
device to a plan for several devices.

Both are guessable by brute force, so both are rate limited per device and per source
address (persistent windows: a restart does not reset them) before anything is looked up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import Blueprint, request

from hotspotd.ledger.errors import BillingError
from hotspotd.ledger.grants import Grant
from hotspotd.ledger.recovery import Recovery
from hotspotd.ledger.sharing import Shared, add_device
from hotspotd.ratelimit import RateLimiter
from hotspotd.web.context import WebContext, web_context
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
    return _other_way("voucher", "code", lambda ctx, device: _voucher_done(
        ctx, ctx.redeem_voucher(code=request.form.get("code", ""), mac=device["mac"],
                                ip=device["ip"], now=ctx.now())))


def recover() -> Any:  # the time moves to the device the network placed
    return _other_way("recover", "receipt", lambda ctx, device: _recovered(
        ctx, ctx.recover_time(receipt=request.form.get("receipt", ""),
                              phone=request.form.get("phone", ""), mac=device["mac"],
                              ip=device["ip"], now=ctx.now())))


def share() -> Any:  # the device the network placed joins the payer's plan
    return _other_way("share", "receipt", lambda ctx, device: _shared(
        ctx, add_device(ctx.db, receipt=request.form.get("receipt", ""),
                        phone=request.form.get("phone", ""), mac=device["mac"],
                        ip=device["ip"], now=ctx.now())))


ATTEMPTS = {"voucher": "voucher_attempts", "recover": "recovery_attempts",
            "share": "recovery_attempts"}


def _other_way(kind: str, kept: str,
               act: Callable[[WebContext, dict[str, str]], tuple[str, int, int]]) -> Any:
    """One form of "other ways in": CSRF and the attempt limits first, then `act` (which
    returns the page's message, the seconds given and the seconds left); a refusal is the
    page again with the customer's `kept` field and the section open."""
    device = placed_fields(request.form, fresh=True)
    ctx = web_context()
    refused = csrf_refused() or rate_limited(kind, getattr(ctx.portal, ATTEMPTS[kind]), device)
    if refused is not None:
        return refused
    try:
        message, seconds, left = act(ctx, device)
    except BillingError as exc:
        return form_error(error_text(exc.code, exc.message, choose_language(request)),
                          exc.status, open_section=kind,
                          **{kept: request.form.get(kept, "")})
    ctx.wake_router()
    return _done(message, seconds, left, device)


def _voucher_done(ctx: WebContext, grant: Grant) -> tuple[str, int, int]:
    return "voucher_ok", grant.seconds, int(grant.expires_at - ctx.now())


def _recovered(ctx: WebContext, moved: Recovery) -> tuple[str, int, int]:
    lang = choose_language(request)
    message = translate(lang, "recover_ok", time=format_duration(moved.seconds, lang))
    return message, moved.seconds, int(moved.expires_at - ctx.now())


def _shared(ctx: WebContext, shared: Shared) -> tuple[str, int, int]:
    lang = choose_language(request)
    left = int(shared.until - ctx.now())
    return translate(lang, "share_ok", time=format_duration(left, lang), count=shared.devices,
                     allowed=shared.allowed), shared.seconds, left


def _done(message_key: str, seconds: int, left: int, router: dict[str, str]) -> Any:
    lang = choose_language(request)
    message = translate(lang, message_key) if message_key.isidentifier() else message_key
    return render("done.html", router=router, lang=lang, message=message,
                  seconds_left=left, home=query_string(router, lang),
                  link_orig=safe_link(router["link-orig"]))
