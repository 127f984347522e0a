"""Checks the simulator applies to STK push and query requests, with Daraja's error codes."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

EAT = timezone(timedelta(hours=3), "EAT")
TIMESTAMP_WINDOW = timedelta(hours=1)
MSISDN = re.compile(r"254[17][0-9]{8}", re.ASCII)
PAYBILL = "CustomerPayBillOnline"
TILL = "CustomerBuyGoodsOnline"
PUSH_FIELDS = ("BusinessShortCode", "Password", "Timestamp", "TransactionType", "Amount",
               "PartyA", "PartyB", "PhoneNumber", "CallBackURL", "AccountReference",
               "TransactionDesc")
QUERY_FIELDS = ("BusinessShortCode", "Password", "Timestamp", "CheckoutRequestID")

INVALID_FIELD = "400.002.02"
WRONG_AUTH_TYPE = "400.008.01"
WRONG_GRANT_TYPE = "400.008.02"
INVALID_TOKEN = "404.001.03"
MERCHANT_ERROR = "500.001.1001"  # also "subscriber locked" and "being processed"
SPIKE_ARREST = "500.003.02"
QUOTA = "500.003.03"


class ApiError(Exception):
    """A Daraja error answer; the HTTP status is the code's first part (404.001.03 -> 404)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.http_status = int(code.split(".")[0])


def invalid(field: str) -> ApiError:
    return ApiError(INVALID_FIELD, f"Bad Request - Invalid {field}")


@dataclass(frozen=True)
class Merchant:
    shortcode: str
    passkey: str
    till_number: str


def require_fields(body: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(INVALID_FIELD, "Bad Request - Invalid JSON body")
    for field in fields:
        if body.get(field) in (None, ""):
            raise invalid(field)
    return body


def check_security(body: dict[str, Any], merchant: Merchant, now: datetime) -> None:
    """BusinessShortCode, Timestamp (EAT, within an hour of now) and Password."""
    shortcode = str(body["BusinessShortCode"])
    if not shortcode.isdigit():
        raise invalid("BusinessShortCode")
    if shortcode != merchant.shortcode:
        raise ApiError(MERCHANT_ERROR, "Merchant does not exist")
    timestamp = str(body["Timestamp"])
    try:
        moment = datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=EAT)
    except ValueError:
        raise invalid("Timestamp") from None
    if len(timestamp) != 14 or abs(moment - now) > TIMESTAMP_WINDOW:
        raise invalid("Timestamp")
    expected = base64.b64encode(f"{shortcode}{merchant.passkey}{timestamp}".encode()).decode()
    if not secrets.compare_digest(str(body["Password"]), expected):
        raise ApiError(MERCHANT_ERROR, "Wrong credentials")


def parse_push(body: Any, merchant: Merchant, now: datetime) -> dict[str, Any]:
    """Validate an STK push body; return the fields of the prompt it creates."""
    body = require_fields(body, PUSH_FIELDS)
    check_security(body, merchant, now)
    transaction_type = body["TransactionType"]
    if transaction_type not in (PAYBILL, TILL):
        raise invalid("TransactionType")
    phone = _msisdn(body, "PhoneNumber")
    _msisdn(body, "PartyA")
    party_b = str(body["PartyB"])
    expected_b = merchant.shortcode if transaction_type == PAYBILL else merchant.till_number
    return {
        "phone": phone,
        "amount": _amount(body["Amount"]),
        "party_b": party_b,
        "transaction_type": transaction_type,
        "account_reference": _text(body, "AccountReference", 12),
        "description": _text(body, "TransactionDesc", 13),
        "callback_url": _callback_url(body["CallBackURL"]),
        "wrong_party": not expected_b or party_b != expected_b,
    }


def parse_query(body: Any, merchant: Merchant, now: datetime) -> str:
    """Validate an STK query body; return its CheckoutRequestID."""
    body = require_fields(body, QUERY_FIELDS)
    check_security(body, merchant, now)
    return str(body["CheckoutRequestID"])


def _msisdn(body: dict[str, Any], field: str) -> str:
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(field)
    if not MSISDN.fullmatch(str(value)):
        raise invalid(field)
    return str(value)


def _amount(value: Any) -> int:
    if isinstance(value, bool):
        raise invalid("Amount")
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0:
        raise invalid("Amount")
    return value


def _text(body: dict[str, Any], field: str, limit: int) -> str:
    value = body[field]
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(field)
    return value


def _callback_url(value: Any) -> str:
    parsed = urlparse(str(value))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise invalid("CallBackURL")
    return str(value)
