"""Endpoints for whoever runs the appliance: liveness and readiness."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from hotspotd.web.context import web_context

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    ctx = web_context()
    ctx.db.query_one("SELECT 1")
    checks = ctx.health()
    ok = all(value is True for value in checks.values())
    return jsonify({"ok": ok, "checks": checks}), 200 if ok else 503
