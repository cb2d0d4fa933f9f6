"""Answer understanding (DESIGN §4.3): yes/no, numbers with units and decimals, choices, scales."""

from __future__ import annotations

import pytest

from app.flows.answers import (
    CHOICE_MEANINGS,
    ParsedNumber,
    extra_words,
    parse_choice,
    parse_meter_flag,
    parse_number,
    parse_partial,
    parse_scale,
    parse_symptom_yes_no,
    parse_unknown,
    parse_yes_no,
)
from app.flows.text import tokens

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


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ya", True), ("ya se me quitó el dolor de pecho", None), ("ya no", False), ("ya me siento mejor", None)],
)
def test_ya_is_a_yes_only_as_the_whole_reply(text: str, expected: bool | None) -> None:
    """English "ya" (yeah) is Spanish "already" inside a sentence: never a YES there."""
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
    ("three", 0, 3, 3),  # a number word is a number
    ("tres", 0, 3, 3),
    ("1 or 2", 0, 3, None),
    ("", 0, 3, None),
]


@pytest.mark.parametrize(("text", "low", "high", "expected"), SCALES)
def test_scale(text: str, low: int, high: int, expected: int | None) -> None:
    assert parse_scale(text, low, high) == expected


# ------------------------------------------------------------------- issue 7: what patients really write
LETTER_FOR_DIGIT: list[tuple[str, str]] = [
    ("l83", "lb"),
    ("I83", "lb"),
    ("1O2", "lb"),
    ("18O lbs", "lb"),
    ("l83 libras", "lb"),
    ("peso l83", "lb"),
    ("1S0", "mg/dL"),
    ("2nd", "lb"),
]


@pytest.mark.parametrize(("text", "unit"), LETTER_FOR_DIGIT)
def test_a_letter_typed_for_a_digit_is_never_a_different_number(text: str, unit: str) -> None:
    assert parse_number(text, unit=unit) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("183lbs", 183.0), ("183lb.", 183.0), ("7.2mmol", 129.6), ("182,5", 182.5), ("183!", 183.0)],
)
def test_units_glued_to_the_digits_are_still_read(text: str, expected: float) -> None:
    unit = "mg/dL" if "mmol" in text else "lb"
    parsed = parse_number(text, unit=unit)
    assert parsed is not None and parsed.value == expected


SPOKEN_EN: list[tuple[str, str | None, float | None]] = [
    ("one eighty three", "lb", 183.0),
    ("one eighty-three", "lb", 183.0),
    ("one hundred eighty-three", "lb", 183.0),
    ("one hundred and eighty three pounds", "lb", 183.0),
    ("I weigh two ten", "lb", 210.0),
    ("seven point two mmol", "mg/dL", 129.6),
    ("eighty two kilos", "lb", 180.8),
    ("three", None, 3.0),
    ("no one knows", None, None),
    ("nineteen ninety", None, None),  # two numbers, not a guess
]
SPOKEN_ES: list[tuple[str, str | None, float | None]] = [
    ("ciento ochenta y tres", "lb", 183.0),
    ("ciento ochenta y tres libras", "lb", 183.0),
    ("doscientos cuarenta", "mg/dL", 240.0),
    ("ochenta kilos", "lb", 176.4),
    ("tres", None, 3.0),
    ("uno punto cero mmol", "mg/dL", 18.0),
    ("un poco", None, None),
]


@pytest.mark.parametrize(("text", "unit", "expected"), SPOKEN_EN)
def test_spoken_numbers_english(text: str, unit: str | None, expected: float | None) -> None:
    parsed = parse_number(text, unit=unit, languages=("en", "es"))
    assert (parsed.value if parsed else None) == expected


@pytest.mark.parametrize(("text", "unit", "expected"), SPOKEN_ES)
def test_spoken_numbers_spanish(text: str, unit: str | None, expected: float | None) -> None:
    parsed = parse_number(text, unit=unit, languages=("es", "en"))
    assert (parsed.value if parsed else None) == expected


def test_digits_win_over_number_words() -> None:
    assert parse_number("183 not one eighty", unit="lb") == ParsedNumber(183.0, "lb")


HEDGES_EN: list[tuple[str, bool | None]] = [
    ("a little", True),
    ("A little bit", True),
    ("kind of", True),
    ("sort of", True),
    ("sometimes", True),
    ("somewhat", True),
    ("maybe a bit", True),
    ("yes a little", True),
    ("no, a little", None),  # a no and a hedge: asked again
    ("maybe", None),
    ("no", False),
]
HEDGES_ES: list[tuple[str, bool | None]] = [
    ("un poco", True),
    ("Un poquito", True),
    ("más o menos", True),
    ("mas o menos", True),
    ("a veces", True),
    ("algo", True),
    ("sí, un poco", True),
    ("tal vez", None),
    ("no", False),
]


@pytest.mark.parametrize(("text", "expected"), HEDGES_EN)
def test_hedges_are_yes_on_symptom_questions_english(text: str, expected: bool | None) -> None:
    assert parse_symptom_yes_no(text) is expected


@pytest.mark.parametrize(("text", "expected"), HEDGES_ES)
def test_hedges_are_yes_on_symptom_questions_spanish(text: str, expected: bool | None) -> None:
    assert parse_symptom_yes_no(text) is expected


@pytest.mark.parametrize("text", ["a little", "kind of", "sometimes", "un poco", "más o menos", "a veces", "algo"])
def test_hedges_are_unclear_on_other_yes_no_questions(text: str) -> None:
    assert parse_yes_no(text) is None


UNKNOWN_EN: list[tuple[str, bool]] = [
    ("not sure", True),
    ("I'm not sure", True),
    ("idk", True),
    ("IDK", True),
    ("I don't know", True),
    ("i dont know honestly", True),
    ("no idea", True),
    ("no", False),
    ("yes, not sure since when", False),
    ("sure", False),
]
UNKNOWN_ES: list[tuple[str, bool]] = [
    ("no sé", True),
    ("No se", True),
    ("no lo sé", True),
    ("no estoy segura", True),
    ("no estoy seguro", True),
    ("la verdad no sé", True),
    ("ni idea", True),
    ("no se me hinchan los pies", False),  # "my feet don't swell": a NO
    ("no", False),
    ("sí", False),
]


@pytest.mark.parametrize(("text", "expected"), UNKNOWN_EN)
def test_i_dont_know_english(text: str, expected: bool) -> None:
    assert parse_unknown(text) is expected


@pytest.mark.parametrize(("text", "expected"), UNKNOWN_ES)
def test_i_dont_know_spanish(text: str, expected: bool) -> None:
    assert parse_unknown(text) is expected


QUESTION = "Are you more short of breath than usual? Reply YES or NO. ¿Le falta el aire mas de lo normal?"
EXTRA_EN: list[tuple[str, bool]] = [
    ("no but my ankles are huge", True),
    ("yes, and I also fell yesterday", True),
    ("yes and I fell", True),
    ("no thank you", False),
    ("yes I am", False),
    ("no I'm fine", False),
    ("yes I am more short of breath", False),
    ("nope", False),
]
EXTRA_ES: list[tuple[str, bool]] = [
    ("no pero me duelen mucho los tobillos", True),
    ("sí, y también me caí ayer", True),
    ("no, gracias", False),
    ("sí, me falta el aire", False),
    ("no señora", False),
]


@pytest.mark.parametrize(("text", "more"), EXTRA_EN)
def test_a_yes_no_saying_more_english(text: str, more: bool) -> None:
    assert bool(extra_words(text, tokens(QUESTION))) is more


@pytest.mark.parametrize(("text", "more"), EXTRA_ES)
def test_a_yes_no_saying_more_spanish(text: str, more: bool) -> None:
    assert bool(extra_words(text, tokens(QUESTION))) is more


METER_EN: list[tuple[str, str | None]] = [
    ("LO", "low"),
    ("lo", "low"),
    ("Lo", "low"),
    ("low", "low"),
    ("too low", "low"),
    ("my meter says LO", "low"),
    ("HI", "high"),
    ("high", "high"),
    ("very high", "high"),
    ("it says HI", "high"),
    ("hi", None),  # a greeting
    ("Hi", None),
    ("not low", None),
    ("LO or HI", None),
    ("fine", None),
]
METER_ES: list[tuple[str, str | None]] = [
    ("bajo", "low"),
    ("muy bajo", "low"),
    ("Baja", "low"),
    ("alto", "high"),
    ("ALTO", "high"),
    ("muy alto", "high"),
    ("dice HI", "high"),
    ("no lo sé", None),
    ("no está bajo", None),
]


@pytest.mark.parametrize(("text", "expected"), METER_EN)
def test_meter_flags_english(text: str, expected: str | None) -> None:
    assert parse_meter_flag(text) == expected


@pytest.mark.parametrize(("text", "expected"), METER_ES)
def test_meter_flags_spanish(text: str, expected: str | None) -> None:
    assert parse_meter_flag(text) == expected


#: How a flow asking "how do you feel?" can list everyday words (post-discharge ``feeling``).
FEELING_WORDS: list[tuple[str, list[str]]] = [
    ("better", ["better", "good", "fine", "well", "great", "mejor", "bien", "estoy bien", "muy bien"]),
    (
        "same",
        ["same", "ok", "okay", "so so", "not so bad", "not too bad", "not bad", "igual", "regular", "mas o menos"],
    ),
    ("worse", ["worse", "bad", "not good", "not well", "peor", "mal", "no estoy bien", "no me siento bien"]),
]
FEELING_EN: list[tuple[str, str | None]] = [
    ("good", "better"),
    ("Fine thanks", "better"),
    ("doing well", "better"),
    ("ok", "same"),
    ("so so", "same"),
    ("not so bad", "same"),  # never "bad"
    ("not too bad", "same"),
    ("not good", "worse"),
    ("not well at all", "worse"),
    ("bad", "worse"),
    ("no, better", "better"),  # a negation reaches only its own clause
    ("not better", None),  # a negated word selects nothing: asked again
    ("good and bad", None),
]
FEELING_ES: list[tuple[str, str | None]] = [
    ("bien", "better"),
    ("Estoy bien", "better"),
    ("muy bien gracias", "better"),
    ("más o menos", "same"),
    ("regular", "same"),
    ("no estoy bien", "worse"),
    ("no me siento bien", "worse"),
    ("mal", "worse"),
    ("no mejor", None),
]


@pytest.mark.parametrize(("text", "expected"), FEELING_EN)
def test_everyday_feeling_words_english(text: str, expected: str | None) -> None:
    assert parse_choice(text, FEELING_WORDS) == expected


@pytest.mark.parametrize(("text", "expected"), FEELING_ES)
def test_everyday_feeling_words_spanish(text: str, expected: str | None) -> None:
    assert parse_choice(text, FEELING_WORDS) == expected


PARTIAL_REPLIES: list[tuple[str, bool]] = [
    ("a little", True),
    ("kinda", True),
    ("not much", True),
    ("yes but not much", True),
    ("barely", True),
    ("un poco", True),
    ("no mucho", True),
    ("apenas", True),
    ("más o menos", True),
    ("yes", False),
    ("no", False),
    ("sí, mucho", False),
    ("it helps a lot", False),
]


@pytest.mark.parametrize(("text", "wanted"), PARTIAL_REPLIES)
def test_partial_replies(text: str, wanted: bool) -> None:
    assert parse_partial(text) is wanted


CANCEL_CHOICES = [("confirm", ["confirm", "yes"]), ("change", ["change", *CHOICE_MEANINGS["cancel"]])]


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("Cancelar", "change"),
        ("cancela", "change"),
        ("CANCEL IT", "change"),
        ("quiero cancelar", "change"),
        ("no cancelar", None),
        ("don't cancel", None),
        ("confirm", "confirm"),
    ],
)
def test_cancel_meaning_selects_its_choice(text: str, wanted: str | None) -> None:
    assert parse_choice(text, CANCEL_CHOICES) == wanted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Inside a sentence "y" is Spanish "and", never a YES (fresh-user review of voice, 2026-11-30).
        ("dolor de cabeza y mareo", None),
        ("ciento ochenta y tres", None),
        ("no y no", False),
        ("si y no", None),
        ("si, y me duele", True),
        ("s n", None),
        # Alone, the shorthand is still an answer.
        ("y", True),
        ("Y", True),
        ("s", True),
        ("n", False),
        ("y 👍", True),
    ],
)
def test_one_letter_shorthands_count_only_as_the_whole_reply(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected
