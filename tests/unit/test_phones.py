"""Phone numbers: E.164 normalisation and masking for logs (DESIGN §4.1, §4.8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.patients.phones import _PLAIN_NANP, InvalidPhone, _to_e164_parsed, mask, to_e164


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


# The fast path for plain US/Canada numbers gives exactly what phonenumbers gives (issue 10 Scale: the bulk
# import checks 100,000 numbers). The reference is the full path on every input; both the number and the
# error must agree.

_digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
_sep = st.sampled_from(["", " ", "-", ".", "  ", "/"])
_prefix = st.sampled_from(["", "1", "+1", "1 ", "+1 ", "1-", "+1-", "+", "01", "+11", "001 "])


@st.composite
def _nanp_shaped(draw: st.DrawFn) -> str:
    area = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    exchange = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    line = draw(st.text(alphabet="0123456789", min_size=3, max_size=5))
    area_shown = draw(st.sampled_from([area, f"({area})", f"({area}) ", f"({area}"]))
    padding = draw(st.sampled_from(["", " ", "\t", " x12", "\u00a0", "٠"]))
    return draw(_prefix) + area_shown + draw(_sep) + exchange + draw(_sep) + line + padding


def _outcome(fn: object, raw: str) -> tuple[str, str]:
    try:
        return ("ok", fn(raw, "US"))  # type: ignore[operator]
    except InvalidPhone as exc:
        return ("invalid", str(exc))


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_nanp_shaped(), _digits, st.text(alphabet="0123456789+-() .x٢", max_size=20)))
def test_fast_path_agrees_with_phonenumbers(raw: str) -> None:
    assert _outcome(to_e164, raw) == _outcome(_to_e164_parsed, raw)


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=2_000_000_000, max_value=9_999_999_999), st.sampled_from(["", "+1", "1", "+1 "]))
def test_fast_path_agrees_on_every_area_code(national: int, prefix: str) -> None:
    """Valid and invalid area codes and exchanges alike (N11 codes, unassigned areas, 555 lines)."""
    raw = prefix + str(national)
    assert _PLAIN_NANP.fullmatch(raw.strip()) is not None  # the fast path is the one tested
    assert _outcome(to_e164, raw) == _outcome(_to_e164_parsed, raw)
