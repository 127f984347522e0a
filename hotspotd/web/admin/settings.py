"""Settings: accounts (add a read-only cashier, change a password), self-test, audit log."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request, url_for

from hotspotd.admin.accounts import AdminError, create_account, list_accounts, set_password
from hotspotd.admin.audit import recent_audit, record_audit
from hotspotd.admin.selftest import run_self_test
from hotspotd.web.admin import blueprint, page, start_session
from hotspotd.web.context import web_context


@blueprint.get("/settings")
def settings() -> Any:
    ctx = web_context()
    channels = ctx.db.query("SELECT name, kind, environment, shortcode, till_number,"
                            " updated_at FROM daraja_channels ORDER BY name")
    return page("admin/settings.html", accounts=list_accounts(ctx.db), channels=channels,
                options=ctx.admin, public_url=ctx.admin.public_url)


@blueprint.get("/settings/self-test")
def self_test() -> Any:
    ctx = web_context()
    return page("admin/selftest.html", checks=run_self_test(ctx.db, ctx.now(), ctx.self_test,
                                                              public_url=ctx.admin.public_url))


@blueprint.get("/audit")
def audit() -> Any:
    return page("admin/audit.html", rows=recent_audit(web_context().db))


def _audit(action: str, target: str) -> None:
    ctx = web_context()
    with ctx.db.write() as conn:
        record_audit(conn, at=ctx.now(), username=g.account.username, action=action,
                     target=target, source_ip=request.remote_addr)


@blueprint.post("/settings/accounts")
def add_account() -> Any:
    ctx = web_context()
    username = request.form.get("username", "")
    create_account(ctx.db, username=username, password=request.form.get("password", ""),
                   role="cashier", now=ctx.now())
    _audit("account.create_cashier", username)
    flash(f"Cashier account {username!r} created (it can look, not change).")
    return redirect(url_for("admin.settings"), 303)


@blueprint.post("/settings/password")
def change_password() -> Any:
    ctx = web_context()
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        raise AdminError("The two passwords differ.")
    set_password(ctx.db, username=g.account.username, password=password, now=ctx.now())
    start_session(g.account)  # other logins of this account end; this one goes on
    _audit("account.password", g.account.username)
    flash("Password changed.")
    return redirect(url_for("admin.settings"), 303)
