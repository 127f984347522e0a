"""Login, logout and the first-visit owner set-up (local network only)."""

from __future__ import annotations

from typing import Any

from flask import abort, g, redirect, request, session, url_for

from hotspotd.admin.accounts import (
    AdminError,
    create_account,
    end_sessions,
    owner_exists,
    verify_login,
)
from hotspotd.admin.audit import record_audit
from hotspotd.admin.security import LoginGate, is_local_address
from hotspotd.ratelimit import RateLimiter
from hotspotd.web.admin import blueprint, page, start_session
from hotspotd.web.context import web_context


def _gate() -> LoginGate:
    ctx = web_context()
    return LoginGate(RateLimiter(ctx.db, ctx.now), ctx.admin)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin.dashboard")


def _audit(username: str, action: str, **after: Any) -> None:
    ctx = web_context()
    with ctx.db.write() as conn:
        record_audit(conn, at=ctx.now(), username=username, action=action,
                     after=after or None, source_ip=request.remote_addr)


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    ctx = web_context()
    if not owner_exists(ctx.db):
        return redirect(url_for("admin.setup"))
    username = request.form.get("username", "").strip()
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return page("admin/login.html", error=None, username="", next_url=next_url)
    address = request.remote_addr or ""
    wait = _gate().locked_for(username, address)
    if wait > 0:
        minutes = int(wait // 60) + 1
        return page("admin/login.html", username=username, next_url=next_url,
                    error=f"Too many wrong passwords. Try again in {minutes} min."), 429
    account = verify_login(ctx.db, username, request.form.get("password", ""), ctx.now())
    if account is None:
        _gate().failed(username, address)
        _audit(username[:40] or "?", "login.failed")
        return page("admin/login.html", username=username, next_url=next_url,
                    error="Wrong username or password."), 401
    _gate().succeeded(username)
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
    """The first visit, when no owner exists: only from loopback or a private network."""
    ctx = web_context()
    if owner_exists(ctx.db):
        return redirect(url_for("admin.login"))
    if not is_local_address(request.remote_addr):
        abort(403, "Set up the owner account from the local network (or run hotspotd init).")
    username = request.form.get("username", "").strip()
    if request.method == "GET":
        return page("admin/setup.html", error=None, username="")
    password = request.form.get("password", "")
    try:
        if password != request.form.get("confirm", ""):
            raise AdminError("The two passwords differ.")
        create_account(ctx.db, username=username, password=password, role="owner",
                       now=ctx.now())
    except AdminError as exc:
        return page("admin/setup.html", error=exc.message, username=username), 400
    account = verify_login(ctx.db, username, password, ctx.now())
    assert account is not None
    start_session(account)
    _audit(account.username, "setup.owner_created")
    return redirect(url_for("admin.dashboard"), 303)
