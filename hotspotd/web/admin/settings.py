"""Settings: venue and portal text, router connection, limits, Daraja channels (secrets
write-only; which one new payments use; removing one), accounts (add a read-only cashier,
change a password), self-test, audit log."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for

from hotspotd.admin.accounts import AdminError, create_account, list_accounts, set_password
from hotspotd.admin.audit import recent_audit, record_audit
from hotspotd.admin.channel_forms import ENVIRONMENTS, save_channel_form
from hotspotd.admin.selftest import run_self_test
from hotspotd.admin.settings_store import SettingsRefused, SettingsStore
from hotspotd.config.overrides import GROUPS, SETTINGS
from hotspotd.mpesa.channels import (
    DEFAULT_CHANNEL,
    active_channel,
    remove_channel,
    set_active_channel,
)
from hotspotd.web.admin import actor, blueprint, client_address, page, start_session
from hotspotd.web.context import WebContext, web_context

LIVE_NOTE = {
    "venue": "Applies at once: the portal and the voucher sheet show it on the next page load.",
    "limits": "Applies at once, from the next M-Pesa prompt.",
}
REMOVE_WARNING = ("M-Pesa messages sent to this channel's callback URLs will be refused from"
                  " now on; register another channel's URLs first (hotspotd mpesa"
                  " register-c2b)")


@blueprint.get("/settings")
def settings() -> Any:
    return _settings_page()


def _settings_page(*, errors: dict[str, list[str]] | None = None,
                   submitted: dict[str, Any] | None = None, status: int = 200) -> Any:
    ctx = web_context()
    store = ctx.settings
    channels = ctx.db.query("SELECT name, kind, environment, base_url, shortcode, till_number,"
                            " updated_at FROM daraja_channels ORDER BY name")
    editing = request.args.get("channel", "")
    channel_form = dict(submitted.get("channel", {})) if submitted else {}
    if not channel_form and editing:
        channel_form = next((dict(row) for row in channels if row["name"] == editing), {})
    values = store.form_values()
    for key, value in (submitted or {}).items():
        if key != "channel":
            values[key] = value
    backend = store.config().router.backend
    return page("admin/settings.html", accounts=list_accounts(ctx.db), channels=channels,
                default_channel=_default_channel(ctx),
                active_channel=active_channel(ctx.db.connection()),
                remove_warning=REMOVE_WARNING,
                options=ctx.admin, public_url=ctx.admin.public_url,
                settings_fields=SETTINGS, values=values, errors=errors or {},
                channel_form=channel_form, environments=ENVIRONMENTS, live_note=LIVE_NOTE,
                router_note=_router_note(backend),
                restart_needed=sorted(store.restart_needed)), status


def _default_channel(ctx: WebContext) -> dict[str, str]:
    """The "default" row: the configuration file's `[daraja]` section as the daemon runs it
    (public fields only; its keys never leave the config)."""
    daraja = ctx.settings.config().daraja
    return {"name": DEFAULT_CHANNEL, "kind": daraja.transaction_type,
            "shortcode": daraja.shortcode, "till_number": daraja.till_number}


def _router_note(backend: str) -> str:
    if backend == "routeros":
        return "Applies at once: the daemon closes its router connection and reconnects."
    return ("The embedded MikroTik simulator is in use ([router] backend = \"simulator\"):"
            " these values are stored, and apply at the next restart.")


def _store() -> SettingsStore:
    return web_context().settings


@blueprint.post("/settings/edit/<group>")
def save_settings(group: str) -> Any:
    if group not in GROUPS:
        abort(404)
    ctx = web_context()
    try:
        changed = _store().save(group, request.form, username=g.account.username,
                                now=ctx.now(), source_ip=client_address())
    except SettingsRefused as exc:
        submitted = {s.key: request.form.get(s.field, "") for s in SETTINGS
                     if s.group == group and s.kind not in ("secret", "bool")}
        return _settings_page(errors={group: exc.problems}, submitted=submitted, status=400)
    if not changed:
        flash("Nothing changed.")
    else:
        labels = ", ".join(s.label for s in SETTINGS if s.key in changed)
        note = _router_note(ctx.settings.config().router.backend) if group == "router" \
            else LIVE_NOTE[group]
        flash(f"Saved: {labels}. {note}")
    return redirect(url_for("admin.settings") + f"#{group}", 303)


@blueprint.post("/settings/channels")
def save_channel() -> Any:
    ctx = web_context()
    box = _store().box()
    try:
        channel, created = save_channel_form(ctx.db, box, actor(), request.form)
    except SettingsRefused as exc:
        kept = {key: request.form.get(key, "") for key in
                ("name", "kind", "environment", "base_url", "shortcode", "till_number")}
        return _settings_page(errors={"channel": exc.problems}, submitted={"channel": kept},
                              status=400)
    if created:  # its callback path works from now on
        ctx.mpesa.channel_tokens[channel.callback_token] = channel.name
    flash(f"Channel {channel.name!r} {'added' if created else 'saved'}; its secrets are"
          " stored encrypted and are never shown.")
    return redirect(url_for("admin.settings") + "#channels", 303)


@blueprint.post("/settings/channels/use")
def use_channel() -> Any:
    """New STK pushes go out on the chosen channel. The purchase flow reads the active
    channel from the database at every push (`ChannelClients.push_channel`), as it does
    after `hotspotd mpesa use-channel`, so the very next purchase uses it; payments already
    made keep their own channel for their queries and callbacks."""
    ctx = web_context()
    name = request.form.get("name", "")
    before = active_channel(ctx.db.connection())
    if name == before:
        flash(f"Channel {name!r} is already in use for new payments; nothing changed.")
        return _to_channels()
    try:
        set_active_channel(ctx.db, name)
    except ValueError as exc:
        return _channels_refused(f"Nothing was changed: {exc}.")
    _audit("channel.use", name, before={"active": before}, after={"active": name})
    flash(f"New payments now go out on channel {name!r}. Payments already made keep their"
          " own channel.")
    return _to_channels()


@blueprint.post("/settings/channels/remove")
def remove_stored_channel() -> Any:
    """Delete a stored channel once nothing needs it (`mpesa.channels.remove_channel`
    says why not otherwise), then stop answering on its callback path at once. The owner
    must tick "I understand" (no scripts on these pages, so no confirm dialog)."""
    ctx = web_context()
    name = request.form.get("name", "")
    if request.form.get("understood") != "1":
        return _channels_refused(f"Channel {name!r} was not removed: tick \"I understand\""
                                 f" first. {REMOVE_WARNING}.")
    try:
        removed = remove_channel(ctx.db, name)
    except ValueError as exc:
        return _channels_refused(f"Channel {name!r} was not removed: {exc}.")
    _forget_callback_path(ctx, name)
    _audit("channel.remove", name, before=removed)
    flash(f"Channel {name!r} removed. {REMOVE_WARNING}.")
    return _to_channels()


def _forget_callback_path(ctx: WebContext, name: str) -> None:
    """Drop the removed channel's path token from the running callback endpoints (they
    answer 404 for it from now on), as `save_channel` adds a new one. The mapping is
    copied before the loop: a request thread may add a channel meanwhile."""
    tokens = ctx.mpesa.channel_tokens
    for token, channel in list(tokens.items()):
        if channel == name:
            tokens.pop(token, None)


def _channels_refused(message: str) -> Any:
    return _settings_page(errors={"channel-list": [message]}, status=400)


def _to_channels() -> Any:
    return redirect(url_for("admin.settings") + "#channels", 303)


@blueprint.get("/settings/self-test")
def self_test() -> Any:
    ctx = web_context()
    return page("admin/selftest.html", checks=run_self_test(ctx.db, ctx.now(), ctx.self_test,
                                                              public_url=ctx.admin.public_url))


@blueprint.get("/audit")
def audit() -> Any:
    return page("admin/audit.html", rows=recent_audit(web_context().db))


def _audit(action: str, target: str, *, before: Any = None, after: Any = None) -> None:
    ctx = web_context()
    with ctx.db.write() as conn:
        record_audit(conn, at=ctx.now(), username=g.account.username, action=action,
                     target=target, before=before, after=after, source_ip=client_address())


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

