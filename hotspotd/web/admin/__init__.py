"""The venue owner's web UI under /admin/: one blueprint, nothing reachable without a session.

It is served on the management listener (`[admin] host`/`port`) when there is one, else on
the portal's. Sessions are Flask's signed cookies (HttpOnly, SameSite=Strict, path /admin, a
persisted generated key, Secure when served over https); every POST carries a CSRF token
bound to the session (the CSRF token lives in that cookie); cashiers may only look. The
pages live in the modules imported at the bottom of this file.
"""

from __future__ import annotations

import calendar
import ipaddress
import secrets
import time
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.sessions import SecureCookieSessionInterface

from hotspotd.admin.accounts import Account, get_account
from hotspotd.admin.actions import Actor
from hotspotd.admin.exports import iso
from hotspotd.admin.security import CSRF_FIELD, CSRF_HEADER, csrf_matches, new_csrf_token
from hotspotd.ledger.errors import BillingError
from hotspotd.router.durations import format_duration
from hotspotd.web import SIDE_KEY
from hotspotd.web.context import web_context
from hotspotd.web.device import source_address

blueprint = Blueprint("admin", __name__, url_prefix="/admin")

PUBLIC_ENDPOINTS = {"admin.login", "admin.setup"}
CASHIER_MAY_POST = {"admin.logout"}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; img-src 'self' data:;"
                               " frame-ancestors 'none'; form-action 'self'",
}


class _AdminSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure whenever the page was served over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return served_over_https()


def served_over_https() -> bool:
    """https to the browser: TLS here, `X-Forwarded-Proto: https` from one of `[web]
    trusted_proxies`, or (on the portal's listener) an https `[web] public_url`."""
    if request.scheme == "https":
        return True
    ctx = web_context()
    if current_app.extensions.get(SIDE_KEY) != "management" and \
            ctx.admin.public_url.startswith("https://"):
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" and _peer_is_trusted_proxy(ctx.web_sources.trusted_proxies)


def _peer_is_trusted_proxy(proxies: tuple[Any, ...]) -> bool:
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(peer in network for network in proxies)


@blueprint.record_once
def _configure_sessions(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    options = app.extensions["hotspotd"].admin
    app.secret_key = options.secret_key or secrets.token_urlsafe(32)
    app.session_interface = _AdminSessions()
    app.config.update(SESSION_COOKIE_NAME="hotspotd_admin", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH="/admin",
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=options.session_hours))


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = new_csrf_token()
    return token


def current_account() -> Account | None:
    account_id = session.get("account_id")
    issued = session.get("issued_at", 0)
    ctx = web_context()
    if not account_id or ctx.now() - issued > ctx.admin.session_hours * 3600:
        return None
    return get_account(ctx.db, account_id, issued_at=issued)


def start_session(account: Account) -> None:
    session.clear()
    session.permanent = True
    session.update(account_id=account.id, issued_at=web_context().now(),
                   csrf=new_csrf_token())


@blueprint.before_request
def _gate() -> Any:
    """No session: GETs go to the login page, anything else is refused. Then CSRF, role."""
    if request.method not in ("GET", "HEAD") and not csrf_matches(
            session.get("csrf"), request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)):
        abort(403, "The form expired or did not come from this page; reload it and try again.")
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    account = current_account()
    if account is None:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("admin.login", next=request.path))
        abort(401, "Log in first.")
    g.account = account
    if request.method not in ("GET", "HEAD") and not account.can_change and \
            request.endpoint not in CASHIER_MAY_POST:
        abort(403, "A cashier account can look but not change anything.")
    return None


@blueprint.after_request
def _headers(response: Any) -> Any:
    response.headers.update(SECURITY_HEADERS)
    return response


@blueprint.app_template_filter("admin_time")
def _admin_time(at: float | None) -> str:
    return iso(at, web_context().admin.utc_offset_minutes)[:16]


@blueprint.app_template_filter("admin_duration")
def _admin_duration(seconds: int | None) -> str:
    return format_duration(int(seconds or 0))


@blueprint.app_template_filter("megabytes")
def _megabytes(octets: int | None) -> str:
    return f"{(octets or 0) / 1_000_000:.1f} MB"


def page(template: str, **values: Any) -> str:
    """Render an owner page with what every page needs."""
    ctx = web_context()
    return render_template(template, venue=ctx.venue(), portal_text=ctx.portal_text(),
                           account=g.get("account"), csrf_token=csrf_token(), **values)


def client_address() -> str:
    """Who is asking: the peer, or X-Forwarded-For from `[web] trusted_proxies` only."""
    return source_address()


def actor() -> Actor:
    return Actor(g.account.username, client_address(), web_context().now())


@blueprint.errorhandler(BillingError)
def _refused(exc: BillingError) -> Any:
    status = exc.status if exc.status < 500 else 400
    return page("admin/message.html", title="Not done", message=exc.message, error=True,
                back=request.referrer if _same_site(request.referrer) else None), status


@blueprint.errorhandler(401)
@blueprint.errorhandler(403)
@blueprint.errorhandler(404)
@blueprint.errorhandler(405)
def _http_error(exc: Any) -> Any:
    return page("admin/message.html", title=exc.name, message=exc.description,
                error=True), exc.code


def _same_site(url: str | None) -> bool:
    return bool(url) and url.startswith(request.host_url)


def parse_day(text: str | None, *, end: bool = False) -> float | None:
    """'2026-11-28' → the epoch of that venue day's start (or the next day's, for `end`)."""
    if not text:
        return None
    try:
        day = time.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise BillingError(f"{text!r} is not a date like 2026-11-28.") from None
    start = calendar.timegm(day) - web_context().admin.utc_offset_minutes * 60
    return start + 86400 if end else start


from hotspotd.web.admin import auth, catalogue, devices, money, settings  # noqa: E402,F401
