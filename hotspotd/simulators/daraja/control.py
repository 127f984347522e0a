"""The simulator's control endpoint, for tests, demos and chaos runs (not part of Daraja).

- `GET /simulator/faults` → the current fault settings (see faults.py).
- `POST /simulator/faults` `{"name": value, ...}` → sets them; `{"reset": true}` first puts
  every fault back to its default. Unknown names or bad values → 400.
- `POST /simulator/invalidate-tokens` → every issued token answers 404.001.03 from now on.
- `GET /simulator/stats` → requests received per endpoint.
- `GET /simulator/prompts`, `GET /simulator/c2b` → STK prompts and C2B transactions seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify, request

if TYPE_CHECKING:
    from .simulator import DarajaSimulator

blueprint = Blueprint("simulator_control", __name__, url_prefix="/simulator")


def _sim() -> DarajaSimulator:
    return current_app.extensions["daraja_simulator"]


@blueprint.get("/faults")
def get_faults() -> Response:
    return jsonify(_sim().faults.as_dict())


@blueprint.post("/faults")
def set_faults() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify({"error": "send a JSON object of fault settings"}), 400
    faults = _sim().faults
    if body.pop("reset", False):
        faults.reset()
    try:
        return jsonify(faults.update(**body))
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400


@blueprint.post("/invalidate-tokens")
def invalidate_tokens() -> Response:
    _sim().faults.invalidate_tokens()
    return jsonify({"invalidated": True})


@blueprint.get("/stats")
def stats() -> Response:
    return jsonify(_sim().stats())


@blueprint.get("/prompts")
def prompts() -> Response:
    return jsonify(_sim().prompts())


@blueprint.get("/c2b")
def c2b() -> Response:
    return jsonify(_sim().c2b_transactions())
