"""Devices and sessions: who is online, give time, disconnect, block."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from hotspotd.admin import actions
from hotspotd.admin.devices import blocked, devices_now, session_history
from hotspotd.web.admin import actor, blueprint, page
from hotspotd.web.context import web_context


@blueprint.get("/devices")
def devices() -> Any:
    ctx = web_context()
    return page("admin/devices.html", devices=devices_now(ctx.db, ctx.now()),
                history=session_history(ctx.db), blocked=blocked(ctx.db))


def _back() -> Any:
    return redirect(url_for("admin.devices"), 303)


@blueprint.post("/devices/time")
def give_time() -> Any:
    ctx = web_context()
    try:
        minutes = int(request.form.get("minutes", ""))
    except ValueError:
        minutes = 0
    grant = actions.give_time(ctx.db, actor(), mac=request.form.get("mac", ""),
                              minutes=minutes, reason=request.form.get("reason", ""))
    ctx.wake_router()
    flash(f"Gave {minutes} min to {grant.mac}.")
    return _back()


@blueprint.post("/devices/disconnect")
def disconnect() -> Any:
    ctx = web_context()
    actions.disconnect_device(ctx.db, actor(), mac=request.form.get("mac", ""))
    ctx.wake_router()
    flash("Disconnecting: the router is being told now.")
    return _back()


@blueprint.post("/devices/block")
def block() -> Any:
    ctx = web_context()
    actions.block_mac(ctx.db, actor(), mac=request.form.get("mac", ""),
                      reason=request.form.get("reason", ""))
    ctx.wake_router()
    flash("Blocked: the device is disconnected and refused from now on.")
    return _back()


@blueprint.post("/devices/unblock")
def unblock() -> Any:
    actions.unblock_mac(web_context().db, actor(), mac=request.form.get("mac", ""))
    flash("Unblocked.")
    return _back()
