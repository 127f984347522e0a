"""The buying path: plans page, the form POST, and the status page that follows a payment."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, redirect, request

from hotspotd.ledger.errors import BillingError, UnknownPayment
from hotspotd.ledger.payments import Payment, get_payment
from hotspotd.web.context import web_context
from hotspotd.web.device import this_device
from hotspotd.web.i18n import billing_error_text, choose_language, translate
from hotspotd.web.portal import security
from hotspotd.web.portal.common import (
    home_values,
    placed_fields,
    portal_secret,
    query_string,
    render,
)
from hotspotd.web.portal.router_login import LoginForm, login_form
from hotspotd.web.portal.views import purchase_view

STATUS_FIELDS = ("link-login-only", "link-orig", "chap-id", "chap-challenge")


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/", "home", home, methods=["GET"])
    blueprint.add_url_rule("/buy", "buy", buy, methods=["POST"])
    blueprint.add_url_rule("/status/<public_id>", "status", status, methods=["GET"])
    blueprint.register_error_handler(UnknownPayment, unknown_payment)


def home() -> Any:
    router = placed_fields(request.args)
    lang = choose_language(request)
    return render("portal.html", router=router, lang=lang, error=None,
                  open_section=request.args.get("open", ""),
                  link_orig=safe_link(router["link-orig"]), **home_values(router, lang))


def form_error(message: str, status: int, **extra: Any) -> Any:
    """Re-render the plans page with the customer's input kept and a message on top."""
    router = placed_fields(request.form)
    lang = choose_language(request)
    values = {"phone": request.form.get("phone", ""), **extra}
    return render("portal.html", status, router=router, lang=lang, error=message,
                  **home_values(router, lang), **values)


def csrf_refused() -> Any | None:
    """None when the form's token is good; else the page again with a fresh token."""
    if security.csrf_valid(portal_secret(web_context()), request):
        return None
    return form_error(translate(choose_language(request), "expired_form"), 400)


def buy() -> Any:
    refused = csrf_refused()
    if refused is not None:
        return refused
    ctx = web_context()
    router = placed_fields(request.form, fresh=True)
    try:
        payment = ctx.purchases.start_purchase(plan_id=request.form.get("plan_id"),
                                               phone=request.form.get("phone", ""),
                                               mac=router["mac"], ip=router["ip"])
    except BillingError as exc:
        page, code = form_error(billing_error_text(exc, choose_language(request)), exc.status)
        retry_after = getattr(exc, "retry_after", None)  # a limit says when (429)
        return page, code, {"Retry-After": str(math.ceil(retry_after))} if retry_after else {}
    target = f"/status/{payment.public_id}?" + query_string(
        router, choose_language(request), *STATUS_FIELDS)
    return redirect(target, 303)


def status(public_id: str) -> Any:
    ctx = web_context()
    payment = own_payment(public_id)
    lang = choose_language(request)
    view = purchase_view(ctx.db.connection(), payment, ctx.now(), lang,
                         ctx.portal.seconds_per_place)
    router = placed_fields(request.args)
    return render("status.html", router=router, lang=lang, view=view,
                  link_orig=safe_link(router["link-orig"]),
                  login=fallback_login(payment, router),
                  retry=query_string(router, lang))


def own_payment(public_id: str) -> Payment:
    """The purchase `public_id` if the requesting device made it; a device reads only its
    own state (anyone else gets "no such purchase", as for an unknown id)."""
    ctx = web_context()
    device = this_device()
    payment = get_payment(ctx.db, public_id=public_id)
    if payment is None or payment.mac != device.mac:
        raise UnknownPayment("No such purchase.")
    return payment


def fallback_login(payment: Payment, router: dict[str, str]) -> LoginForm | None:
    """The router's login form for the paying device (the status page is its own)."""
    ctx = web_context()
    if payment.status != "completed" or not router["link-login-only"]:
        return None
    return login_form(link_login_only=router["link-login-only"], mac=payment.mac,
                      password=ctx.portal.router_login_password, chap_id=router["chap-id"],
                      chap_challenge=router["chap-challenge"],
                      dst=safe_link(router["link-orig"]))


def safe_link(link: str) -> str:
    """Only send customers on to http(s) pages (never javascript: or data: links)."""
    return link if link.startswith(("http://", "https://")) else ""


def unknown_payment(exc: UnknownPayment) -> Any:
    lang = choose_language(request)
    return render("message.html", 404, lang=lang, message=translate(lang, "no_purchase"))
