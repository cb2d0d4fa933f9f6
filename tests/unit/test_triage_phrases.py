"""TEMPORARY (branch pipeline): the phrase-list triage adapter (app/triage/phrases.py) on the old red-flag
tables. The lead deletes this file with the adapter when the triage component lands (its own tests
replace these)."""

from __future__ import annotations

import functools

import pytest

from app import config
from app.content import load_content
from app.flows.intents import Triage


@functools.cache
def lexicon() -> Triage:
    # load_content only reads files under content/: no database, no network.
    return load_content(config.CONTENT_DIR).triage


def flag_for(text: str) -> str | None:
    found = lexicon().assess(text, None).emergency
    return found[0] if found else None


def crisis_for(text: str) -> bool:
    return lexicon().assess(text, None).crisis_line


RED_FLAGS_EN: list[tuple[str, str | None]] = [
    ("I have chest pain", "chest_pain"),
    ("CHEST PAIN!!", "chest_pain"),
    ("my chest hurts", "chest_pain"),
    ("I think I'm having a heart attack", "chest_pain"),
    ("I can't breathe", "breathing"),
    ("I can\u2019t breathe", "breathing"),  # curly apostrophe
    # Short of breath is graded by the HF and COPD flows (URGENT; EMERGENCY at rest), not sent to 911 outright.
    ("it is hard to breathe", None),
    ("I don't want to live anymore", "suicide"),
    ("I wish I was dead", "suicide"),
    ("I fainted this morning", "fainting"),
    ("I want to kill myself", "suicide"),
    ("sometimes I want to die", "suicide"),
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
    ("no puedo respirar", "breathing"),  # the leading "no" is part of the phrase
    ("No puedo respirar!!", "breathing"),
    ("me falta el aire", None),  # the flows grade shortness of breath
    ("me quiero matar", "suicide"),
    ("no quiero vivir", "suicide"),
    ("estaria mejor muerta", "suicide"),
    ("quiero morir", "suicide"),
    ("quiero matarme", "suicide"),
    ("sin dolor de pecho", None),
    ("no tengo dolor de pecho", None),
    ("no quiero morir", None),
    ("me siento bien", None),
]


@pytest.mark.parametrize(("text", "reason"), RED_FLAGS_EN)
def test_red_flags_english(text: str, reason: str | None) -> None:
    assert flag_for(text) == reason


@pytest.mark.parametrize(("text", "reason"), RED_FLAGS_ES)
def test_red_flags_spanish(text: str, reason: str | None) -> None:
    assert flag_for(text) == reason


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
    assert flag_for(text) is not None
    assert crisis_for(text) is crisis_line


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("No, no puedo respirar", "breathing"),
        ("Not good. Chest pain since last night", "chest_pain"),
        ("No. Quiero morir", "suicide"),
    ],
)
def test_red_flag_after_a_separate_no_sentence(text: str, reason: str) -> None:
    assert flag_for(text) == reason


@pytest.mark.parametrize(
    ("text", "emergency", "to_confirm"),
    [
        ("No I want to die", ("suicide",), ()),
        ("No but my chest hurts", ("chest_pain",), ()),
        ("i want to die, my chest hurts", ("suicide", "chest_pain"), ()),
        ("the chest pain is gone", (), ("chest_pain",)),
        ("se me quitó el dolor de pecho", (), ("chest_pain",)),
    ],
)
def test_adapter_verdicts_the_pipeline_tests_rely_on(
    text: str, emergency: tuple[str, ...], to_confirm: tuple[str, ...]
) -> None:
    verdict = lexicon().assess(text, None)
    assert (verdict.emergency, verdict.to_confirm) == (emergency, to_confirm)
