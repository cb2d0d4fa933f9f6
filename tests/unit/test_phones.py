"""Phone numbers: E.164 normalisation and masking for logs (DESIGN §4.1, §4.8)."""

from __future__ import annotations

import pytest

from app.patients.phones import InvalidPhone, mask, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(202) 555-0142", "+12025550142"),
        ("202-555-0142", "+12025550142"),
        ("202.555.0142", "+12025550142"),
        ("2025550142", "+12025550142"),
        ("1-202-555-0142", "+12025550142"),
        ("+1 202 555 0142", "+12025550142"),
        ("+12025550142", "+12025550142"),
        ("+44 20 7183 8750", "+442071838750"),
        ("+52 55 1234 5678", "+525512345678"),
    ],
)
def test_to_e164(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


def test_to_e164_with_another_default_region() -> None:
    assert to_e164("020 7183 8750", region="GB") == "+442071838750"


@pytest.mark.parametrize("raw", ["555-0142", "(202) 555-01425", "abc", "", "   ", "+1 000 000 0000", "12"])
def test_invalid_numbers_raise(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        to_e164(raw)


def test_invalid_phone_is_a_value_error() -> None:
    assert issubclass(InvalidPhone, ValueError)


@pytest.mark.parametrize("number", ["+12025550142", "+442071838750", "+525512345678", "+61412345678", "+3312345678"])
def test_mask_never_holds_the_full_number(number: str) -> None:
    masked = mask(number)
    digits = number.lstrip("+")
    assert number not in masked
    assert digits not in masked
    assert digits[1:] not in masked  # nor the national number
    assert masked.endswith(number[-4:])  # enough to tell numbers apart
    assert len(masked) == len(number)


@pytest.mark.parametrize("number", [None, ""])
def test_mask_of_nothing(number: str | None) -> None:
    assert mask(number) == "-"


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+12025550142", "+1******0142"),
        ("+3312345678", "+3*****5678"),
        ("123456789", "*******89"),
        ("12345", "****5"),
        ("911", "***"),
        ("+44", "***"),
        ("7", "*"),
        ("+1202555", "******55"),
    ],
)
def test_mask_table(number: str, masked: str) -> None:
    assert mask(number) == masked


@pytest.mark.parametrize("length", range(1, 20))
def test_mask_never_prints_a_number_of_any_length_whole(length: int) -> None:
    number = "".join(str((n * 7 + 3) % 10) for n in range(length))
    masked = mask(number)
    assert len(masked) == length
    assert masked != number
    assert "*" in masked
    # At most 4 characters are shown, and never more than a third of a short number.
    shown = sum(1 for ch in masked if ch != "*")
    assert shown <= (6 if length >= 10 else length // 3)
