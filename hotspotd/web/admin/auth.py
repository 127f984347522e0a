"""Login, logout and the first-run owner set-up (with the one-time code hotspotd printed).

Wrong passwords slow down one (username, source address) pair and then one address, never
the account for everyone (`admin.security.LoginGate`); wrong set-up codes are counted per
address. A source address is the peer's, or X-Forwarded-For from `[web] trusted_proxies`.
"""

from __future__ import annotations

from typing import Any

from flask import g, redirect, request, session, url_for

from hotspotd.admin.accounts import AdminError, end_sessions, owner_exists, verify_login
from hotspotd.admin.audit import record_audit
from hotspotd.admin.security import LoginGate, SetupCodeGate
from hotspotd.admin.setup_codes import SetupClosed, WrongSetupCode, create_first_owner
from hotspotd.ratelimit import RateLimiter
from hotspotd.web.admin import blueprint, client_address, page, start_session
from hotspotd.web.context import web_context


def _gate() -> LoginGate:
    ctx = web_context()
    return LoginGate(RateLimiter(ctx.db, ctx.now), ctx.admin)


def _code_gate() -> SetupCodeGate:
    ctx = web_context()
    return SetupCodeGate(RateLimiter(ctx.db, ctx.now), ctx.admin)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin.dashboard")


def _audit(username: str, action: str, **after: Any) -> None:
    ctx = web_context()
    with ctx.db.write() as conn:
        record_audit(conn, at=ctx.now(), username=username, action=action,
                     after=after or None, source_ip=client_address())


def _wait_words(seconds: float) -> str:
    return f"{int(seconds // 60) + 1} min"


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    ctx = web_context()
    if not owner_exists(ctx.db):
        return redirect(url_for("admin.setup"))
    username = request.form.get("username", "").strip()
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return page("admin/login.html", error=None, username="", next_url=next_url)
    address = client_address()
    wait = _gate().locked_for(username, address)
    if wait > 0:
        return page("admin/login.html", username=username, next_url=next_url,
                    error=f"Too many wrong passwords from this address. Try again in"
                          f" {_wait_words(wait)}."), 429, {"Retry-After": str(int(wait) + 1)}
    account = verify_login(ctx.db, username, request.form.get("password", ""), ctx.now())
    if account is None:
        _gate().failed(username, address)
        _audit(username[:40] or "?", "login.failed")
        return page("admin/login.html", username=username, next_url=next_url,
                    error="Wrong username or password."), 401
    _gate().succeeded(username, address)
    start_session(account)
    _audit(account.username, "login")
    return redirect(_safe_next(next_url), 303)


@blueprint.post("/logout")
def logout() -> Any:
    """Ends this login and every other one of the account (cookies cannot be recalled)."""
    ctx = web_context()
    end_sessions(ctx.db, account_id=g.account.id, now=ctx.now())
    _audit(g.account.username, "logout")
    session.clear()
    return redirect(url_for("admin.login"), 303)


@blueprint.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    """The first visit, when no owner exists: only with the one-time code hotspotd printed."""
    ctx = web_context()
    if owner_exists(ctx.db):
        return redirect(url_for("admin.login"))
    username = request.form.get("username", "").strip()
    if request.method == "GET":
        return page("admin/setup.html", error=None, username="")
    address = client_address()
    wait = _code_gate().locked_for(address)
    if wait > 0:
        return page("admin/setup.html", username=username,
                    error=f"Too many wrong set-up codes from this address. Try again in"
                          f" {_wait_words(wait)}."), 429, {"Retry-After": str(int(wait) + 1)}
    password = request.form.get("password", "")
    try:
        if password != request.form.get("confirm", ""):
            raise AdminError("The two passwords differ.")
        account = create_first_owner(ctx.db, code=request.form.get("setup_code", ""),
                                     username=username, password=password, now=ctx.now())
    except SetupClosed:
        return redirect(url_for("admin.login"), 303)
    except WrongSetupCode as exc:
        _code_gate().failed(address)
        _audit(username[:40] or "?", "setup.wrong_code")
        return page("admin/setup.html", error=exc.message, username=username), 403
    except AdminError as exc:
        return page("admin/setup.html", error=exc.message, username=username), 400
    start_session(account)
    _audit(account.username, "setup.owner_created")
    return redirect(url_for("admin.dashboard"), 303)
