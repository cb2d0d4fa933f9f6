"""What the patient hears after NO to "right now?", by kind of reason (issue 7 tester findings)."""

from __future__ import annotations

import pytest

from app.flows.safety import confirm_no_text, confirm_question, emergency_text, not_now_safety_text
from app.triage.verdict import Finding

CHEST = Finding("chest_pain", "confirm")
SUICIDE = Finding("suicide", "confirm", crisis_line=True)
OVERDOSE = Finding("overdose", "confirm", poison_control=True)
VIOLENCE = Finding("interpersonal_violence", "confirm", violence_line=True, evidence="my husband hits me")


@pytest.mark.parametrize(
    ("findings", "language", "wanted", "unwanted"),
    [
        ([CHEST], "en", ["comes back", "911"], ["988", "Poison"]),
        ([CHEST], "es", ["Si vuelve", "911"], ["988", "Envenenamientos"]),
        ([SUICIDE], "en", ["988", "911"], ["comes back", "Poison"]),
        ([SUICIDE], "es", ["988", "oprima 2", "AYUDA", "911"], ["Si vuelve"]),
        ([OVERDOSE], "en", ["Poison Control", "1-800-222-1222", "911"], ["comes back", "988"]),
        ([OVERDOSE], "es", ["Control de Envenenamientos", "1-800-222-1222", "911"], ["Si vuelve", "988"]),
        ([CHEST, SUICIDE], "en", ["comes back", "988"], ["Poison"]),
        ([VIOLENCE], "en", ["911", "1-800-799-7233", "START to 88788"], ["comes back", "988", "Poison", "husband"]),
        ([VIOLENCE], "es", ["911", "1-800-799-7233", "START", "88788"], ["Si vuelve", "988", "husband"]),
    ],
)
def test_not_now_text_by_kind(findings: list[Finding], language: str, wanted: list[str], unwanted: list[str]) -> None:
    for text in (not_now_safety_text(language, findings), confirm_no_text(language, findings)):
        for part in wanted:
            assert part in text
        for part in unwanted:
            assert part not in text


@pytest.mark.parametrize("language", ["en", "es"])
def test_violence_emergency_says_911_and_the_hotline(language: str) -> None:
    text = emergency_text(language, crisis_line=False, violence_line=True)
    assert "911" in text and "1-800-799-7233" in text and "88788" in text and "988" not in text
    assert "1-800-799-7233" not in emergency_text(language, crisis_line=False)


def test_violence_right_now_question_asks_about_danger() -> None:
    assert confirm_question(["interpersonal_violence"], "en").startswith("Are you in danger right now?")


def test_triage_marks_violence_for_the_hotline() -> None:
    from pathlib import Path

    from app.triage import load_triage

    root = Path(__file__).resolve().parents[2]
    triage = load_triage(root / "content" / "triage", root)
    assert triage.assess("my husband hits me").violence_line
    assert triage.assess("he says he will kill me").violence_line
    assert not triage.assess("i want to kill myself").violence_line
