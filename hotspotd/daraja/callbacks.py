"""Parse Daraja's STK callback body strictly (shape per shared/reference/daraja.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hotspotd.daraja.result_codes import normalise_code


class MalformedCallback(ValueError):
    """The body is not an STK callback we can trust; it is acknowledged and changes nothing."""


@dataclass(frozen=True)
class StkCallback:
    merchant_request_id: str
    checkout_request_id: str
    result_code: str
    result_desc: str
    amount: int | None = None
    receipt: str | None = None
    phone: str | None = None
    transaction_date: str | None = None


def parse_stk_callback(body: Any) -> StkCallback:
    try:
        callback = body["Body"]["stkCallback"]
    except (TypeError, KeyError):
        raise MalformedCallback("no Body.stkCallback object") from None
    if not isinstance(callback, dict):
        raise MalformedCallback("Body.stkCallback is not an object")
    checkout_id = _text(callback, "CheckoutRequestID")
    merchant_id = _text(callback, "MerchantRequestID")
    try:
        code = normalise_code(callback.get("ResultCode"))
    except ValueError as exc:
        raise MalformedCallback(f"bad ResultCode: {exc}") from None
    desc = callback.get("ResultDesc")
    desc = desc if isinstance(desc, str) else ""
    if code != "0":
        return StkCallback(merchant_id, checkout_id, code, desc)
    items = _metadata_items(callback)
    amount = items.get("Amount")
    receipt = items.get("MpesaReceiptNumber")
    if not isinstance(receipt, str) or not receipt.isalnum() or not 6 <= len(receipt) <= 20:
        raise MalformedCallback("success without a valid MpesaReceiptNumber")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
        raise MalformedCallback("success without a valid Amount")
    phone = items.get("PhoneNumber")
    date = items.get("TransactionDate")
    return StkCallback(merchant_id, checkout_id, code, desc, amount=int(amount),
                       receipt=receipt.upper(), phone=str(phone) if phone is not None else None,
                       transaction_date=str(date) if date is not None else None)


def _text(callback: dict[str, Any], key: str) -> str:
    value = callback.get(key)
    if not isinstance(value, str) or not value or len(value) > 100:
        raise MalformedCallback(f"missing or invalid {key}")
    return value


def _metadata_items(callback: dict[str, Any]) -> dict[str, Any]:
    metadata = callback.get("CallbackMetadata")
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    if not isinstance(items, list):
        raise MalformedCallback("success without CallbackMetadata.Item")
    found: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            found[item["Name"]] = item.get("Value")  # Balance comes with no Value at all
    return found
