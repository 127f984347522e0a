"""Daraja result codes and the payment status each one ends in.

The table follows ../shared/reference/daraja.md. Codes arrive as strings or numbers
("0", 0, "1032", "SFC_IC0003"); `normalise_code` gives the one string form we store.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
EXPIRED = "expired"


@dataclass(frozen=True)
class ResultCode:
    code: str
    status: str
    meaning: str


_TABLE = [
    ResultCode("0", COMPLETED, "The payment was received"),
    ResultCode("1", FAILED, "Insufficient M-Pesa balance"),
    ResultCode("2", FAILED, "Amount below the M-Pesa minimum"),
    ResultCode("3", FAILED, "Amount above the M-Pesa maximum"),
    ResultCode("4", FAILED, "The payment would exceed the daily limit"),
    ResultCode("8", FAILED, "The payment would exceed the business's maximum balance"),
    ResultCode("17", FAILED, "Same amount paid moments ago; wait two minutes"),
    ResultCode("26", FAILED, "M-Pesa is busy"),
    ResultCode("1001", FAILED, "Another M-Pesa transaction is in progress on this phone"),
    ResultCode("1019", EXPIRED, "The payment request expired"),
    ResultCode("1025", FAILED, "The prompt could not be sent"),
    ResultCode("1032", CANCELLED, "Cancelled on the phone"),
    ResultCode("1036", FAILED, "The prompt could not be delivered"),
    ResultCode("1037", EXPIRED, "The phone could not be reached or did not answer in time"),
    ResultCode("2001", FAILED, "Wrong M-Pesa PIN"),
    ResultCode("2028", FAILED, "The business's M-Pesa settings are wrong"),
    ResultCode("SFC_IC0003", FAILED, "The business's M-Pesa settings are wrong"),
    ResultCode("8006", FAILED, "The M-Pesa security credential is locked"),
    ResultCode("9999", FAILED, "The prompt could not be sent"),
]
RESULT_CODES: dict[str, ResultCode] = {entry.code: entry for entry in _TABLE}


def normalise_code(code: object) -> str:
    """Return a result code as the string we store: `0`, `"0"` and `0.0` all give "0"."""
    if isinstance(code, bool) or code is None:
        raise ValueError(f"not a result code: {code!r}")
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    text = str(code).strip()
    if not text:
        raise ValueError("empty result code")
    if text.lstrip("-").isdigit():
        return str(int(text))
    return text


def status_for(code: object) -> str:
    """Map a Daraja result code to the final payment status (unknown codes are failures)."""
    entry = RESULT_CODES.get(normalise_code(code))
    return entry.status if entry else FAILED
