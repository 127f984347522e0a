"""One MAC parser (`hotspotd.macs`) for every side, and the customer's edge of it."""

from __future__ import annotations

import pytest

from hotspotd.ledger.errors import InvalidMac
from hotspotd.ledger.macs import checked_mac
from hotspotd.macs import looks_like_mac, normalise_mac

GOOD = ["aa-bb-cc-dd-ee-ff", "aabb.ccdd.eeff", "AABBCCDDEEFF", "aa:bb:cc:dd:ee:ff",
        "  AA:BB:CC:DD:EE:FF  ", "Aa-bB-cC-Dd-eE-Ff", "AA:BB:CC:DD:EE:FF"]
BAD = ["", "AA:BB:CC:DD:EE", "AA:BB:CC:DD:EE:FF:00", "GG:BB:CC:DD:EE:FF", "not a mac",
       "AABBCCDDEEF", "0x:aa:bb:cc:dd:ee", "１２３４５６７８９０ab",
       "AA:BB:CC:DD:EE:ﬀ",  # "ﬀ".upper() is "FF": checked before upper-casing
       "AA_BB_CC_DD_EE_FF"]


@pytest.mark.parametrize("text", GOOD)
def test_mac_forms_normalise_to_upper_colon(text: str) -> None:
    assert normalise_mac(text) == "AA:BB:CC:DD:EE:FF"
    assert checked_mac(text) == "AA:BB:CC:DD:EE:FF"
    assert looks_like_mac(text)


@pytest.mark.parametrize("text", BAD)
def test_bad_macs_raise_value_error_and_invalid_mac_at_the_customer_edge(text: str) -> None:
    with pytest.raises(ValueError, match="invalid MAC address"):
        normalise_mac(text)
    with pytest.raises(InvalidMac, match="not valid") as refused:
        checked_mac(text)
    assert refused.value.code == "invalid_mac" and refused.value.status == 400
    assert not looks_like_mac(text)


def test_missing_mac_is_a_value_error_and_invalid_mac_says_missing() -> None:
    with pytest.raises(ValueError):
        normalise_mac(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidMac, match="missing"):
        checked_mac(None)  # type: ignore[arg-type]
    assert not looks_like_mac(None)  # type: ignore[arg-type]
