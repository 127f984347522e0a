"""Money pages: dashboard, payment search and story, re-query, unmatched money, exports."""

from __future__ import annotations

import time
from typing import Any

from flask import Response, abort, flash, g, redirect, request, url_for

from hotspotd.admin import actions, exports
from hotspotd.admin.audit import record_audit
from hotspotd.admin.catalogue import all_plans
from hotspotd.admin.charts import bar_chart
from hotspotd.admin.payments_view import STATUSES, PaymentQuery, payment_story, search_payments
from hotspotd.admin.reports import dashboard_figures, purchases_per_hour
from hotspotd.daraja.msisdn import mask_msisdn
from hotspotd.ledger.unmatched import unresolved
from hotspotd.web.admin import actor, blueprint, client_address, page, parse_day
from hotspotd.web.context import web_context


def _show_phones() -> bool:
    """Full numbers only for the owner who asks (the reveal is audited)."""
    wanted = request.args.get("phones") == "full" and g.account.can_change
    if wanted:
        ctx = web_context()
        with ctx.db.write() as conn:
            record_audit(conn, at=ctx.now(), username=g.account.username,
                         action="phones.reveal", target=request.path,
                         source_ip=client_address())
    return wanted


@blueprint.get("/")
def dashboard() -> Any:
    ctx = web_context()
    now, offset = ctx.now(), ctx.admin.utc_offset_minutes
    figures = dashboard_figures(ctx.db, now, offset)
    days = figures["revenue_days"]
    hours = purchases_per_hour(ctx.db, now, offset)
    day_labels = [time.strftime("%d %b", time.gmtime(start + offset * 60)) for start, _ in days]
    revenue_chart = bar_chart([value for _, value in days], day_labels, every=5,
                              title="Revenue per day, last 30 days (KES)")
    hour_chart = bar_chart(hours, [f"{hour:02d}" for hour in range(24)], every=3,
                           title="Purchases per hour, today")
    return page("admin/dashboard.html", figures=figures,
                health=ctx.health(), revenue_chart=revenue_chart, hour_chart=hour_chart)


def _query_from_args() -> PaymentQuery:
    args = request.args
    return PaymentQuery(phone=args.get("phone", ""), receipt=args.get("receipt", ""),
                        code=args.get("code", ""), status=args.get("status", ""),
                        start=parse_day(args.get("from")),
                        end=parse_day(args.get("to"), end=True))


@blueprint.get("/payments")
def payments() -> Any:
    ctx = web_context()
    rows = search_payments(ctx.db, _query_from_args())
    return page("admin/payments.html", rows=rows, statuses=STATUSES, args=request.args,
                show_phone=phone_view(_show_phones()))


def phone_view(full: bool) -> Any:
    return (lambda phone: phone) if full else mask_msisdn


@blueprint.get("/payments/<int:payment_id>")
def payment(payment_id: int) -> Any:
    story = payment_story(web_context().db, payment_id)
    if story is None:
        abort(404, "No such payment.")
    return page("admin/payment.html", story=story, p=story["payment"],
                show_phone=phone_view(_show_phones()))


@blueprint.post("/payments/<int:payment_id>/query")
def requery(payment_id: int) -> Any:
    """"Check with M-Pesa now": one STK Query, its answer applied like the reconciler's."""
    ctx = web_context()
    settlement = ctx.purchases.query_payment(payment_id)
    with ctx.db.write() as conn:
        record_audit(conn, at=ctx.now(), username=g.account.username, action="payment.requery",
                     target=str(payment_id), source_ip=client_address(),
                     after={"outcome": settlement.outcome if settlement else "no answer"})
    if settlement is None:
        flash("M-Pesa has no final answer yet (or the payment was already settled).")
    else:
        flash(f"M-Pesa answered: payment {settlement.outcome}.")
    ctx.wake_router()
    return redirect(url_for("admin.payment", payment_id=payment_id), 303)


@blueprint.post("/payments/<int:payment_id>/refund")
def refund_flag(payment_id: int) -> Any:
    needed = request.form.get("needed") == "1"
    actions.set_refund_needed(web_context().db, actor(), payment_id=payment_id, needed=needed,
                              note=request.form.get("note", ""))
    flash("Marked: refund needed." if needed else "Refund mark removed.")
    return redirect(url_for("admin.payment", payment_id=payment_id), 303)


@blueprint.get("/unmatched")
def unmatched() -> Any:
    ctx = web_context()
    return page("admin/unmatched.html", rows=unresolved(ctx.db),
                plans=all_plans(ctx.db), show_phone=phone_view(_show_phones()))


@blueprint.post("/unmatched/<int:unmatched_id>/assign")
def assign(unmatched_id: int) -> Any:
    ctx = web_context()
    grant = actions.assign_unmatched(ctx.db, actor(), unmatched_id=unmatched_id,
                                     mac=request.form.get("mac", ""),
                                     plan_id=request.form.get("plan_id"))
    ctx.wake_router()
    flash(f"Assigned: {grant.mac} has time until "
          f"{exports.iso(grant.expires_at, ctx.admin.utc_offset_minutes)[:16]}.")
    return redirect(url_for("admin.unmatched"), 303)


@blueprint.get("/exports", endpoint="exports")
def exports_page() -> Any:
    return page("admin/exports.html")


def _range() -> tuple[float, float]:
    start = parse_day(request.args.get("from")) or 0.0
    end = parse_day(request.args.get("to"), end=True) or web_context().now() + 1
    return start, end


@blueprint.get("/exports/payments.csv")
def export_payments() -> Any:
    ctx = web_context()
    start, end = _range()
    body = exports.payments_csv(ctx.db, start, end, offset_minutes=ctx.admin.utc_offset_minutes,
                                full_phones=_show_phones())
    return _csv(body, "payments")


@blueprint.get("/exports/sessions.csv")
def export_sessions() -> Any:
    ctx = web_context()
    start, end = _range()
    return _csv(exports.sessions_csv(ctx.db, start, end,
                                     offset_minutes=ctx.admin.utc_offset_minutes), "sessions")


def _csv(body: Any, name: str) -> Response:
    days = "-".join(filter(None, (request.args.get("from"), request.args.get("to"))))
    filename = f"{name}{'-' + days if days else ''}.csv"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
