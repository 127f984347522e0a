"""The simulator's Flask app: Daraja's URLs plus the phone page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, jsonify, redirect, request

from .control import blueprint as control_blueprint
from .phone_page import render_phone_page
from .state import PromptNotPending, UnknownPrompt
from .validation import ApiError

if TYPE_CHECKING:
    from .simulator import DarajaSimulator


def create_app(sim: DarajaSimulator) -> Flask:
    app = Flask("hotspotd.simulators.daraja")
    app.json.sort_keys = False  # type: ignore[attr-defined]

    def api_error(err: ApiError) -> tuple[Response, int]:
        body = {"requestId": sim.new_request_id(), "errorCode": err.code,
                "errorMessage": err.message}
        return jsonify(body), err.http_status

    app.register_error_handler(ApiError, api_error)
    app.extensions["daraja_simulator"] = sim
    app.register_blueprint(control_blueprint)

    @app.get("/oauth/v1/generate")
    def oauth() -> Response:
        return jsonify(sim.issue_token(request.headers.get("Authorization"),
                                       request.args.get("grant_type")))

    @app.post("/mpesa/stkpush/v1/processrequest")
    def stk_push() -> Response:
        return jsonify(sim.handle_push(request.headers.get("Authorization"),
                                       request.get_json(force=True, silent=True)))

    @app.post("/mpesa/stkpushquery/v1/query")
    def stk_query() -> Response:
        return jsonify(sim.handle_query(request.headers.get("Authorization"),
                                        request.get_json(force=True, silent=True)))

    _add_c2b_routes(app, sim)

    @app.get("/")
    def index() -> Response:
        return redirect("/phone")  # type: ignore[return-value]

    @app.get("/phone")
    def phone() -> Response:
        return Response(render_phone_page(sim.prompts()), mimetype="text/html")

    @app.get("/phone.json")
    def phone_json() -> Response:
        return jsonify(sim.prompts())

    @app.post("/phone/<checkout_id>/<outcome>")
    def answer(checkout_id: str, outcome: str) -> Response | tuple[str, int]:
        try:
            sim.resolve(checkout_id, outcome)
        except UnknownPrompt:
            return "No such prompt", 404
        except PromptNotPending:
            pass  # answered already (double click, or it answered by itself)
        except ValueError:
            return "Unknown outcome", 400
        return redirect("/phone", code=303)  # type: ignore[return-value]

    return app


def _add_c2b_routes(app: Flask, sim: DarajaSimulator) -> None:
    """C2B register/simulate and Pull Transactions register/query."""

    @app.post("/mpesa/c2b/v1/registerurl")
    @app.post("/mpesa/c2b/v2/registerurl")
    def c2b_register() -> Response:
        return jsonify(sim.handle_c2b_register(request.headers.get("Authorization"),
                                               request.get_json(force=True, silent=True)))

    @app.post("/mpesa/c2b/v1/simulate")
    @app.post("/mpesa/c2b/v2/simulate")
    def c2b_simulate() -> Response:
        return jsonify(sim.handle_c2b_simulate(request.headers.get("Authorization"),
                                               request.get_json(force=True, silent=True)))

    @app.post("/pulltransactions/v1/register")
    def pull_register() -> Response:
        return jsonify(sim.handle_pull_register(request.headers.get("Authorization"),
                                                request.get_json(force=True, silent=True)))

    @app.route("/pulltransactions/v1/query", methods=["GET", "POST"])
    def pull_query() -> Response:
        body = request.get_json(force=True, silent=True)
        if body is None:
            body = request.args.to_dict()
        return jsonify(sim.handle_pull_query(request.headers.get("Authorization"), body))
