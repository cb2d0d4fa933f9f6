"""Schedule arithmetic (DESIGN §4.2): DST-stable occurrences, unique keys, stale work skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.scheduling.campaigns import Touch, load_campaign
from app.scheduling.occurrences import occurrence_key, occurrences, still_worth_sending

NY = "America/New_York"


def touch(**overrides: object) -> Touch:
    values: dict[str, object] = {
        "id": "daily-check",
        "flow": "hf-daily-check",
        "at_hour": 9,
        "at_minute": 0,
        "from_day": 0,
        "to_day": 4,
        "stale_after_minutes": 720,
    }
    values.update(overrides)
    return Touch(**values)  # type: ignore[arg-type]


def utc(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC)


def test_daily_nine_am_across_spring_forward() -> None:
    result = occurrences(touch(), dt.date(2026, 3, 6), NY)
    assert result == [
        utc("2026-03-06T14:00"),
        utc("2026-03-07T14:00"),
        utc("2026-03-08T13:00"),  # DST starts: same wall clock, one hour earlier in UTC
        utc("2026-03-09T13:00"),
        utc("2026-03-10T13:00"),
    ]
    assert {t.astimezone(ZoneInfo(NY)).time() for t in result} == {dt.time(9, 0)}


def test_daily_occurrences_across_fall_back() -> None:
    result = occurrences(touch(at_hour=8, at_minute=30, to_day=2), dt.date(2026, 10, 31), NY)
    assert result == [utc("2026-10-31T12:30"), utc("2026-11-01T13:30"), utc("2026-11-02T13:30")]


def test_day_range_is_inclusive_and_relative_to_the_anchor() -> None:
    result = occurrences(touch(from_day=2, to_day=3), dt.date(2026, 6, 1), "America/Chicago")
    assert result == [utc("2026-06-03T14:00"), utc("2026-06-04T14:00")]


def test_single_day_touch() -> None:
    assert occurrences(touch(from_day=2, to_day=2), dt.date(2026, 6, 1), NY) == [utc("2026-06-03T13:00")]


def test_weekly_touch() -> None:
    result = occurrences(touch(from_day=0, to_day=14, every_days=7), dt.date(2026, 6, 1), NY)
    assert result == [utc("2026-06-01T13:00"), utc("2026-06-08T13:00"), utc("2026-06-15T13:00")]


def test_same_touch_for_patients_in_different_zones() -> None:
    anchor = dt.date(2026, 6, 1)
    ny = occurrences(touch(to_day=0), anchor, NY)
    la = occurrences(touch(to_day=0), anchor, "America/Los_Angeles")
    assert la[0] - ny[0] == dt.timedelta(hours=3)


# ----------------------------------------------------------------------------------- occurrence keys
def test_occurrence_key_is_stable() -> None:
    due = utc("2026-03-08T13:00")
    # The key is the unique constraint that stops a touch being sent twice: it must not depend on anything
    # but its parts (no clock, no randomness), spelled exactly as the stored keys are.
    assert occurrence_key(7, "daily-check", 1, due) == "7:daily-check:v1:20260308T1300Z"


def test_occurrence_key_same_instant_in_another_zone_is_the_same_key() -> None:
    due = utc("2026-03-08T13:00")
    assert occurrence_key(7, "daily-check", 1, due) == occurrence_key(7, "daily-check", 1, due.astimezone(ZoneInfo(NY)))


def test_occurrence_key_differs_in_each_component() -> None:
    due = utc("2026-03-08T13:00")
    keys = {
        occurrence_key(7, "daily-check", 1, due),
        occurrence_key(8, "daily-check", 1, due),
        occurrence_key(7, "weekly-check", 1, due),
        occurrence_key(7, "daily-check", 2, due),
        occurrence_key(7, "daily-check", 1, due + dt.timedelta(days=1)),
        occurrence_key(7, "daily-check", 1, due + dt.timedelta(minutes=1)),
    }
    assert len(keys) == 6


def test_occurrence_keys_unique_over_a_whole_schedule() -> None:
    due_times = occurrences(touch(to_day=60), dt.date(2026, 2, 20), NY)  # crosses spring-forward
    keys = [occurrence_key(1, "daily-check", 3, due) for due in due_times]
    assert len(keys) == 61
    assert len(set(keys)) == 61


# ------------------------------------------------------------------------------------ stale rule
CHECK_IN = 12 * 60
MEDICATION = 2 * 60

STALENESS: list[tuple[str, int, dt.timedelta, bool]] = [
    ("check-in on time", CHECK_IN, dt.timedelta(0), True),
    ("check-in 11 h late", CHECK_IN, dt.timedelta(hours=11), True),
    ("check-in exactly 12 h late", CHECK_IN, dt.timedelta(hours=12), True),
    ("check-in 12 h 1 min late", CHECK_IN, dt.timedelta(hours=12, minutes=1), False),
    ("check-in a day late", CHECK_IN, dt.timedelta(days=1), False),
    ("medication on time", MEDICATION, dt.timedelta(0), True),
    ("medication 1 h 59 min late", MEDICATION, dt.timedelta(hours=1, minutes=59), True),
    ("medication exactly 2 h late", MEDICATION, dt.timedelta(hours=2), True),
    ("medication 2 h 1 min late", MEDICATION, dt.timedelta(hours=2, minutes=1), False),
    ("8 am dose at 3 pm", MEDICATION, dt.timedelta(hours=7), False),
    ("sweeper runs early", MEDICATION, dt.timedelta(minutes=-5), True),
]


@pytest.mark.parametrize(("case", "stale_after", "late_by", "expected"), STALENESS, ids=[c[0] for c in STALENESS])
def test_still_worth_sending(case: str, stale_after: int, late_by: dt.timedelta, expected: bool) -> None:
    scheduled = utc("2026-06-10T12:00")
    assert still_worth_sending(scheduled, scheduled + late_by, stale_after) is expected


def test_campaign_touch_defaults_to_the_12_hour_check_in_rule(tmp_path: Path) -> None:
    path = tmp_path / "demo-campaign.yaml"
    path.write_text(
        "id: demo-campaign\n"
        "title: {en: Demo, es: Demo}\n"
        "touches:\n"
        "  - {id: check, flow: hf-daily-check, at: '09:00', from_day: 0, to_day: 3}\n"
        "  - {id: dose, flow: hf-daily-check, at: '08:00', from_day: 0, to_day: 3, stale_after: 2h}\n",
        encoding="utf-8",
    )
    campaign = load_campaign(path, {"hf-daily-check"})
    check, dose = campaign.touches
    assert check.stale_after_minutes == 720
    assert dose.stale_after_minutes == 120
