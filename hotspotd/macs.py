"""MAC addresses in one form: upper case, colon separated (as RouterOS prints them).

The one parser every side uses (router, simulators, access, web). It raises ValueError;
where a customer sees the refusal, `hotspotd.ledger.macs.device_mac` turns it into
`InvalidMac` with words for them.
"""

from __future__ import annotations

import re

_CANONICAL = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}", re.ASCII)
_SEPARATORS = re.compile(r"[:\-.\s]")
_HEX_DIGITS = frozenset("0123456789ABCDEFabcdef")


def normalise_mac(text: str) -> str:
    """`aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`, `AABBCCDDEEFF` → `AA:BB:CC:DD:EE:FF`;
    anything else (or not a string) raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"MAC address is not text: {text!r}")
    if _CANONICAL.fullmatch(text):
        return text
    digits = _SEPARATORS.sub("", text.strip())
    if len(digits) != 12 or not _HEX_DIGITS.issuperset(digits):
        raise ValueError(f"invalid MAC address: {text!r}")
    digits = digits.upper()  # after the check: "ﬀ".upper() is "FF"
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def looks_like_mac(text: str) -> bool:
    try:
        normalise_mac(text)
    except ValueError:
        return False
    return True
