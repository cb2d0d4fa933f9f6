"""Global intents (DESIGN §4.3): red-flag phrases from the real lexicon, and language switches."""

from __future__ import annotations

import functools

import pytest

from app import config
from app.content import load_content
from app.flows.intents import GlobalIntents, RedFlag


@functools.cache
def lexicon() -> GlobalIntents:
    # load_content only reads files under content/: no database, no network.
    return load_content(config.CONTENT_DIR).intents


def flag_for(text: str) -> RedFlag | None:
    return lexicon().red_flag(text)


RED_FLAGS_EN: list[tuple[str, str | None]] = [
    ("I have chest pain", "chest_pain"),
    ("CHEST PAIN!!", "chest_pain"),
    ("my chest hurts", "chest_pain"),
    ("I think I'm having a heart attack", "chest_pain"),
    ("I can't breathe", "cannot_breathe"),
    ("I can\u2019t breathe", "cannot_breathe"),  # curly apostrophe
    # Short of breath is graded by the HF and COPD flows (URGENT; EMERGENCY at rest), not sent to 911 outright.
    ("it is hard to breathe", None),
    ("I don't want to live anymore", "suicidal_thoughts"),
    ("I wish I was dead", "suicidal_thoughts"),
    ("I fainted this morning", "fainting"),
    ("I want to kill myself", "suicidal_thoughts"),
    ("sometimes I want to die", "suicidal_thoughts"),
    ("no chest pain today", None),
    ("No chest pain", None),
    ("I don't have chest pain", None),
    ("I do not have any chest pain", None),
    ("without chest pain", None),
    ("183", None),
    ("yes", None),
    ("I feel fine", None),
    ("", None),
]

RED_FLAGS_ES: list[tuple[str, str | None]] = [
    ("dolor de pecho", "chest_pain"),
    ("Tengo DOLOR DE PECHO", "chest_pain"),
    ("me duele el pecho", "chest_pain"),
    ("presión en el pecho", "chest_pain"),  # accent folded
    ("no puedo respirar", "cannot_breathe"),  # the leading "no" is part of the phrase
    ("No puedo respirar!!", "cannot_breathe"),
    ("me falta el aire", None),  # the flows grade shortness of breath
    ("me quiero matar", "suicidal_thoughts"),
    ("no quiero vivir", "suicidal_thoughts"),
    ("estaria mejor muerta", "suicidal_thoughts"),
    ("quiero morir", "suicidal_thoughts"),
    ("quiero matarme", "suicidal_thoughts"),
    ("sin dolor de pecho", None),
    ("no tengo dolor de pecho", None),
    ("no quiero morir", None),
    ("me siento bien", None),
]


@pytest.mark.parametrize(("text", "reason"), RED_FLAGS_EN)
def test_red_flags_english(text: str, reason: str | None) -> None:
    flag = flag_for(text)
    assert (flag.reason if flag else None) == reason


@pytest.mark.parametrize(("text", "reason"), RED_FLAGS_ES)
def test_red_flags_spanish(text: str, reason: str | None) -> None:
    flag = flag_for(text)
    assert (flag.reason if flag else None) == reason


@pytest.mark.parametrize(
    ("text", "crisis_line"),
    [
        ("I want to kill myself", True),
        ("quiero morir", True),
        ("I have chest pain", False),
        ("no puedo respirar", False),
    ],
)
def test_crisis_line_only_for_suicidal_thoughts(text: str, crisis_line: bool) -> None:
    flag = flag_for(text)
    assert flag is not None
    assert flag.crisis_line is crisis_line


def test_lexicon_covers_both_languages_for_every_flag() -> None:
    reasons = {flag.reason for flag in lexicon().red_flags}
    assert {"chest_pain", "cannot_breathe", "suicidal_thoughts"} <= reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("No, no puedo respirar", "cannot_breathe"),
        ("Not good. Chest pain since last night", "chest_pain"),
        ("No. Quiero morir", "suicidal_thoughts"),
    ],
)
def test_red_flag_after_a_separate_no_sentence(text: str, reason: str) -> None:
    flag = flag_for(text)
    assert (flag.reason if flag else None) == reason


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ESPAÑOL", "es"),
        ("español", "es"),
        ("espanol", "es"),
        ("Spanish", "es"),
        (" Español. ", "es"),
        ("English", "en"),
        ("ENGLISH!", "en"),
        ("inglés", "en"),
        ("yes", None),
        ("no", None),
        ("I speak English", None),  # only a whole-message switch
        ("", None),
    ],
)
def test_language_switch(text: str, language: str | None) -> None:
    assert lexicon().language_switch(text) == language
    assert GlobalIntents().language_switch(text) == language  # switches need no lexicon
