"""Endpoints for whoever runs the appliance: `/healthz` (liveness, readiness with reasons)
and `/metrics` (Prometheus text format, names prefixed `hotspotd_`).

`/healthz` answers 200 when the daemon is live and ready, else 503. Anyone gets only that
(`{"ok", "live", "ready"}`); the management side also gets every check: `true`, a reason
(not ready), or `{"warning": reason}` (serving, but something needs the owner: the router
is unreachable, the disk is nearly full). `/healthz?live` only says whether the process and
its database answer (a liveness probe).

The management side is the owner UI's own listener (`[admin] host`), or, on a listener
shared with the portal, a request carrying `Authorization: Bearer <[admin] metrics_token>`.
`/metrics` is for the management side only: 401 without the token on a shared listener, 404
on the customers' listener when the management side has its own.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from hotspotd.web import SIDE_KEY
from hotspotd.web.context import web_context

blueprint = Blueprint("ops", __name__)


def _side() -> str:
    return str(current_app.extensions.get(SIDE_KEY, "shared"))


def management_side() -> bool:
    """Does this request come through the management side (listener or token)?"""
    side = _side()
    if side == "management":
        return True
    if side != "shared":
        return False
    token = web_context().admin.metrics_token
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and \
        hmac.compare_digest(value.strip().encode(), token.encode())


@blueprint.get("/healthz")
def healthz() -> Any:
    ctx = web_context()
    detail = management_side()
    try:
        ctx.db.query_one("SELECT 1")
    except Exception as exc:
        body: dict[str, Any] = {"ok": False, "live": False, "ready": False}
        if detail:
            body["reasons"] = [f"database: {exc}"]
        return jsonify(body), 503
    if "live" in request.args:
        return jsonify({"ok": True, "live": True})
    checks = ctx.health()
    ready = all(value is True or isinstance(value, dict) for value in checks.values())
    body = {"ok": ready, "live": True, "ready": ready}
    if detail:
        body["reasons"] = [f"{name}: {value}" for name, value in checks.items()
                           if isinstance(value, str)]
        body["warnings"] = [f"{name}: {value['warning']}" for name, value in checks.items()
                            if isinstance(value, dict) and "warning" in value]
        body["checks"] = checks
    return jsonify(body), 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Any:
    if _side() == "portal":
        abort(404)
    if not management_side():
        return Response("Metrics are for the management side: send Authorization: Bearer"
                        " <[admin] metrics_token>.\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="hotspotd"'})
    ctx = web_context()
    return Response(ctx.metrics(), status=200, mimetype=None,
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
