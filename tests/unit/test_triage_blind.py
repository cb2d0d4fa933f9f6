"""Red-flag triage on the blind sets (written before the component was read) and the general rules their misses
led to: each rule is checked on wordings that are in none of the labeled files."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.triage import Triage, load_triage
from app.triage.evaluation import evaluate, parse_rows
from app.triage.matcher import sound

ROOT = Path(__file__).resolve().parents[2]
BLIND = [Path(__file__).with_name("triage_blind.tsv"), Path(__file__).with_name("triage_blind2.tsv")]


@pytest.fixture(scope="module")
def triage() -> Triage:
    return load_triage(ROOT / "content" / "triage", ROOT)


@pytest.mark.parametrize("path", BLIND, ids=lambda p: p.name)
def test_targets_on_the_blind_sets(triage: Triage, path: Path) -> None:
    report = evaluate(triage, parse_rows(path.read_text(encoding="utf-8").splitlines(), str(path)))
    assert report.rows >= 100
    assert report.meets_targets, [(row.text, verdict.to_json()) for row, verdict in report.misses]


def level(triage: Triage, text: str) -> str | None:
    verdict = triage.assess(text)
    if verdict.emergency:
        return "EMERGENCY"
    return "CONFIRM" if verdict.confirm else None


RULES = [
    # a trigger standing in a pattern's gap modifies it; the phrase's own "no" plus "nada" is one negation
    ("my chest is not really hurting", None),
    ("el pecho ya no me duele", "CONFIRM"),
    ("no le entra nada de aire", "EMERGENCY"),
    ("his chest will not quit hurting", "EMERGENCY"),
    # laughter asks instead of alarming, except for suicide (988: every mention is taken seriously)
    ("my chest is killing me haha", "CONFIRM"),
    ("i want to die lmao", "EMERGENCY"),
    # spellings by ear (Spanish texting)
    ("kiere morirse", "EMERGENCY"),
    ("se esta aogando", "EMERGENCY"),
    # "with the new medicine" names a cause, not a "heart pills" object
    ("le duele el pecho con la medicina nueva", "EMERGENCY"),
    ("my chest hurts after the new pill", "EMERGENCY"),
    ("necesito las pastillas de los ataques", None),
    # "que" alone is no terminator: the relative clause keeps the past
    ("el infarto que le dio en 2018", None),
    # Spanish perfect tense: "no he" is a negation, not the English reply "No, he..."
    ("no he tenido ganas de matarme", None),
    ("No he can not breathe", "EMERGENCY"),
    # scheduled doses are not double doses
    ("me toca la insulina dos veces al dia", None),
    ("took my insulin twice by mistake and now i am so drowsy", "EMERGENCY"),
    # reported suicidal talk, past self-harm with intent to repeat
    ("my son was talking about hurting himself", "EMERGENCY"),
    ("me corte las venas hace un mes y voy a volver a hacerlo", "EMERGENCY"),
    # a child named by age; vision in one eye
    ("my 4 yr old swallowed some of my pills", "EMERGENCY"),
    ("all of a sudden my right eye went black", "EMERGENCY"),
    ("blurry in my left eye since the drops", "CONFIRM"),
]


@pytest.mark.parametrize(("text", "expected"), RULES)
def test_general_rules(triage: Triage, text: str, expected: str | None) -> None:
    assert level(triage, text) == expected, triage.assess(text).to_json()


def test_sound_key_joins_spellings_by_ear() -> None:
    assert sound("kiero") == sound("quiero")
    assert sound("desmalle") == sound("desmaye")
    assert sound("convulcion") == sound("convulsion")
    assert sound("pecho") != sound("peso")
