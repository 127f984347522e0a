"""M-Pesa callbacks, under a secret path token. Daraja always gets a quick acknowledgement."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request

from hotspotd.daraja.callbacks import MalformedCallback, parse_stk_callback
from hotspotd.web.context import web_context

log = logging.getLogger(__name__)

blueprint = Blueprint("callbacks", __name__, url_prefix="/callbacks")

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@blueprint.post("/<token>/stk")
def stk_callback(token: str) -> Any:
    ctx = web_context()
    if not hmac.compare_digest(token.encode(), ctx.callback_token.encode()):
        log.warning("STK callback with a wrong path token from %s", request.remote_addr)
        abort(404)
    try:
        callback = parse_stk_callback(request.get_json(silent=True))
    except MalformedCallback as exc:
        log.warning("malformed STK callback from %s ignored: %s", request.remote_addr, exc)
        return jsonify(ACCEPTED)
    settlement = ctx.purchases.handle_stk_callback(callback)
    log.info("STK callback %s (code %s): %s", callback.checkout_request_id,
             callback.result_code, settlement.outcome)
    return jsonify(ACCEPTED)
