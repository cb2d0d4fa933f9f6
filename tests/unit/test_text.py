"""Text normalisation used by answers, keywords and red-flag matching."""

from __future__ import annotations

import pytest

from app.flows.text import collapse_spaces, fold, squash, tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SÍ", "si"),
        ("Sí", "si"),
        ("si", "si"),
        ("ESPAÑOL", "espanol"),
        ("Corazón", "corazon"),
        ("Straße", "strasse"),  # casefold, not lower
        ("ÜBER", "uber"),
        ("", ""),
        ("182.5", "182.5"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes!!", ["yes"]),
        ("  No, thanks. ", ["no", "thanks"]),
        ("I can't breathe", ["i", "can't", "breathe"]),
        ("I can\u2019t breathe", ["i", "can't", "breathe"]),  # curly apostrophe from a phone keyboard
        ("¿Dolor de PECHO?", ["dolor", "de", "pecho"]),
        ("👍", ["👍"]),
        ("ok👍", ["ok", "👍"]),
        ("under_score", ["under", "score"]),
        ("...", []),
        ("", []),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "stop"),
        (" Stop. ", "stop"),
        ("S.T.O.P!", "stop"),
        ("opt out", "optout"),
        ("opt-out", "optout"),
        ("¡Párar!", "parar"),
        ("  ", ""),
    ],
)
def test_squash(text: str, expected: str) -> None:
    assert squash(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("  a \n\t b  ", "a b"), ("one", "one"), ("", "")])
def test_collapse_spaces(text: str, expected: str) -> None:
    assert collapse_spaces(text) == expected
