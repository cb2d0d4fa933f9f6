"""``Escalation.reasons`` (app/escalation/service.py ``_reasons``): every distinct reason that fed one task,
in order, with the signs of a group (``detail["signs"]``, see ``Rule.group``) each shown as a reason."""

from __future__ import annotations

from typing import Any

import pytest

from app.escalation.service import _reasons

CASES: list[tuple[str, list[str], str, dict[str, Any], list[str]]] = [
    ("a new task, no group", [], "unreachable", {}, ["unreachable"]),
    ("a new task, the first sign of a group", [], "weight_gain", {"signs": ["weight_gain"]}, ["weight_gain"]),
    (
        "a joined sign adds its own reason",
        ["weight_gain"],
        "weight_gain",
        {"signs": ["weight_gain", "dizziness"]},
        ["weight_gain", "dizziness"],
    ),
    (
        "signs are cumulative: nothing repeats, order kept",
        ["weight_gain", "dizziness"],
        "weight_gain",
        {"signs": ["weight_gain", "dizziness", "swelling"]},
        ["weight_gain", "dizziness", "swelling"],
    ),
    (
        "reasons already known stay first",
        ["swelling"],
        "weight_gain",
        {"signs": ["weight_gain", "dizziness"]},
        ["swelling", "weight_gain", "dizziness"],
    ),
    ("the same reason again adds nothing", ["chest_pain"], "chest_pain", {"evidence": "x"}, ["chest_pain"]),
    (
        "an emergency sign lists the signs found before it",
        [],
        "chest_pain",
        {"signs": ["swelling", "chest_pain"]},
        ["chest_pain", "swelling"],
    ),
    ("signs that are not a list are ignored", [], "weight_gain", {"signs": "dizziness"}, ["weight_gain"]),
    ("no signs key", ["a"], "b", {"sign_count": 3}, ["a", "b"]),
]


@pytest.mark.parametrize(("case", "known", "reason", "detail", "expected"), CASES, ids=[c[0] for c in CASES])
def test_reasons(case: str, known: list[str], reason: str, detail: dict[str, Any], expected: list[str]) -> None:
    assert _reasons(known, reason, detail) == expected


def test_the_known_list_is_not_changed_in_place() -> None:
    known = ["weight_gain"]
    _reasons(known, "weight_gain", {"signs": ["dizziness"]})
    assert known == ["weight_gain"]  # a new list, so SQLAlchemy sees the JSON column change
