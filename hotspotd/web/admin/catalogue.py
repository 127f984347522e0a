"""Plans and vouchers: create, edit, reorder, hide; voucher batches, print sheet, void."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for

from hotspotd.admin import catalogue
from hotspotd.ledger.vouchers import format_code, list_batch
from hotspotd.web.admin import actor, blueprint, page
from hotspotd.web.context import web_context


@blueprint.get("/plans")
def plans() -> Any:
    return page("admin/plans.html", plans=catalogue.all_plans(web_context().db))


@blueprint.post("/plans")
def create_plan() -> Any:
    fields = catalogue.parse_plan_form(request.form)
    catalogue.add_plan(web_context().db, actor(), fields)
    flash(f"Plan {fields['name']!r} created.")
    return redirect(url_for("admin.plans"), 303)


@blueprint.post("/plans/<int:plan_id>")
def edit_plan(plan_id: int) -> Any:
    fields = catalogue.parse_plan_form(request.form)
    catalogue.update_plan(web_context().db, actor(), plan_id, fields)
    _plans_changed()
    flash(f"Plan {fields['name']!r} saved. Time already paid is unchanged.")
    return redirect(url_for("admin.plans"), 303)


def _plans_changed() -> None:
    """RADIUS answers from memory: have the plans' data caps and idle timeouts re-read."""
    web_context().settings.announce({"plans"})


@blueprint.post("/plans/<int:plan_id>/visibility")
def plan_visibility(plan_id: int) -> Any:
    show = request.form.get("active") == "1"
    catalogue.update_plan(web_context().db, actor(), plan_id, {"active": int(show)})
    flash("Plan shown on the portal." if show else "Plan hidden from the portal.")
    return redirect(url_for("admin.plans"), 303)


@blueprint.post("/plans/<int:plan_id>/move")
def move_plan(plan_id: int) -> Any:
    direction = -1 if request.form.get("direction") == "up" else 1
    catalogue.move_plan(web_context().db, actor(), plan_id, direction)
    return redirect(url_for("admin.plans"), 303)


@blueprint.get("/vouchers")
def vouchers() -> Any:
    ctx = web_context()
    return page("admin/vouchers.html", batches=catalogue.voucher_batches(ctx.db),
                plans=catalogue.all_plans(ctx.db))


@blueprint.post("/vouchers")
def create_vouchers() -> Any:
    form = request.form
    batch = catalogue.make_voucher_batch(web_context().db, actor(), plan_id=form.get("plan_id"),
                                         count=form.get("count"),
                                         valid_days=form.get("valid_days"))
    flash("Batch created: print it from this page.")
    return redirect(url_for("admin.voucher_batch", batch=batch), 303)


def _batch(batch: str) -> tuple[list[Any], Any]:
    ctx = web_context()
    made = list_batch(ctx.db, batch)
    if not made:
        abort(404, "No such voucher batch.")
    plan = ctx.db.query_one("SELECT * FROM plans WHERE id = ?", (made[0].plan_id,))
    return made, plan


@blueprint.get("/vouchers/<batch>")
def voucher_batch(batch: str) -> Any:
    made, plan = _batch(batch)
    return page("admin/voucher_batch.html", batch=batch, vouchers=made, plan=plan,
                format_code=format_code)


@blueprint.get("/vouchers/<batch>/print")
def voucher_print(batch: str) -> Any:
    made, plan = _batch(batch)
    unused = [v for v in made if v.status == "unused"]
    return page("admin/voucher_print.html", batch=batch, vouchers=unused, plan=plan,
                format_code=format_code)


@blueprint.post("/vouchers/<batch>/void")
def void_vouchers(batch: str) -> Any:
    made, _ = _batch(batch)
    wanted = set(request.form.getlist("voucher_id"))
    ids = [v.id for v in made if v.status == "unused" and (not wanted or str(v.id) in wanted)]
    done = catalogue.void_vouchers(web_context().db, actor(), ids)
    flash(f"{done} voucher(s) voided.")
    return redirect(url_for("admin.voucher_batch", batch=batch), 303)
