"""Answer understanding for every supported language, in one place.

Why accept every language's words for every patient: a Spanish speaker who answers "yes" still means
yes. Ambiguous replies ("yes and no", "182 or 183") are not guessed: they get a re-prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.flows.text import fold, tokens

YES_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"yes", "y", "yeah", "yea", "yep", "yup", "ya", "sure", "ok", "okay", "correct", "true"}),
    "es": frozenset({"si", "s", "claro", "sip", "cierto", "correcto", "afirmativo", "vale"}),
}
NO_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"no", "n", "nope", "nah", "not", "never", "negative", "false"}),
    "es": frozenset({"no", "n", "nop", "nunca", "negativo", "tampoco"}),
}
YES_EMOJI = frozenset({"👍", "✅", "✔", "☑", "👌"})
NO_EMOJI = frozenset({"👎", "❌", "✖", "🚫"})
ALL_YES = frozenset().union(*YES_WORDS.values()) | YES_EMOJI
ALL_NO = frozenset().union(*NO_WORDS.values()) | NO_EMOJI

#: Unit words folded to a canonical unit, and the factor to convert into a question's unit.
UNIT_WORDS: dict[str, str] = {
    "lb": "lb",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "libra": "lb",
    "libras": "lb",
    "#": "lb",
    "kg": "kg",
    "kgs": "kg",
    "kilo": "kg",
    "kilos": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "kilogramo": "kg",
    "kilogramos": "kg",
    "mg/dl": "mg/dL",
    "mgdl": "mg/dL",
    "mg": "mg/dL",
    "mmol/l": "mmol/L",
    "mmol": "mmol/L",
    "f": "F",
    "c": "C",
}
CONVERSIONS: dict[tuple[str, str], float] = {
    ("kg", "lb"): 2.20462,
    ("lb", "kg"): 1 / 2.20462,
    ("mmol/L", "mg/dL"): 18.0,
    ("mg/dL", "mmol/L"): 1 / 18.0,
}

_NUMBER = re.compile(r"(?<![\d.,])(\d{1,5}(?:[.,]\d{1,2})?)(?![\d])")
_UNIT_AFTER = re.compile(r"\s*(mg\s*/\s*dl|mmol\s*/\s*l|[a-z#]+)", re.IGNORECASE)


def parse_yes_no(text: str, *, digits: bool = True) -> bool | None:
    """Yes/no in any supported language, emoji, or DTMF 1/2; None when unclear or contradictory."""
    words = tokens(text)
    if not words:
        stripped = text.strip()
        words = [stripped] if stripped else []
    if digits and len(words) == 1 and words[0] in {"1", "2"}:
        return words[0] == "1"
    saw_yes = any(w in ALL_YES for w in words)
    saw_no = any(w in ALL_NO for w in words)
    if saw_yes and not saw_no:
        return True
    if saw_no and not saw_yes:
        return False
    return None


@dataclass(frozen=True)
class ParsedNumber:
    value: float
    unit: str | None
    #: The unit the patient wrote, when it was converted.
    given_unit: str | None = None


def parse_number(text: str, *, unit: str | None = None) -> ParsedNumber | None:
    """The one number in a reply ("182.5 lbs", "182,5", "I weigh 183"), converted to ``unit``.

    Returns None when there is no number or more than one distinct number.
    """
    folded = fold(text)
    found = list(_NUMBER.finditer(folded))
    values = {float(m.group(1).replace(",", ".")) for m in found}
    if len(values) != 1:
        return None
    match = found[0]
    value = values.pop()
    written: str | None = None
    after = _UNIT_AFTER.match(folded, match.end())
    if after:
        written = UNIT_WORDS.get(re.sub(r"\s+", "", after.group(1)).lower())
    if unit and written and written != unit:
        factor = CONVERSIONS.get((written, unit))
        if factor is None:
            return None
        return ParsedNumber(round(value * factor, 1), unit, given_unit=written)
    return ParsedNumber(value, unit or written)


def parse_choice(text: str, choices: list[tuple[str, list[str]]], *, by_number: bool = True) -> str | None:
    """A choice by its number (1-based, unless ``by_number`` is off) or by one of its words.

    A word found inside a longer word of another choice does not count: "not good" (listed under
    worse) is not also "good", and "not so bad" (listed under same) is not "bad". Two choices named
    side by side ("better or worse"), or one phrase listed under two choices on purpose, is ambiguous:
    None, so the question is asked again.
    """
    stripped = text.strip()
    words = tokens(stripped)
    if len(words) == 1 and words[0].isascii() and words[0].isdigit():
        if not by_number:
            return None
        if len(words[0]) > 3:
            return None
        index = int(words[0]) - 1
        return choices[index][0] if 0 <= index < len(choices) else None
    folded = " ".join(words)
    found = [
        (match.start(), match.end(), choice_id)
        for choice_id, synonyms in choices
        for synonym in synonyms
        if synonym
        for match in re.finditer(rf"(?<!\w){re.escape(fold(synonym))}(?!\w)", folded)
    ]
    hits = {
        choice_id
        for start, end, choice_id in found
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in found)
    }
    return hits.pop() if len(hits) == 1 else None


def parse_scale(text: str, low: int, high: int) -> int | None:
    number = parse_number(text)
    if number is None or number.value != int(number.value):
        return None
    value = int(number.value)
    return value if low <= value <= high else None
