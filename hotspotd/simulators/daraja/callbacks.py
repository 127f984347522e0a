"""STK callbacks: the exact body Daraja POSTs to CallBackURL, and its delivery."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import requests

from .state import Prompt

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT = 5.0


def callback_body(prompt: Prompt) -> dict[str, Any]:
    """`{"Body": {"stkCallback": ...}}`: ResultCode a number; metadata only on success,
    with TransactionDate and PhoneNumber as numbers and Balance without a Value key."""
    callback: dict[str, Any] = {
        "MerchantRequestID": prompt.merchant_request_id,
        "CheckoutRequestID": prompt.checkout_request_id,
        "ResultCode": prompt.result_code,
        "ResultDesc": prompt.result_desc,
    }
    if prompt.result_code == 0:
        callback["CallbackMetadata"] = {"Item": [
            {"Name": "Amount", "Value": prompt.amount},
            {"Name": "MpesaReceiptNumber", "Value": prompt.receipt},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": prompt.transaction_date},
            {"Name": "PhoneNumber", "Value": int(prompt.phone)},
        ]}
    return {"Body": {"stkCallback": callback}}


def deliver(url: str, body: dict[str, Any], copies: int,
            record: Callable[[bool], None], session: requests.Session | None = None) -> None:
    """POST `body` to `url` `copies` times; failures are logged and recorded, never raised."""
    poster = session or requests
    checkout_id = body["Body"]["stkCallback"]["CheckoutRequestID"]
    for _ in range(copies):
        try:
            response = poster.post(url, json=body, timeout=CALLBACK_TIMEOUT)
            ok = response.status_code < 300
            if not ok:
                log.warning("callback for %s answered HTTP %s", checkout_id,
                            response.status_code)
        except requests.RequestException as exc:
            ok = False
            log.warning("callback for %s failed: %s", checkout_id,
                        exc.__class__.__name__)
        record(ok)
