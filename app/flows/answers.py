"""Answer understanding for every supported language, in one place.

Why accept every language's words for every patient: a Spanish speaker who answers "yes" still means
yes. Ambiguous replies ("yes and no", "182 or 183", "l83") are not guessed: they get a re-prompt.

What is understood beyond plain words and digits (issue 7, item 3):
- spoken numbers in English and Spanish ("one eighty three", "ciento ochenta y tres"), by ``text2num``;
- a letter typed for a digit ("l83", "1O2") is never read as a different number;
- hedges ("a little", "un poco") are a YES on symptom questions (:func:`parse_hedge`), and a NO, with
  "not much" / "apenas", where a partial answer is the worrying one (:func:`parse_partial`, ``partly: no``);
- "not sure" / "no sé" is an answer of its own, UNKNOWN (:func:`parse_unknown`);
- a meter's LO / HI flags at a number question (:func:`parse_meter_flag`);
- a yes/no reply that says more ("no but my ankles are huge") (:func:`extra_words`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from text_to_num import alpha2digit

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
#: One-letter shorthands that count only as the whole reply: inside a sentence "y" is Spanish "and"
#: ("dolor de cabeza y mareo", "ciento ochenta y tres" are not a YES), and "s" / "n" are typing slips.
SHORTHANDS = frozenset({"y", "s", "n"})
#: Yes words that count only as the whole reply: English "ya" (yeah) is Spanish "already" inside a sentence
#: ("ya se me quitó el dolor de pecho" is no YES to "are you more short of breath?").
WHOLE_REPLY_ONLY = SHORTHANDS | {"ya"}

#: "Some of the symptom": a YES on a symptom question (a hedged yes is still a yes to a nurse), unclear
#: elsewhere. Folded phrases, matched as whole words.
HEDGES: dict[str, tuple[str, ...]] = {
    "en": (
        "a little",
        "a little bit",
        "a bit",
        "little bit",
        "a tad",
        "kind of",
        "kinda",
        "sort of",
        "sorta",
        "sometimes",
        "somewhat",
        "slightly",
        "maybe a bit",
        "maybe a little",
        "on and off",
        "off and on",
    ),
    "es": (
        "un poco",
        "un poquito",
        "poquito",
        "un tantito",
        "mas o menos",
        "a veces",
        "algo",
        "de vez en cuando",
    ),
}

#: "Only partly" ("not much", "barely", "apenas"): with the hedges, a NO at a question whose partial
#: answer is the worrying one (``partly: no``: "does your rescue inhaler help?" "a little" is the red-zone
#: answer). Folded phrases, matched as whole words.
PARTIAL: dict[str, tuple[str, ...]] = {
    "en": (
        "not much", "not that much", "not very much", "not really", "not enough", "not a lot", "not as much",
        "not as well", "barely", "hardly", "partly", "partially", "not completely", "not all the way",
        "a little", "only a little", "some", "meh",
    ),
    "es": (
        "no mucho", "no tanto", "no tan bien", "no lo suficiente", "no del todo", "no muy bien", "casi no",
        "apenas", "poco", "muy poco", "solo un poco", "medio", "mas o menos", "no mucho que digamos",
    ),
}  # fmt: skip

#: "I don't know": UNKNOWN, never NO. Folded phrases, matched as whole words.
UNKNOWN_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "not sure",
        "im not sure",
        "i'm not sure",
        "unsure",
        "idk",
        "i dont know",
        "i don't know",
        "dont know",
        "don't know",
        "dunno",
        "no idea",
        "not certain",
        "no clue",
    ),
    "es": (
        "no se",
        "no lo se",
        "no estoy segura",
        "no estoy seguro",
        "no estoy segure",
        "ni idea",
        "no tengo idea",
        "no sabria",
        "quien sabe",
    ),
}

#: Meter flags at a number question (glucose meters show LO / HI outside their range). Kept here, not in
#: flow files: "alto" is also a whole-message opt-out keyword, and flow answer words may not be keywords.
#: The literal LO / HI count when they are the whole message, or written in capitals ("it says HI");
#: a lowercase "hi" alone is a greeting, not a reading.
METER_WORDS: dict[str, tuple[str, ...]] = {
    "low": ("low", "too low", "very low", "bajo", "baja", "muy bajo", "muy baja", "demasiado bajo"),
    "high": ("high", "too high", "very high", "alto", "alta", "muy alto", "muy alta", "demasiado alto"),
}

#: What a choice's ``means:`` adds to its words (app/flows/engine.py). Kept here, not in flow files: these
#: words are also whole-message keywords ("alto", "baja", "cancelar" opt out; flow answer words may not be
#: keywords), and a question that offers such a choice understands them as its answer instead. English
#: "cancel" alone stays Twilio's opt-out whatever the question (app/flows/keywords.py TWILIO_ENFORCED); in a
#: sentence ("cancel it please") it is the answer.
CHOICE_MEANINGS: dict[str, tuple[str, ...]] = {
    **METER_WORDS,
    "cancel": (
        "cancel", "cancel it", "cancel that", "cancel please", "please cancel", "cancelled", "canceled",
        "cancelar", "cancela", "cancelo", "cancelarla", "cancelala", "cancelela", "cancelen", "cancelenla",
        "cancele", "quiero cancelar", "hay que cancelar",
    ),
}  # fmt: skip

#: Words that say nothing more after a yes or a no ("no thank you", "yes I am", "sí, gracias").
_FILLER_WORDS = """
    i im i'm am is it its it's a an the to that this so thanks thank you ty ok okay fine good well just really
    today now please do did dont don't have has ive i've was feel feeling sir maam ma'am all right alright at
    any more of course gracias muchas estoy esta es me todo bien nada hoy ahora por favor de la el lo los las
    que un una siento tengo senora senor pues bueno mas gusto ya asi
"""
FILLER = frozenset(_FILLER_WORDS.split())
#: Words that join a second thought to a yes or a no ("no but…", "sí, y también…").
CONJUNCTIONS = frozenset({"but", "and", "also", "plus", "though", "however", "pero", "y", "tambien", "aunque", "e"})
NEGATORS = frozenset({"no", "not", "never", "nunca", "ni", "isnt", "isn't", "dont", "don't"})
_CLAUSE_BREAK = re.compile(r"[,.;:!?¡¿\n]+")

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

LANGUAGES = ("en", "es")

_NUMBER = re.compile(r"(?<![\d.,])(\d{1,5}(?:[.,]\d{1,2})?)(?![\d])")
_UNIT_AFTER = re.compile(r"\s*(mg\s*/\s*dl|mmol\s*/\s*l|[a-z#]+)", re.IGNORECASE)
#: A run of letters, digits and the marks a number or a unit may carry ("182,5", "7.2mmol/l", "180#").
_CHUNK = re.compile(r"[\w.,/#']+")
_PLAIN_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?([a-z/#]*)[.,]?$")
#: "one eighty three" comes out of text2num as "1 83": spoken weights say hundreds that way.
_SPOKEN_HUNDREDS = re.compile(r"(?<![\d.,])([1-9]) ([1-9]\d)(?![\d.,])")


def _has_phrase(words: list[str], phrase: str) -> tuple[int, int] | None:
    """The (start, end) token span of ``phrase`` (folded words) in ``words``, or None."""
    wanted = phrase.split()
    size = len(wanted)
    for start in range(len(words) - size + 1):
        if words[start : start + size] == wanted:
            return start, start + size
    return None


def _spans(words: list[str], phrases: Iterable[str]) -> list[tuple[int, int]]:
    found = []
    for phrase in phrases:
        span = _has_phrase(words, phrase)
        if span is not None:
            found.append(span)
    return found


def parse_yes_no(text: str, *, digits: bool = True) -> bool | None:
    """Yes/no in any supported language, emoji, or DTMF 1/2; None when unclear or contradictory."""
    words = tokens(text)
    if not words:
        stripped = text.strip()
        words = [stripped] if stripped else []
    if digits and len(words) == 1 and words[0] in {"1", "2"}:
        return words[0] == "1"
    if len(words) > 1:
        words = [w for w in words if w not in WHOLE_REPLY_ONLY]
    saw_yes = any(w in ALL_YES for w in words)
    saw_no = any(w in ALL_NO for w in words)
    if saw_yes and not saw_no:
        return True
    if saw_no and not saw_yes:
        return False
    return None


def parse_unknown(text: str) -> bool:
    """Whether the reply says "I don't know" ("not sure", "idk", "no sé", "no estoy segura").

    True only when the phrase is most of the reply: "no se me hinchan los pies" ("my feet don't swell")
    is a NO with more to say, not an UNKNOWN. A yes or a no beside the phrase ("yes, not sure when") is
    not unknown either.
    """
    words = tokens(text)
    phrases = [p for ps in UNKNOWN_PHRASES.values() for p in ps]
    spans = _spans(words, phrases)
    if not spans:
        return False
    covered = {i for start, end in spans for i in range(start, end)}
    rest = [w for i, w in enumerate(words) if i not in covered]
    if any(w in ALL_YES or w in ALL_NO for w in rest):
        return False
    return len([w for w in rest if w not in FILLER]) <= 1


def parse_hedge(text: str) -> bool:
    """Whether the reply hedges ("a little", "kind of", "sometimes", "un poco", "más o menos", "a veces")."""
    words = tokens(text)
    return bool(_spans(words, [p for ps in HEDGES.values() for p in ps]))


def parse_partial(text: str) -> bool:
    """Whether the reply says "only partly": a hedge ("a little", "kinda", "un poco") or a partial phrase
    ("not much", "barely", "no mucho", "apenas")."""
    words = tokens(text)
    return parse_hedge(text) or bool(_spans(words, [p for ps in PARTIAL.values() for p in ps]))


def parse_symptom_yes_no(text: str, *, digits: bool = True) -> bool | None:
    """Yes/no on a question about a symptom: a hedge alone or with a yes is YES; a hedge with a no is unclear."""
    answer = parse_yes_no(text, digits=digits)
    if not parse_hedge(text):
        return answer
    if answer is False:
        return None
    return True


def extra_words(text: str, question_words: Iterable[str] = ()) -> list[str]:
    """What a yes/no reply says beyond its yes or no, for a person to read; [] when nothing.

    Words of the question itself, filler ("thank you", "I am") and hedges do not count. More is: three
    or more other words ("yes since Monday my feet"), or a conjunction followed by another word ("no
    but my ankles are huge", "sí, y también me caí").
    """
    words = tokens(text)
    asked = {fold(w) for w in question_words}
    hedged = {i for start, end in _spans(words, [p for ps in HEDGES.values() for p in ps]) for i in range(start, end)}
    rest = [
        w
        for i, w in enumerate(words)
        if w not in ALL_YES and w not in ALL_NO and w not in FILLER and w not in asked and i not in hedged
    ]
    if len(rest) >= 3:
        return rest
    for index, word in enumerate(rest):
        if word in CONJUNCTIONS and index + 1 < len(rest):
            return rest
    return []


def parse_meter_flag(text: str) -> str | None:
    """Which meter flag the reply reports, "low" or "high" ("LO", "low", "bajo", "HI", "muy alto").

    None when neither, both, or negated ("not low"). Uppercase LO/HI anywhere ("it says HI") count, and
    "lo" / "Lo" as the whole message; "hi" in lower case alone is a greeting.
    """
    words = tokens(text)
    raw = re.findall(r"[^\W_]+", text)
    found: set[str] = set()
    for side, phrases in METER_WORDS.items():
        for start, _end in _spans(words, phrases):
            if not any(w in NEGATORS for w in words[max(0, start - 2) : start]):
                found.add(side)
    if "LO" in raw or (len(words) == 1 and words[0] == "lo"):
        found.add("low")
    if "HI" in raw:
        found.add("high")
    if len(found) != 1:
        return None
    return found.pop()


@dataclass(frozen=True)
class ParsedNumber:
    value: float
    unit: str | None
    #: The unit the patient wrote, when it was converted.
    given_unit: str | None = None


def _letter_for_digit(folded: str) -> bool:
    """Whether a run mixes digits with letters that are not a unit ("l83", "1o2", "18o"): never guessed."""
    for chunk in _CHUNK.findall(folded):
        if not any(ch.isdigit() for ch in chunk) or not any(ch.isalpha() for ch in chunk):
            continue
        match = _PLAIN_NUMBER.match(chunk)
        if match is None or (match.group(1) and match.group(1) not in UNIT_WORDS):
            return True
    return False


def spoken_numbers(text: str, languages: Iterable[str] = LANGUAGES) -> str:
    """``text`` with number words written as digits ("ciento ochenta y tres libras" → "183 libras").

    Tried in each language in turn (the patient's first); the first that finds a number wins. A lone
    word ("three", "tres") is a number; inside a sentence small words stay words ("un poco", "no one").
    Spoken hundreds ("one eighty three") are joined: 183.
    """
    cleaned = text.replace("-", " ")
    single = len(tokens(cleaned)) == 1
    for language in languages:
        try:
            converted = alpha2digit(cleaned, language, threshold=0 if single else 3)
        except Exception:  # a parser error on odd input means "no number", never a crash
            continue
        if any(ch.isdigit() for ch in converted):
            return _SPOKEN_HUNDREDS.sub(lambda m: str(int(m.group(1)) * 100 + int(m.group(2))), converted)
    return text


def parse_number(text: str, *, unit: str | None = None, languages: Iterable[str] = LANGUAGES) -> ParsedNumber | None:
    """The one number in a reply ("182.5 lbs", "182,5", "I weigh 183", "one eighty three"), converted to ``unit``.

    Returns None when there is no number, more than one distinct number, or a letter typed among the
    digits ("l83" is not 83). Number words are read only when the reply has no digits.
    """
    folded = fold(text)
    if not any(ch.isdigit() for ch in folded):
        folded = fold(spoken_numbers(folded, languages))
    if _letter_for_digit(folded):
        return None
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

    Words are whole-word phrases. A longer phrase wins over a phrase inside it: "not good" (listed under
    worse) is not also "good", "not so bad" (listed under same) is not "bad", "no estoy bien" beats
    "estoy bien". A word right after a negation ("not", "no", "ni", within two words of the same clause)
    does not select its choice unless the listed phrase itself carries the negation: an unlisted "not
    better" names nothing. Two choices named side by side ("better or worse"), or one phrase listed
    under two choices on purpose, is ambiguous: None, so the question is asked again.
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
    # Words with their clause: a negation reaches only within its own clause ("no, better" is better).
    words = []
    clause: list[int] = []
    for number, part in enumerate(_CLAUSE_BREAK.split(stripped)):
        part_words = tokens(part)
        words.extend(part_words)
        clause.extend([number] * len(part_words))
    matches: list[tuple[int, int, str]] = []
    for choice_id, synonyms in choices:
        for synonym in synonyms:
            phrase = " ".join(tokens(synonym))
            if not phrase:
                continue
            size = len(phrase.split())
            for start in range(len(words) - size + 1):
                if words[start : start + size] != phrase.split():
                    continue
                negated = any(
                    words[i] in NEGATORS and clause[i] == clause[start] for i in range(max(0, start - 2), start)
                )
                if not negated or phrase.split()[0] in NEGATORS:
                    matches.append((start, start + size, choice_id))
    kept = [
        m for m in matches if not any(o[0] <= m[0] and m[1] <= o[1] and (o[1] - o[0]) > (m[1] - m[0]) for o in matches)
    ]
    hits = {choice_id for _, _, choice_id in kept}
    return hits.pop() if len(hits) == 1 else None


def parse_scale(text: str, low: int, high: int, *, languages: Iterable[str] = LANGUAGES) -> int | None:
    number = parse_number(text, languages=languages)
    if number is None or number.value != int(number.value):
        return None
    value = int(number.value)
    return value if low <= value <= high else None
