"""The daemon's web side: captive portal, JSON API, M-Pesa callbacks and ops endpoints.

Two apps over one `WebContext`:
- `create_app`: the customers' listener (portal, API, callbacks, plain /healthz). With
  `[admin] host` unset it also carries the owner UI under /admin/, and /metrics and the
  detail of /healthz answer only with `[admin] metrics_token` (side "shared"). With the
  owner UI on a listener of its own, /admin/ and /metrics are 404 here (side "portal").
- `create_admin_app`: the management listener (`[admin] host`/`port`): the owner UI,
  /metrics and /healthz in full (side "management").
"""

from __future__ import annotations

from typing import Any

from flask import Flask, redirect
from flask.json.provider import DefaultJSONProvider
from werkzeug.wrappers import Response

from hotspotd.resources import data_dir
from hotspotd.web.context import WebContext

MAX_BODY_BYTES = 64 * 1024
SIDE_KEY = "hotspotd_side"  # app.extensions[...]: "shared", "portal" or "management"


class BoundedJSON(DefaultJSONProvider):
    """JSON whose nesting is past the parser's depth is bad JSON (a 400, or None for
    `get_json(silent=True)`), not a RecursionError that would answer 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _flask(context: WebContext, side: str) -> Flask:
    portal = data_dir("portal")
    app = Flask(__name__, template_folder=str(portal / "templates"),
                static_folder=str(portal / "static"), static_url_path="/static")
    app.json = BoundedJSON(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["hotspotd"] = context
    app.extensions[SIDE_KEY] = side
    return app


def create_app(context: WebContext) -> Flask:
    """The customers' listener; every dependency comes in through `context`."""
    own_listener = context.admin.own_listener
    app = _flask(context, "portal" if own_listener else "shared")

    from hotspotd.web import api, callbacks, captive_api, live_status, ops, portal

    app.register_blueprint(api.blueprint)
    app.register_blueprint(callbacks.blueprint)
    app.register_blueprint(ops.blueprint)
    app.register_blueprint(portal.blueprint)  # issue 5: portal, live status, RFC 8908
    app.register_blueprint(live_status.blueprint)
    app.register_blueprint(captive_api.blueprint)
    if not own_listener:
        from hotspotd.web import admin  # issue 6: the owner UI under /admin/

        app.register_blueprint(admin.blueprint)
    return app


def create_admin_app(context: WebContext) -> Flask:
    """The management listener: the owner UI, /metrics, /healthz with its detail."""
    app = _flask(context, "management")

    from hotspotd.web import admin, ops

    app.register_blueprint(ops.blueprint)
    app.register_blueprint(admin.blueprint)

    @app.get("/")
    def _root() -> Response:
        return redirect("/admin/")

    return app
