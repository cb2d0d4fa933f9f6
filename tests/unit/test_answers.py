"""Answer understanding (DESIGN §4.3): yes/no, numbers with units and decimals, choices, scales."""

from __future__ import annotations

import pytest

from app.flows.answers import ParsedNumber, parse_choice, parse_number, parse_scale, parse_yes_no

# ------------------------------------------------------------------------------------------- yes / no
YES_NO_EN: list[tuple[str, bool | None]] = [
    ("yes", True),
    ("Yes", True),
    ("YES", True),
    ("Yes!!", True),
    ("  yes.  ", True),
    ("y", True),
    ("Y", True),
    ("yeah", True),
    ("yep", True),
    ("yup", True),
    ("no", False),
    ("No.", False),
    ("NO!!!", False),
    ("n", False),
    ("nope", False),
    ("nah", False),
]

YES_NO_ES: list[tuple[str, bool | None]] = [
    ("sí", True),
    ("SÍ", True),
    ("Sí", True),
    ("si", True),
    ("SI", True),
    ("s", True),
    ("S", True),
    ("¡Sí!", True),
    ("Sí, claro", True),
    ("claro", True),
    ("no", False),
    ("NO", False),
    ("¡No!", False),
    ("nunca", False),
    ("negativo", False),
]

YES_NO_OTHER: list[tuple[str, bool | None]] = [
    ("👍", True),
    ("👍🏽", True),  # skin-tone modifier after the thumb
    ("👎", False),
    ("1", True),  # DTMF
    ("2", False),
    (" 1 ", True),
    ("yes no", None),  # contradiction
    ("sí no", None),
    ("yes 👎", None),
    ("not sure", None),
    ("asdf qwerty", None),  # gibberish
    ("maybe", None),
    ("3", None),
    ("12", None),
    ("", None),
    ("   ", None),
    ("?!", None),
]


@pytest.mark.parametrize(("text", "expected"), YES_NO_EN)
def test_yes_no_english(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize(("text", "expected"), YES_NO_ES)
def test_yes_no_spanish(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize(("text", "expected"), YES_NO_OTHER)
def test_yes_no_emoji_digits_and_unclear(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


def test_yes_no_digits_can_be_turned_off() -> None:
    assert parse_yes_no("1", digits=False) is None
    assert parse_yes_no("2", digits=False) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("yes " * 500, True), ("x" * 2000, None), ("👍" * 2000, True), ("no" + "!" * 1998, False)]
)
def test_yes_no_long_input_is_read_not_rejected(text: str, expected: bool | None) -> None:
    assert len(text) >= 2000
    assert parse_yes_no(text) is expected


def test_yes_no_long_input_keeps_its_meaning() -> None:
    assert parse_yes_no("yes " * 500) is True
    assert parse_yes_no("x" * 2000) is None


# -------------------------------------------------------------------------------------------- numbers
NUMBERS_EN: list[tuple[str, str | None, ParsedNumber | None]] = [
    ("182", None, ParsedNumber(182.0, None)),
    ("182.5 lbs", None, ParsedNumber(182.5, "lb")),
    ("182.5 lbs", "lb", ParsedNumber(182.5, "lb")),
    ("182lbs", "lb", ParsedNumber(182.0, "lb")),
    ("I weigh 183 pounds", None, ParsedNumber(183.0, "lb")),
    ("I weigh 183 pounds", "lb", ParsedNumber(183.0, "lb")),
    ("180 #", "lb", ParsedNumber(180.0, "lb")),
    ("183 today", "lb", ParsedNumber(183.0, "lb")),
    ("80 kg", "lb", ParsedNumber(176.4, "lb", given_unit="kg")),
    ("83 kilos", "lb", ParsedNumber(183.0, "lb", given_unit="kg")),
    ("120 mg/dL", "mg/dL", ParsedNumber(120.0, "mg/dL")),
    ("7.2 mmol/L", "mg/dL", ParsedNumber(129.6, "mg/dL", given_unit="mmol/L")),
    ("5 mmol", "mg/dL", ParsedNumber(90.0, "mg/dL", given_unit="mmol/L")),
    ("182 or 183", None, None),
    ("182 or 183", "lb", None),
    ("abc", None, None),
    ("", None, None),
    ("yes", "lb", None),
]

NUMBERS_ES: list[tuple[str, str | None, ParsedNumber | None]] = [
    ("182,5", None, ParsedNumber(182.5, None)),
    ("182,5", "lb", ParsedNumber(182.5, "lb")),
    ("182,50 libras", "lb", ParsedNumber(182.5, "lb")),
    ("Peso 183 libras", "lb", ParsedNumber(183.0, "lb")),
    ("80 kilos", "lb", ParsedNumber(176.4, "lb", given_unit="kg")),
    ("83 kilogramos", "lb", ParsedNumber(183.0, "lb", given_unit="kg")),
    ("7,2 mmol/l", "mg/dL", ParsedNumber(129.6, "mg/dL", given_unit="mmol/L")),
    ("182 o 183", "lb", None),
    ("no sé", "lb", None),
]


@pytest.mark.parametrize(("text", "unit", "expected"), NUMBERS_EN)
def test_number_english(text: str, unit: str | None, expected: ParsedNumber | None) -> None:
    assert parse_number(text, unit=unit) == expected


@pytest.mark.parametrize(("text", "unit", "expected"), NUMBERS_ES)
def test_number_spanish(text: str, unit: str | None, expected: ParsedNumber | None) -> None:
    assert parse_number(text, unit=unit) == expected


def test_number_with_a_unit_that_cannot_be_converted_is_not_guessed() -> None:
    # Celsius to Fahrenheit is not a factor; the reply is re-prompted rather than read as 37 °F.
    assert parse_number("37 C", unit="F") is None


def test_number_fullwidth_digits_are_read() -> None:
    assert parse_number("１８２", unit="lb") == ParsedNumber(182.0, "lb")


def test_number_long_input_does_not_raise() -> None:
    assert parse_number("9" * 2000) is None  # not a plausible reading
    assert parse_number("a" * 2000) is None
    assert parse_number("182 lbs " + "x" * 2000, unit="lb") == ParsedNumber(182.0, "lb")


# -------------------------------------------------------------------------------------------- choices
FEELING: list[tuple[str, list[str]]] = [
    ("better", ["Better", "mejor"]),
    ("same", ["The same", "igual", "same"]),
    ("worse", ["Worse", "peor"]),
]

CHOICES_EN: list[tuple[str, str | None]] = [
    ("1", "better"),
    ("2", "same"),
    ("3", "worse"),
    (" 3. ", "worse"),
    ("better", "better"),
    ("Worse!", "worse"),
    ("about the same", "same"),
    ("4", None),
    ("0", None),
    ("better or worse", None),  # two choices named: ambiguous
    ("samesies", None),  # a word boundary is required
    ("", None),
]
CHOICES_ES: list[tuple[str, str | None]] = [
    ("Mejor", "better"),
    ("PEOR", "worse"),
    ("igual que ayer", "same"),
    ("1", "better"),
    ("mejor o peor", None),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES_EN)
def test_choice_english(text: str, expected: str | None) -> None:
    assert parse_choice(text, FEELING) == expected


@pytest.mark.parametrize(("text", "expected"), CHOICES_ES)
def test_choice_spanish(text: str, expected: str | None) -> None:
    assert parse_choice(text, FEELING) == expected


# A word inside a longer word of another choice does not count; the same phrase under two choices is
# ambiguous on purpose.
HOW_DO_YOU_FEEL: list[tuple[str, list[str]]] = [
    ("better", ["better", "good", "bien", "muy bien", "not better"]),
    ("same", ["same", "ok", "not bad", "not so bad", "mas o menos", "no tan mal"]),
    ("worse", ["worse", "bad", "mal", "not good", "no estoy bien", "not better"]),
]
LONGEST_MATCH: list[tuple[str, str | None]] = [
    ("good", "better"),
    ("not good", "worse"),
    ("I'm not good today", "worse"),
    ("not so bad", "same"),
    ("bad", "worse"),
    ("not bad, thanks", "same"),
    ("not better", None),  # listed under two choices: asked again
    ("good but worse at night", None),  # two separate choices
    ("bien", "better"),
    ("muy bien", "better"),
    ("no estoy bien", "worse"),
    ("más o menos", "same"),
    ("no tan mal", "same"),
    ("mal", "worse"),
]


@pytest.mark.parametrize(("text", "expected"), LONGEST_MATCH)
def test_choice_word_inside_a_longer_word_of_another_choice(text: str, expected: str | None) -> None:
    assert parse_choice(text, HOW_DO_YOU_FEEL) == expected


@pytest.mark.parametrize("text", ["፩", "𐩀"])
def test_choice_non_decimal_digit_is_not_an_error(text: str) -> None:
    assert parse_choice(text, FEELING) is None


def test_choice_very_long_digit_string_is_not_an_error() -> None:
    assert parse_choice("1" * 5000, FEELING) is None


# --------------------------------------------------------------------------------------------- scales
SCALES: list[tuple[str, int, int, int | None]] = [
    ("0", 0, 3, 0),
    ("3", 0, 3, 3),
    ("2 ", 0, 3, 2),
    ("about 2", 0, 3, 2),
    ("4", 0, 3, None),
    ("7", 0, 10, 7),
    ("10", 0, 10, 10),
    ("11", 0, 10, None),
    ("2.5", 0, 10, None),  # a scale takes whole numbers only
    ("2,0", 0, 10, 2),
    ("three", 0, 3, None),
    ("1 or 2", 0, 3, None),
    ("", 0, 3, None),
]


@pytest.mark.parametrize(("text", "low", "high", "expected"), SCALES)
def test_scale(text: str, low: int, high: int, expected: int | None) -> None:
    assert parse_scale(text, low, high) == expected
