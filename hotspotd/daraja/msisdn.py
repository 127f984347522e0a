"""Kenyan mobile numbers (MSISDNs) as M-Pesa wants them: `2547XXXXXXXX` or `2541XXXXXXXX`.

Customers type `0712 345 678`, `712345678`, `+254 712-345-678`, `0112345678`...; every
accepted form becomes the same 12 digits. Anything else is an input error with a message
the customer can act on, raised before anything is sent to Safaricom.
"""

from __future__ import annotations

import re

CUSTOMER_HINT = "Enter a Safaricom number like 0712 345 678"

# Separators people type inside a number; removed before matching.
_SEPARATORS = re.compile(r"[\s\-.()]")
# National number: 9 digits starting with 7 or 1 (0712345678 without the leading 0).
_FORMS = re.compile(
    r"""^(?:
        \+?254 0? (?P<intl>[17][0-9]{8})   # +254712345678, 254712345678, +2540712345678
      | 0 (?P<local>[17][0-9]{8})          # 0712345678, 0112345678
      | (?P<bare>[17][0-9]{8})             # 712345678
    )$""",
    re.VERBOSE | re.ASCII,
)
VALID_MSISDN = re.compile(r"^254[17][0-9]{8}$", re.ASCII)


class InvalidPhoneNumber(ValueError):
    """The text is not a Kenyan mobile number M-Pesa can prompt; str() is for the customer."""

    def __init__(self, text: str) -> None:
        super().__init__(CUSTOMER_HINT)
        self.text = text


def normalise_msisdn(text: str) -> str:
    """Return `text` as 12 digits `2547XXXXXXXX` / `2541XXXXXXXX`, or raise InvalidPhoneNumber."""
    if not isinstance(text, str):
        raise InvalidPhoneNumber(repr(text))
    compact = _SEPARATORS.sub("", text)
    match = _FORMS.fullmatch(compact)
    if match is None:
        raise InvalidPhoneNumber(text)
    national = match.group("intl") or match.group("local") or match.group("bare")
    return "254" + national


def is_valid_msisdn(text: str) -> bool:
    """True when `text` is already in the normalised 12-digit form."""
    return isinstance(text, str) and VALID_MSISDN.fullmatch(text) is not None


def mask_msisdn(msisdn: str | None) -> str:
    """The one phone mask (logs, audit, owner views, exports): the 5 digits before the last
    3 hidden, so `254712345678` -> `2547*****678`, `0712345678` -> `07*****678`; recognisable,
    not callable. None or "" -> ""; 8 characters or fewer are hidden whole."""
    if not msisdn:
        return ""
    text = str(msisdn)
    if len(text) <= 8:
        return "*" * len(text)
    return text[:-8] + "*****" + text[-3:]
