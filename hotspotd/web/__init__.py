"""The daemon's web side: captive portal, JSON API, M-Pesa callbacks and ops endpoints."""

from __future__ import annotations

from flask import Flask

from hotspotd.resources import data_dir
from hotspotd.web.context import WebContext

MAX_BODY_BYTES = 64 * 1024


def create_app(context: WebContext) -> Flask:
    """Build the Flask app; every dependency comes in through `context`."""
    portal = data_dir("portal")
    app = Flask(__name__, template_folder=str(portal / "templates"),
                static_folder=str(portal / "static"), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["hotspotd"] = context

    from hotspotd.web import api, callbacks, captive_api, live_status, ops, portal

    app.register_blueprint(api.blueprint)
    app.register_blueprint(callbacks.blueprint)
    app.register_blueprint(ops.blueprint)
    app.register_blueprint(portal.blueprint)  # issue 5: portal, live status, RFC 8908
    app.register_blueprint(live_status.blueprint)
    app.register_blueprint(captive_api.blueprint)
    from hotspotd.web import admin  # issue 6: the owner UI under /admin/

    app.register_blueprint(admin.blueprint)
    return app
