"""MAC addresses in one form: upper case, colon separated (as MikroTik sends them)."""

from __future__ import annotations

import re

from hotspotd.billing.errors import InvalidMac

_HEX = re.compile(r"[0-9A-Fa-f]")
_SEPARATORS = re.compile(r"[:\-.\s]")


def normalise_mac(text: str) -> str:
    """`aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`, `AABBCCDDEEFF` → `AA:BB:CC:DD:EE:FF`."""
    if not isinstance(text, str):
        raise InvalidMac("The device address is missing; reconnect to the WiFi and try again.")
    digits = _SEPARATORS.sub("", text.strip())
    if len(digits) != 12 or not all(_HEX.fullmatch(c) for c in digits):
        raise InvalidMac("The device address is not valid; reconnect to the WiFi and try again.")
    digits = digits.upper()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def looks_like_mac(text: str) -> bool:
    try:
        normalise_mac(text)
    except InvalidMac:
        return False
    return True
