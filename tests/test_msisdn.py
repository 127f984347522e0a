import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotspotd.daraja.msisdn import (
    CUSTOMER_HINT,
    InvalidPhoneNumber,
    is_valid_msisdn,
    mask_msisdn,
    normalise_msisdn,
)


@pytest.mark.parametrize("text", [
    "0712345678", "712345678", "+254712345678", "254712345678", "0712 345 678",
    "+254 712-345-678", "254 712 345 678", " 0712-345-678 ", "+2540712345678",
])
def test_accepted_forms(text: str) -> None:
    assert normalise_msisdn(text) == "254712345678"


def test_01_numbers() -> None:
    assert normalise_msisdn("0112345678") == "254112345678"
    assert normalise_msisdn("+254 112 345 678") == "254112345678"


@pytest.mark.parametrize("text", [
    "", "   ", "0812345678", "071234567", "07123456789", "+1 712 345 678", "abc",
    "2547123456789", "0712 345 67a", "٠٧١٢٣٤٥٦٧٨", "255712345678", "++254712345678",
    "0712345678 0712345678", "00254712345678",
])
def test_rejected(text: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        normalise_msisdn(text)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == CUSTOMER_HINT == "Enter a Safaricom number like 0712 345 678"


def test_non_string_rejected() -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_msisdn(712345678)  # type: ignore[arg-type]


def test_mask() -> None:
    assert mask_msisdn("254712345678") == "2547*****678"
    assert mask_msisdn("0712345678") == "07*****678"
    assert mask_msisdn("1234") == "****"
    assert mask_msisdn(None) == mask_msisdn("") == ""


def _separated(digits: str, separators: list[str]) -> str:
    padded = separators + [""] * max(0, len(digits) - len(separators))
    return "".join(d + s for d, s in zip(digits, padded, strict=False))


national_numbers = st.builds(lambda first, rest: first + rest, st.sampled_from("17"),
                             st.text(string.digits, min_size=8, max_size=8))
forms = st.sampled_from([lambda n: "0" + n, lambda n: n, lambda n: "+254" + n,
                         lambda n: "254" + n, lambda n: "+254 " + n[:3] + "-" + n[3:]])


@given(national_numbers, forms, st.lists(st.sampled_from(["", "", " ", "-"]), min_size=14,
                                         max_size=14))
def test_every_form_gives_the_same_twelve_digits(national: str, form, seps) -> None:
    typed = _separated(form(national), seps)
    assert normalise_msisdn(typed) == "254" + national


@given(st.text(max_size=20))
def test_random_text_never_gives_an_invalid_msisdn(text: str) -> None:
    try:
        result = normalise_msisdn(text)
    except InvalidPhoneNumber:
        return
    assert is_valid_msisdn(result)
    assert len(result) == 12 and result.isascii() and result.isdigit()


@given(st.text(alphabet="0123456789 +-", max_size=18))
def test_digit_soup_never_gives_an_invalid_msisdn(text: str) -> None:
    try:
        result = normalise_msisdn(text)
    except InvalidPhoneNumber:
        return
    assert is_valid_msisdn(result)
