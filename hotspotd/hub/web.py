"""The hub's web app: the appliances' API (/v1/) and the operator's owner UI, one blueprint each.

`create_hub_app(store, config)` wires them; errors are typed (BatchRefused) and turned into
a status and a JSON reason here, at the edge. The owner UI is server-rendered with a
session cookie (signed with a key kept in the hub's database), a CSRF token on every form,
argon2id passwords and a per-address limit on wrong passwords.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from hotspotd.hub import claims, dashboard
from hotspotd.hub.config import HubConfig
from hotspotd.hub.enrolment import enrol
from hotspotd.hub.ingest import ingest
from hotspotd.hub.owners import check_login
from hotspotd.hub.pgstore import HubStore, HubStoreError
from hotspotd.hub.protocol import (
    CLAIM_PATH,
    CLAIMS_PATH,
    MAX_BODY_BYTES,
    TIME_CLAIM_PATH,
    TIME_CLAIMS_PATH,
    BatchRefused,
)

log = logging.getLogger(__name__)

api = Blueprint("api", __name__)
owner = Blueprint("owner", __name__)


def _hub() -> dict[str, Any]:
    return current_app.extensions["hub"]


# --- the appliances' API ------------------------------------------------------------------


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


@api.post("/v1/batches")
def batches() -> Any:
    hub = _hub()
    try:
        answer = ingest(hub["store"], _bearer(), request.get_json(silent=True), hub["now"])
    except BatchRefused as refused:
        log.warning("batch refused (%s): %s", refused.code, refused.reason)
        return jsonify(refused.as_json()), refused.status
    return jsonify(answer)


def _answered(call: Callable[[], dict[str, Any]], what: str) -> Any:
    """The JSON answer of `call`, or its refusal as a status and a reason."""
    try:
        return jsonify(call())
    except BatchRefused as refused:
        log.info("%s refused (%s): %s", what, refused.code, refused.reason)
        return jsonify(refused.as_json()), refused.status


@api.post(CLAIM_PATH)
def voucher_claim() -> Any:
    hub = _hub()
    return _answered(lambda: claims.claim(hub["store"], _bearer(),
                                          request.get_json(silent=True), hub["now"]),
                     "voucher claim")


@api.get(CLAIMS_PATH)
def voucher_claims() -> Any:
    return _answered(lambda: claims.claims_against(_hub()["store"], _bearer(),
                                                   request.args.get("after")), "claims")


@api.post(TIME_CLAIM_PATH)
def time_claim() -> Any:
    hub = _hub()
    return _answered(lambda: claims.claim_time(hub["store"], _bearer(),
                                               request.get_json(silent=True), hub["now"]),
                     "time claim")


@api.get(TIME_CLAIMS_PATH)
def time_claims() -> Any:
    return _answered(lambda: claims.time_claims_against(_hub()["store"], _bearer(),
                                                        request.args.get("after")),
                     "time claims")


@api.post("/v1/enroll")
def enroll() -> Any:
    hub = _hub()
    body = request.get_json(silent=True)
    try:
        answer = enrol(hub["store"], body.get("token") if isinstance(body, dict) else None,
                       hub["now"])
    except BatchRefused as refused:
        log.warning("enrolment refused (%s): %s", refused.code, refused.reason)
        return jsonify(refused.as_json()), refused.status
    return jsonify(answer)


@api.get("/healthz")
def healthz() -> Any:
    with _hub()["store"].connection() as conn:
        conn.execute("SELECT 1")
    return jsonify({"ok": True})


# --- the owner UI ---------------------------------------------------------------------------


@owner.before_request
def require_login() -> Any:
    if request.endpoint in ("owner.login", "owner.login_post"):
        return None
    hub = _hub()
    logged_in = session.get("owner")
    if not logged_in or hub["now"]() - session.get("at", 0) > hub["config"].session_hours * 3600:
        session.clear()
        return redirect(url_for("owner.login"))
    g.owner = logged_in
    return None


@owner.before_request
def check_csrf() -> None:
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
            abort(400, "the form expired; reload the page and try again")


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


@owner.get("/login")
def login() -> Any:
    return render_template("login.html", csrf=_csrf(), error=None)


@owner.post("/login")
def login_post() -> Any:
    hub = _hub()
    address = request.remote_addr or "?"
    if not hub["attempts"].allowed(address):
        return render_template("login.html", csrf=_csrf(),
                               error="Too many wrong passwords; wait 15 minutes."), 429
    account = check_login(hub["store"], request.form.get("username", ""),
                          request.form.get("password", ""), hub["now"])
    if account is None:
        hub["attempts"].failed(address)
        log.warning("owner UI: wrong password for %r from %s",
                    request.form.get("username", "")[:40], address)
        return render_template("login.html", csrf=_csrf(),
                               error="Wrong username or password."), 401
    session.clear()
    session.update(owner=account, at=hub["now"](), csrf=secrets.token_urlsafe(24))
    return redirect(url_for("owner.overview"))


@owner.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("owner.login"))


@owner.get("/")
def overview() -> Any:
    hub, config = _hub(), _hub()["config"]
    rows = dashboard.venues(hub["store"], hub["now"](), config.utc_offset_minutes,
                            config.stale_after_seconds)
    return render_template("overview.html", venues=rows, totals=dashboard.totals(rows),
                           when=_when, csrf=_csrf())


@owner.get("/venues/<int:venue_id>")
def venue(venue_id: int) -> Any:
    hub, config = _hub(), _hub()["config"]
    rows = dashboard.venues(hub["store"], hub["now"](), config.utc_offset_minutes,
                            config.stale_after_seconds, venue_id)
    if not rows:
        abort(404)
    return render_template("venue.html", venue=rows[0], when=_when, csrf=_csrf(),
                           payments=dashboard.recent_payments(hub["store"], venue_id),
                           roaming=dashboard.roaming(hub["store"], venue_id))


def _when(epoch: float | None) -> str:
    return dashboard.when(epoch, _hub()["config"].utc_offset_minutes)


class LoginAttempts:
    """Wrong passwords per source address in a sliding window (in memory: a restart forgets,
    which costs an attacker nothing he could not get by waiting)."""

    def __init__(self, limit: int, window: float, now: Callable[[], float]) -> None:
        self.limit, self.window, self.now = limit, window, now
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allowed(self, address: str) -> bool:
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if self.now() - t < self.window]
            self._failures[address] = recent
            return len(recent) < self.limit

    def failed(self, address: str) -> None:
        with self._lock:
            self._failures.setdefault(address, []).append(self.now())


def create_hub_app(store: HubStore, config: HubConfig, *, secure_cookies: bool,
                   now: Callable[[], float] = time.time) -> Flask:
    """The hub's Flask app over `store` (already opened: migrated)."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=session_key(store, now), MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=secure_cookies, SESSION_COOKIE_NAME="hub_session")
    app.extensions["hub"] = {"store": store, "config": config, "now": now,
                             "attempts": LoginAttempts(config.login_attempts, 900, now)}
    app.register_blueprint(api)
    app.register_blueprint(owner)

    @app.errorhandler(HubStoreError)
    def database_down(exc: HubStoreError) -> Any:
        log.error("hub database: %s", exc)
        return jsonify({"error": "database_unavailable", "reason": str(exc)}), 503

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Any:
        return jsonify({"error": "too_large", "reason": f"at most {MAX_BODY_BYTES} bytes"}), 413

    return app


def session_key(store: HubStore, now: Callable[[], float]) -> str:
    """The cookie-signing key: made once, kept in the hub's database (restarts keep logins)."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO hub_secrets (name, value, created_at) VALUES"
                     " ('session_key', %s, %s) ON CONFLICT DO NOTHING",
                     (secrets.token_hex(32), now()))
        return conn.execute("SELECT value FROM hub_secrets WHERE name = 'session_key'"
                            ).fetchone()["value"]
