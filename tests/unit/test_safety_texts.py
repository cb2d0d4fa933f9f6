"""What the patient hears after NO to "right now?", by kind of reason (issue 7 tester findings)."""

from __future__ import annotations

import pytest

from app.flows.safety import confirm_no_text, not_now_safety_text
from app.triage.verdict import Finding

CHEST = Finding("chest_pain", "confirm")
SUICIDE = Finding("suicide", "confirm", crisis_line=True)
OVERDOSE = Finding("overdose", "confirm", poison_control=True)


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
    ],
)
def test_not_now_text_by_kind(findings: list[Finding], language: str, wanted: list[str], unwanted: list[str]) -> None:
    for text in (not_now_safety_text(language, findings), confirm_no_text(language, findings)):
        for part in wanted:
            assert part in text
        for part in unwanted:
            assert part not in text
