"""Quiet hours, DST-stable wall-clock times and business days (DESIGN §4.2)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app.scheduling.calendar import (
    add_business_days,
    is_business_day,
    local_time_on,
    next_allowed,
    next_business_day_end,
    within_quiet_window,
)

NY = "America/New_York"
LA = "America/Los_Angeles"


def local(iso: str, tz: str) -> dt.datetime:
    """A wall-clock time in ``tz`` (naive ISO string), as an aware datetime."""
    return dt.datetime.fromisoformat(iso).replace(tzinfo=ZoneInfo(tz))


def utc(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------- quiet hours
QUIET_HOURS: list[tuple[str, str, int, int, str]] = [
    # (local now, tz, start, end, expected local wall time)
    ("2026-06-10T07:59", NY, 8, 21, "2026-06-10T08:00"),
    ("2026-06-10T00:00", NY, 8, 21, "2026-06-10T08:00"),
    ("2026-06-10T08:00", NY, 8, 21, "2026-06-10T08:00"),
    ("2026-06-10T12:00", NY, 8, 21, "2026-06-10T12:00"),
    ("2026-06-10T20:59", NY, 8, 21, "2026-06-10T20:59"),
    ("2026-06-10T21:00", NY, 8, 21, "2026-06-11T08:00"),
    ("2026-06-10T23:30", NY, 8, 21, "2026-06-11T08:00"),
    # A program may narrow the window to 08:00–20:00.
    ("2026-06-10T19:59", NY, 8, 20, "2026-06-10T19:59"),
    ("2026-06-10T20:00", NY, 8, 20, "2026-06-11T08:00"),
    ("2026-06-10T20:30", LA, 8, 20, "2026-06-11T08:00"),
    ("2026-06-10T07:00", LA, 8, 20, "2026-06-10T08:00"),
    # Across the month / year end.
    ("2026-12-31T22:00", NY, 8, 21, "2027-01-01T08:00"),
    # The night before spring-forward and fall-back: the next window start is still 08:00 local.
    ("2026-03-07T22:00", NY, 8, 21, "2026-03-08T08:00"),
    ("2026-10-31T22:00", NY, 8, 21, "2026-11-01T08:00"),
]


@pytest.mark.parametrize(("now", "tz", "start", "end", "expected"), QUIET_HOURS)
def test_next_allowed(now: str, tz: str, start: int, end: int, expected: str) -> None:
    result = next_allowed(local(now, tz), tz, start_hour=start, end_hour=end)
    assert result == local(expected, tz)
    assert result.utcoffset() is not None


def test_next_allowed_defaults_to_8_to_21() -> None:
    assert next_allowed(local("2026-06-10T21:00", NY), NY) == local("2026-06-11T08:00", NY)
    assert next_allowed(local("2026-06-10T07:59", NY), NY) == local("2026-06-10T08:00", NY)


def test_quiet_hours_are_the_patients_zone_not_the_servers() -> None:
    instant = utc("2026-06-10T14:30")  # 10:30 in New York, 07:30 in Los Angeles
    assert next_allowed(instant, NY) == instant
    assert next_allowed(instant, LA) == local("2026-06-10T08:00", LA)
    assert next_allowed(instant, LA) == utc("2026-06-10T15:00")


def test_evening_instant_differs_by_zone() -> None:
    instant = utc("2026-06-11T01:30")  # 21:30 in New York (closed), 18:30 in Los Angeles (open)
    assert next_allowed(instant, NY) == local("2026-06-11T08:00", NY)
    assert next_allowed(instant, LA) == instant


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        ("2026-06-10T07:59", NY, False),
        ("2026-06-10T08:00", NY, True),
        ("2026-06-10T20:59", NY, True),
        ("2026-06-10T21:00", NY, False),
    ],
)
def test_within_quiet_window(now: str, tz: str, expected: bool) -> None:
    assert within_quiet_window(local(now, tz), tz) is expected


# ------------------------------------------------------------------------------------------------ DST
def test_nine_am_stays_nine_am_across_spring_forward() -> None:
    before = local_time_on(dt.date(2026, 3, 7), 9, 0, NY)
    after = local_time_on(dt.date(2026, 3, 9), 9, 0, NY)
    assert before == utc("2026-03-07T14:00")  # EST, UTC-5
    assert after == utc("2026-03-09T13:00")  # EDT, UTC-4
    for moment in (before, after):
        assert moment.astimezone(ZoneInfo(NY)).time() == dt.time(9, 0)
    assert before.astimezone(ZoneInfo(NY)).utcoffset() - after.astimezone(ZoneInfo(NY)).utcoffset() == dt.timedelta(
        hours=-1
    )


def test_nine_am_on_the_day_of_the_change() -> None:
    assert local_time_on(dt.date(2026, 3, 8), 9, 0, NY) == utc("2026-03-08T13:00")
    assert local_time_on(dt.date(2026, 11, 1), 9, 0, NY) == utc("2026-11-01T14:00")


def test_nine_am_stays_nine_am_across_fall_back() -> None:
    before = local_time_on(dt.date(2026, 10, 31), 9, 0, NY)
    after = local_time_on(dt.date(2026, 11, 2), 9, 0, NY)
    assert before == utc("2026-10-31T13:00")
    assert after == utc("2026-11-02T14:00")
    assert after - before == dt.timedelta(days=2, hours=1)


def test_local_time_on_returns_utc() -> None:
    result = local_time_on(dt.date(2026, 6, 10), 9, 0, LA)
    assert result.utcoffset() == dt.timedelta(0)
    assert result == utc("2026-06-10T16:00")


def test_spring_forward_gap_gives_a_real_time() -> None:
    # 02:30 does not exist in New York on 2026-03-08.
    result = local_time_on(dt.date(2026, 3, 8), 2, 30, NY)
    wall = result.astimezone(ZoneInfo(NY))
    assert wall.date() == dt.date(2026, 3, 8)
    assert dt.time(3, 0) <= wall.time() < dt.time(4, 0)
    # A real instant: converting the wall time back gives the same instant.
    assert wall.replace(tzinfo=None).replace(tzinfo=ZoneInfo(NY)) == result


def test_fall_back_repeated_hour_is_the_first_one() -> None:
    result = local_time_on(dt.date(2026, 11, 1), 1, 30, NY)
    assert result == utc("2026-11-01T05:30")  # 01:30 EDT, before the clocks go back


# -------------------------------------------------------------------------------------- business days
@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2026, 11, 24), True),  # Tuesday
        (dt.date(2026, 11, 28), False),  # Saturday
        (dt.date(2026, 11, 29), False),  # Sunday
        (dt.date(2026, 11, 26), False),  # Thanksgiving
        (dt.date(2026, 11, 27), True),  # the Friday after is not a federal holiday
        (dt.date(2026, 12, 25), False),  # Christmas (Friday)
        (dt.date(2026, 1, 1), False),  # New Year's Day
        (dt.date(2026, 1, 19), False),  # Martin Luther King Jr. Day
        (dt.date(2026, 6, 19), False),  # Juneteenth
        (dt.date(2026, 7, 3), False),  # Independence Day observed (July 4 is a Saturday)
        (dt.date(2026, 11, 11), False),  # Veterans Day (Wednesday)
        (dt.date(2026, 12, 24), True),  # Christmas Eve is a working day
    ],
)
def test_is_business_day(day: dt.date, expected: bool) -> None:
    assert is_business_day(day) is expected


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        (dt.date(2026, 11, 23), 1, dt.date(2026, 11, 24)),  # Mon → Tue
        (dt.date(2026, 11, 20), 1, dt.date(2026, 11, 23)),  # Fri → Mon
        (dt.date(2026, 11, 21), 1, dt.date(2026, 11, 23)),  # Sat → Mon
        (dt.date(2026, 11, 25), 1, dt.date(2026, 11, 27)),  # Wed → Fri, skipping Thanksgiving
        (dt.date(2026, 11, 25), 2, dt.date(2026, 11, 30)),  # TCM: 2 business days after a Wed discharge
        (dt.date(2026, 12, 24), 1, dt.date(2026, 12, 28)),  # Thu → Mon, skipping Christmas and the weekend
        (dt.date(2026, 12, 31), 1, dt.date(2027, 1, 4)),  # across New Year's Day (a Friday in 2027)
        (dt.date(2026, 11, 23), 0, dt.date(2026, 11, 23)),
        (dt.date(2026, 11, 23), 5, dt.date(2026, 12, 1)),
    ],
)
def test_add_business_days(start: dt.date, count: int, expected: dt.date) -> None:
    assert add_business_days(start, count) == expected


@pytest.mark.parametrize(
    ("at", "tz", "expected_local"),
    [
        ("2026-11-23T10:00", NY, "2026-11-24T17:00"),  # Mon → Tue 17:00
        ("2026-11-20T16:00", NY, "2026-11-23T17:00"),  # Fri → Mon
        ("2026-11-25T09:00", NY, "2026-11-27T17:00"),  # the day before Thanksgiving → Fri
        ("2026-12-24T12:00", LA, "2026-12-28T17:00"),
    ],
)
def test_next_business_day_end(at: str, tz: str, expected_local: str) -> None:
    result = next_business_day_end(local(at, tz), tz)
    assert result == local(expected_local, tz)
    assert result.utcoffset() == dt.timedelta(0)


def test_next_business_day_end_uses_the_patients_local_date() -> None:
    # 2026-11-24 03:00 UTC is still Monday evening in Los Angeles but already Tuesday in UTC.
    instant = utc("2026-11-24T03:00")
    assert next_business_day_end(instant, LA) == local("2026-11-24T17:00", LA)
    assert next_business_day_end(instant, "UTC") == local("2026-11-25T17:00", "UTC")


def test_next_business_day_end_across_dst() -> None:
    # Friday before fall-back → Monday after it: 17:00 local is 22:00 UTC (EST).
    assert next_business_day_end(local("2026-10-30T12:00", NY), NY) == utc("2026-11-02T22:00")
