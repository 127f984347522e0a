"""The captive portal pages: plans, the phone form, and a status page that follows a payment.

Works without JavaScript (form POST, then a page that refreshes itself); a few lines of
JavaScript make the status page update without reloading.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from hotspotd.billing.errors import BillingError, UnknownPayment
from hotspotd.billing.grants import get_entitlement
from hotspotd.billing.macs import looks_like_mac, normalise_mac
from hotspotd.billing.payments import get_payment
from hotspotd.billing.plans import list_plans
from hotspotd.billing.status import purchase_status
from hotspotd.web.context import web_context

blueprint = Blueprint("portal", __name__)

ROUTER_FIELDS = ("mac", "ip", "link-login-only", "link-orig", "chap-id", "chap-challenge")


def format_duration(seconds: int) -> str:
    """3600 → "1 hour", 5400 → "1 h 30 min", 86400 → "1 day" (to the nearest minute)."""
    days, rest = divmod((int(seconds) + 30) // 60 * 60, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days and not hours and not minutes:
        return f"{days} day" + ("s" if days > 1 else "")
    if not days and hours and not minutes:
        return f"{hours} hour" + ("s" if hours > 1 else "")
    if not days and not hours:
        return f"{minutes} min"
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else ""]
    return " ".join(part for part in parts if part)


@blueprint.app_template_filter("duration")
def _duration_filter(seconds: int) -> str:
    return format_duration(seconds)


@blueprint.get("/")
def home() -> Any:
    ctx = web_context()
    router = {key: request.args.get(key, "") for key in ROUTER_FIELDS}
    seconds_left = 0
    if looks_like_mac(router["mac"]):
        entitlement = get_entitlement(ctx.db.connection(), normalise_mac(router["mac"]))
        seconds_left = entitlement.seconds_remaining(ctx.now()) if entitlement else 0
    return render_template("portal.html", venue=ctx.venue_name, router=router,
                           plans=list_plans(ctx.db.connection()), seconds_left=seconds_left,
                           error=None)


@blueprint.post("/buy")
def buy() -> Any:
    ctx = web_context()
    form = request.form
    router = {key: form.get(key, "") for key in ROUTER_FIELDS}
    try:
        payment = ctx.purchases.start_purchase(plan_id=form.get("plan_id"),
                                               phone=form.get("phone", ""),
                                               mac=router["mac"], ip=router["ip"] or None)
    except BillingError as exc:
        page = render_template("portal.html", venue=ctx.venue_name, router=router,
                               plans=list_plans(ctx.db.connection()), seconds_left=0,
                               error=exc.message, phone=form.get("phone", ""))
        return page, exc.status
    return redirect(url_for("portal.status", public_id=payment.public_id, **_dst(router)), 303)


def _dst(router: dict[str, str]) -> dict[str, str]:
    return {"link-orig": router["link-orig"]} if router.get("link-orig") else {}


@blueprint.get("/status/<public_id>")
def status(public_id: str) -> Any:
    ctx = web_context()
    payment = get_payment(ctx.db, public_id=public_id)
    if payment is None:
        raise UnknownPayment("No such purchase.")
    view = purchase_status(ctx.db.connection(), payment, ctx.now())
    return render_template("status.html", venue=ctx.venue_name, view=view,
                           link_orig=request.args.get("link-orig", ""))


@blueprint.errorhandler(UnknownPayment)
def _unknown(exc: UnknownPayment) -> Any:
    return render_template("message.html", venue=web_context().venue_name,
                           message=exc.message), 404
