"""Helpers every portal page shares: language, router fields, CSRF, rendering."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, redirect, render_template, request

from hotspotd.ledger.account_codes import account_code_for
from hotspotd.ledger.grants import get_entitlement
from hotspotd.ledger.plans import list_plans
from hotspotd.router.placement import NotPlaced
from hotspotd.web.context import WebContext, web_context
from hotspotd.web.device import MESSAGE_KEYS, not_placed_status, this_device
from hotspotd.web.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    choose_language,
    format_duration,
    format_money,
    translate,
)
from hotspotd.web.portal import security
from hotspotd.web.portal.views import plan_rows

ROUTER_FIELDS = ("mac", "ip", "link-login-only", "link-orig", "chap-id", "chap-challenge")
LANG_COOKIE_SECONDS = 365 * 24 * 3600


def portal_secret(ctx: WebContext) -> str:
    """The key of the CSRF tokens: configured, else one random key per app."""
    if ctx.portal.secret:
        return ctx.portal.secret
    return str(current_app.config.setdefault("HOTSPOTD_PORTAL_SECRET", secrets.token_hex(32)))


def router_fields(source: Any) -> dict[str, str]:
    """The values the router's login page handed over (query string or form). `mac` and
    `ip` among them are hints only: see `placed_fields`."""
    return {key: str(source.get(key, ""))[:512] for key in ROUTER_FIELDS}


def placed_fields(source: Any, *, fresh: bool = False) -> dict[str, str]:
    """The router's fields with `mac` and `ip` as the network says (raises NotPlaced)."""
    device = this_device(fresh=fresh)
    return {**router_fields(source), "mac": device.mac, "ip": device.ip}


def not_placed(exc: NotPlaced) -> Any:
    """A request the network cannot place: a clear page, nothing created. A GET whose
    link names another device goes on to the same page for the device it comes from."""
    if exc.reason == "mismatch" and request.method == "GET":
        kept = [(key, value) for key, value in request.args.items(multi=True)
                if key not in ("mac", "ip")]
        return redirect(request.path + ("?" + urlencode(kept) if kept else ""), 303)
    lang = choose_language(request)
    router = {key: "" for key in ROUTER_FIELDS}
    return render("message.html", not_placed_status(exc), lang=lang, router=router,
                  message=translate(lang, MESSAGE_KEYS[exc.reason]))


def query_string(router: dict[str, str], lang: str, *keys: str) -> str:
    wanted = keys or ROUTER_FIELDS
    pairs = [(key, router[key]) for key in wanted if router.get(key)]
    return urlencode([*pairs, ("lang", lang)])


def render(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    """Render a portal page with the language helpers, the switch and a CSRF token."""
    ctx = web_context()
    lang = values.pop("lang", None) or choose_language(request)
    router = values.get("router") or router_fields(request.args)

    def t(key: str, **kw: Any) -> str:
        return translate(lang, key, **kw)

    switch = [(code, LANGUAGE_NAMES[code], "?" + query_string(router, code))
              for code in LANGUAGES if code != lang]
    values.setdefault("router", router)
    page = render_template(template, venue=ctx.venue(), portal_text=ctx.portal_text(),
                           lang=lang, t=t, switch=switch,
                           csrf=security.csrf_token(portal_secret(ctx)),
                           duration=lambda seconds: format_duration(seconds, lang),
                           money=format_money, **values)
    return page, status


def home_values(router: dict[str, str], lang: str) -> dict[str, Any]:
    """What the plans page shows for this device: plans, time left, how to pay by menu."""
    ctx = web_context()
    conn = ctx.db.connection()
    mac = router["mac"]  # placed by the network (`placed_fields`)
    entitlement = get_entitlement(conn, mac)
    left = entitlement.seconds_remaining(ctx.now()) if entitlement else 0
    plans = list_plans(conn)
    return {"plans": plan_rows(plans, lang), "seconds_left": left,
            "shareable": any(plan.devices > 1 for plan in plans),
            "expires_at": entitlement.expires_at if entitlement else 0,
            "menu": payment_menu(mac), "mac": mac}


def payment_menu(mac: str) -> dict[str, str] | None:
    """Paybill/till and this device's account code (issue 3's account codes), if any."""
    ctx = web_context()
    if not ctx.portal.payment_menu.get("number"):
        return None
    # A device's code, once made, never changes: read it, and take the write lock (which
    # RADIUS accounting waits for) only on the device's first view.
    row = ctx.db.query_one("SELECT code FROM account_codes WHERE mac = ?", (mac,))
    if row is not None:
        return {**ctx.portal.payment_menu, "account": str(row["code"])}
    with ctx.db.write() as conn:
        code = account_code_for(conn, mac, ctx.now())
    return {**ctx.portal.payment_menu, "account": code}


def after_request(response: Response) -> Response:
    """Remember an explicit language choice; set the CSRF cookie; compress."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES and request.cookies.get("lang") != chosen:
        response.set_cookie("lang", chosen, max_age=LANG_COOKIE_SECONDS, samesite="Lax")
    response.headers.setdefault("Cache-Control", "no-store")
    return security.finish_response(response)
