"""The TCM clock's rules (DESIGN §4.2, CPT 99495/99496): the deadline is the end of the 2nd business day
after discharge (weekends and US federal holidays skipped); met when reached, or by two documented timely
attempts; bot touches never count."""

from __future__ import annotations

import datetime as dt

import pytest

from app.programs.tcm import Attempt, tcm_deadline, tcm_status

NY = "America/New_York"


def _ny(text: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(NY)).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("discharged", "due_by"),
    [
        ("2026-11-30", "2026-12-02"),  # Monday -> Wednesday
        ("2026-12-03", "2026-12-07"),  # Thursday -> Monday
        ("2026-12-04", "2026-12-08"),  # Friday -> Tuesday
        ("2026-12-05", "2026-12-08"),  # Saturday -> Tuesday
        ("2026-11-25", "2026-11-30"),  # Wednesday before Thanksgiving (Thu 11-26) -> Monday
        ("2026-12-23", "2026-12-28"),  # Christmas Friday 12-25 skipped
        ("2027-01-15", "2027-01-20"),  # Friday before Martin Luther King Jr. Day
    ],
)
def test_the_deadline_is_the_end_of_the_second_business_day(discharged: str, due_by: str) -> None:
    deadline = tcm_deadline(dt.date.fromisoformat(discharged), NY)
    assert deadline == _ny(f"{due_by}T23:59:59")


def test_the_deadline_is_in_the_programs_time_zone() -> None:
    assert tcm_deadline(dt.date(2026, 11, 30), "America/Los_Angeles") == dt.datetime(
        2026, 12, 3, 7, 59, 59, tzinfo=dt.UTC
    )


DISCHARGED = _ny("2026-11-30T08:00")
DEADLINE = tcm_deadline(dt.date(2026, 11, 30), NY)
BEFORE = _ny("2026-12-01T10:00")
AFTER = _ny("2026-12-03T09:00")


def _status(attempts: list[Attempt], now: dt.datetime = BEFORE, cancelled: bool = False) -> tuple[str, str | None]:
    state = tcm_status(DISCHARGED, DEADLINE, attempts, now, cancelled=cancelled)
    return state.status, state.met_by


@pytest.mark.parametrize(
    ("attempts", "now", "expected"),
    [
        ([], BEFORE, ("due", None)),
        ([], AFTER, ("overdue", None)),
        ([Attempt("reached", "phone", _ny("2026-12-01T09:00"))], AFTER, ("met", "reached")),
        ([Attempt("voicemail", "phone", _ny("2026-12-01T09:00"))], BEFORE, ("due", None)),
        ([Attempt("voicemail", "phone", _ny("2026-12-01T09:00"))], AFTER, ("overdue", None)),
        (
            [
                Attempt("voicemail", "phone", _ny("2026-12-01T09:00")),
                Attempt("no_answer", "phone", _ny("2026-12-02T16:00")),
            ],
            AFTER,
            ("met", "two_attempts"),
        ),
        (
            [
                Attempt("wrong_number", "phone", _ny("2026-12-01T09:00")),
                Attempt("no_answer", "video", _ny("2026-12-02T23:59")),
            ],
            AFTER,
            ("met", "two_attempts"),
        ),
        # Late attempts do not count: the second one came after the deadline.
        (
            [
                Attempt("voicemail", "phone", _ny("2026-12-01T09:00")),
                Attempt("no_answer", "phone", _ny("2026-12-03T08:00")),
            ],
            AFTER,
            ("overdue", None),
        ),
        ([Attempt("reached", "phone", _ny("2026-12-03T08:00"))], AFTER, ("overdue", None)),
        # An attempt before the discharge (a pre-discharge call) is not post-discharge contact.
        ([Attempt("reached", "phone", _ny("2026-11-30T07:00"))], BEFORE, ("due", None)),
        # Bot touches never count (a completed SMS check-in is not interactive contact).
        ([Attempt("reached", "sms_bot", _ny("2026-12-01T09:00"))], AFTER, ("overdue", None)),
        (
            [
                Attempt("no_answer", "ivr", _ny("2026-12-01T09:00")),
                Attempt("no_answer", "ivr", _ny("2026-12-01T10:00")),
            ],
            AFTER,
            ("overdue", None),
        ),
    ],
)
def test_the_clock(attempts: list[Attempt], now: dt.datetime, expected: tuple[str, str | None]) -> None:
    assert _status(attempts, now) == expected


def test_a_cancelled_discharge_is_off_the_clock() -> None:
    assert _status([], AFTER, cancelled=True) == ("cancelled", None)
