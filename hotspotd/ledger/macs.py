"""The customer's edge of `hotspotd.macs`: a MAC the customer (or the owner) sent, refused
with `InvalidMac` and words they can act on instead of a ValueError."""

from __future__ import annotations

from hotspotd.ledger.errors import InvalidMac
from hotspotd.macs import normalise_mac


def checked_mac(text: str) -> str:
    """`text` as `AA:BB:CC:DD:EE:FF` (see `hotspotd.macs.normalise_mac`), or InvalidMac."""
    try:
        return normalise_mac(text)
    except ValueError:
        if not isinstance(text, str):
            raise InvalidMac("The device address is missing; reconnect to the WiFi and "
                             "try again.") from None
        raise InvalidMac("The device address is not valid; reconnect to the WiFi and "
                         "try again.") from None
