"""M-Pesa callbacks, under a secret path token per channel. Daraja always gets a quick
acknowledgement in the shape its protocol wants; nothing it sends can break the handler.

- `POST /callbacks/<token>/stk`: STK callback (trusted source: applied; otherwise STK
  Query confirms it in the background).
- `POST /callbacks/<token>/c2b/validation`: accept, or refuse with C2B00012 (unknown
  account) / C2B00013 (amount below the cheapest plan) when validation is on.
- `POST /callbacks/<token>/c2b/confirmation`: record the money (grant, settle or hold);
  from a source outside the allow-list only once Pull Transactions lists its TransID
  (`mpesa.c2b_verify`).

A wrong token answers 404; a source outside the allow-list answers 403 and is stored.
The callback settings (`WebContext.mpesa`: intake, source policy, channel tokens, C2B
verifier) are required: an app built without them refuses to start, rather than take every
source as trusted.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, NamedTuple

from flask import Blueprint, abort, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import RequestEntityTooLarge

from hotspotd.daraja.callbacks import MalformedCallback, parse_stk_callback
from hotspotd.mpesa.c2b import MalformedC2B, parse_c2b, record_c2b, validate_c2b
from hotspotd.mpesa.callback_intake import CallbackSettings
from hotspotd.mpesa.rejections import record_rejection
from hotspotd.web.context import web_context

log = logging.getLogger(__name__)

blueprint = Blueprint("callbacks", __name__, url_prefix="/callbacks")

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
C2B_ACCEPTED = {"ResultCode": "0", "ResultDesc": "Accepted"}
C2B_CONFIRMED = {"ResultCode": 0, "ResultDesc": "Success"}


class MissingCallbackSettings(RuntimeError):
    """The web app was built without the M-Pesa callback settings (a wiring error)."""


@blueprint.record_once
def _require_settings(state: BlueprintSetupState) -> None:
    """Registering the callbacks without their settings is a start-up error."""
    context = state.app.extensions.get("hotspotd")
    if context is None or getattr(context, "mpesa", None) is None:
        raise MissingCallbackSettings("the M-Pesa callbacks need WebContext.mpesa (source"
                                      " check, intake, channel tokens); none was given")


def _settings() -> CallbackSettings:
    return web_context().mpesa


def _channel_for(token: str) -> str:
    """The channel whose secret path token this is; 404 otherwise (compared in constant
    time against every token)."""
    ctx = web_context()
    tokens = dict(_settings().channel_tokens)
    tokens.setdefault(ctx.callback_token, "default")
    found = None
    for known, channel in tokens.items():
        if known and hmac.compare_digest(token.encode(), known.encode()):
            found = channel
    if found is None:
        log.warning("callback with a wrong path token from %s", request.remote_addr)
        abort(404)
    return found


def _source(kind: str, channel: str) -> tuple[str, bool]:
    """(source address, trusted?); 403 (stored) for a source outside the allow-list."""
    settings = _settings()
    source = settings.sources.source_of(request.remote_addr,
                                        request.headers.get("X-Forwarded-For"))
    if not settings.sources.allowed(source):
        _reject(kind, channel, source, "source address not in the allow-list")
        abort(403)
    return source, settings.sources.trusted(source)


def _body(kind: str, channel: str, source: str) -> Any:
    """The JSON body, or None (stored as rejected) when it is too big or not JSON."""
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        _reject(kind, channel, source, "body too large")
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the parser
        _reject(kind, channel, source, "body is not JSON", raw[:200].decode(errors="replace"))
        return None


class Arrival(NamedTuple):
    """Who sent a callback, on which channel, and its JSON body (None: refused, stored)."""

    channel: str
    source: str
    trusted: bool
    body: Any


def _arrival(kind: str, token: str) -> Arrival:
    """Every callback endpoint's first steps: channel from the path token (404 if unknown),
    source check (403 outside the allow-list), body parsed as JSON."""
    channel = _channel_for(token)
    source, trusted = _source(kind, channel)
    return Arrival(channel, source, trusted, _body(kind, channel, source))


def _reject(kind: str, channel: str, source: str, reason: str, body: Any = None) -> None:
    ctx = web_context()
    record_rejection(ctx.db, kind=kind, reason=reason, now=ctx.now(), channel=channel,
                     source=source, body=body)


@blueprint.post("/<token>/stk")
def stk_callback(token: str) -> Any:
    channel, source, trusted, body = _arrival("stk", token)
    if body is None:
        return jsonify(ACCEPTED)
    try:
        callback = parse_stk_callback(body)
    except MalformedCallback as exc:
        _reject("stk", channel, source, f"malformed: {exc}", body)
        return jsonify(ACCEPTED)
    outcome = _settings().intake.stk(callback, trusted=trusted, source=source,
                                     channel=channel)
    log.info("STK callback %s (code %s) from %s: %s", callback.checkout_request_id,
             callback.result_code, source, outcome)
    return jsonify(ACCEPTED)


@blueprint.post("/<token>/c2b/validation")
def c2b_validation(token: str) -> Any:
    channel, source, _, body = _arrival("c2b-validation", token)
    settings = _settings()
    try:
        payment = parse_c2b(body)
    except MalformedC2B as exc:
        _reject("c2b-validation", channel, source, f"malformed: {exc}", body)
        return jsonify({"ResultCode": "C2B00016", "ResultDesc": "Rejected"})
    if not settings.c2b_validation:
        return jsonify(C2B_ACCEPTED)
    code, reason = validate_c2b(web_context().db.connection(), payment)
    if code != "0":
        log.info("C2B validation %s refused: %s %s", payment.trans_id, code, reason)
        return jsonify({"ResultCode": code, "ResultDesc": "Rejected"})
    return jsonify(C2B_ACCEPTED)


@blueprint.post("/<token>/c2b/confirmation")
def c2b_confirmation(token: str) -> Any:
    channel, source, trusted, body = _arrival("c2b-confirmation", token)
    if body is None:
        return jsonify(C2B_CONFIRMED)
    try:
        payment = parse_c2b(body)
    except MalformedC2B as exc:
        _reject("c2b-confirmation", channel, source, f"malformed: {exc}", body)
        return jsonify(C2B_CONFIRMED)
    ctx = web_context()
    settings = _settings()
    if not trusted:
        held = settings.c2b_verifier.hold(payment, channel=channel, source=source)
        log.info("C2B confirmation %s from %s: %s", payment.trans_id, source, held)
        return jsonify(C2B_CONFIRMED)
    outcome = record_c2b(ctx.db, payment, source="confirmation", now=ctx.now(),
                         channel=channel)
    if outcome.granted:
        settings.on_grant()
    return jsonify(C2B_CONFIRMED)
