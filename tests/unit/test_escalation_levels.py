"""Escalation levels and their default SLAs (DESIGN §4.4)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.escalation.levels import EscalationLevel, higher, sla_due_at

OPENED = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
NEXT_DAY_END = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("EMERGENCY", "URGENT", "EMERGENCY"),
        ("URGENT", "EMERGENCY", "EMERGENCY"),
        ("URGENT", "ROUTINE", "URGENT"),
        ("ROUTINE", "URGENT", "URGENT"),
        ("ROUTINE", "INFO", "ROUTINE"),
        ("INFO", "ROUTINE", "ROUTINE"),
        ("INFO", "EMERGENCY", "EMERGENCY"),
        ("URGENT", "URGENT", "URGENT"),
    ],
)
def test_higher(a: str, b: str, expected: str) -> None:
    assert higher(a, b) == expected


def test_higher_accepts_the_enum() -> None:
    assert higher(EscalationLevel.ROUTINE, EscalationLevel.EMERGENCY) == EscalationLevel.EMERGENCY


def test_higher_rejects_an_unknown_level() -> None:
    with pytest.raises(ValueError):
        higher("CRITICAL", "INFO")


def test_levels_are_ordered() -> None:
    ordered = sorted(EscalationLevel, key=lambda level: level.rank, reverse=True)
    assert [level.value for level in ordered] == ["EMERGENCY", "URGENT", "ROUTINE", "INFO"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("EMERGENCY", OPENED + dt.timedelta(minutes=15)),
        ("URGENT", OPENED + dt.timedelta(hours=1)),
        ("ROUTINE", NEXT_DAY_END),
        ("INFO", None),
    ],
)
def test_sla_due_at(level: str, expected: dt.datetime | None) -> None:
    assert sla_due_at(level, OPENED, next_business_day_end=NEXT_DAY_END) == expected


def test_routine_without_a_business_day_end_has_no_due_time() -> None:
    assert sla_due_at("ROUTINE", OPENED, next_business_day_end=None) is None


def test_emergency_and_urgent_ignore_the_business_calendar() -> None:
    saturday_night = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)
    monday = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)
    assert sla_due_at("EMERGENCY", saturday_night, next_business_day_end=monday) == dt.datetime(
        2026, 11, 28, 3, 15, tzinfo=dt.UTC
    )
    assert sla_due_at("URGENT", saturday_night, next_business_day_end=monday) == dt.datetime(
        2026, 11, 28, 4, 0, tzinfo=dt.UTC
    )
