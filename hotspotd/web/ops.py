"""Endpoints for whoever runs the appliance: `/healthz` (liveness, readiness with reasons)
and `/metrics` (Prometheus text format, names prefixed `hotspotd_`).

`/healthz` answers 200 when the daemon is live and ready, else 503, with every check:
`true`, a reason (not ready), or `{"warning": reason}` (serving, but something needs the
owner: the router is unreachable, the disk is nearly full). `/healthz?live` only says
whether the process and its database answer (a liveness probe).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from hotspotd.web.context import web_context

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    ctx = web_context()
    try:
        ctx.db.query_one("SELECT 1")
    except Exception as exc:
        return jsonify({"ok": False, "live": False, "ready": False,
                        "reasons": [f"database: {exc}"]}), 503
    if "live" in request.args:
        return jsonify({"ok": True, "live": True})
    checks = ctx.health()
    reasons = [f"{name}: {value}" for name, value in checks.items() if isinstance(value, str)]
    warnings = [f"{name}: {value['warning']}" for name, value in checks.items()
                if isinstance(value, dict) and "warning" in value]
    ready = all(value is True or isinstance(value, dict) for value in checks.values())
    body = {"ok": ready, "live": True, "ready": ready, "reasons": reasons,
            "warnings": warnings, "checks": checks}
    return jsonify(body), 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Any:
    ctx = web_context()
    return Response(ctx.metrics(), status=200, mimetype=None,
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
