"""Schedule rules as tables (issue 10 items 1-3): the campaign format, planning in the patient's own time,
what is planned when a time has passed or was already sent, the exemption caps over a plan, and the
shipped campaigns."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app import config
from app.content import load_content
from app.flows.loader import FlowError
from app.scheduling.campaigns import Campaign, load_campaign
from app.scheduling.caps import schedule_exceeds_caps
from app.scheduling.occurrences import local_today, plan, upcoming

NY, CHI, LA = "America/New_York", "America/Chicago", "America/Los_Angeles"
FLOWS = {"hf-daily-check", "med-reminder", "post-discharge", "phq2", "phq9", "copd-check", "appointment-reminder"}


def campaign(tmp_path: Path, body: str, name: str = "test-campaign") -> Campaign:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"id: {name}\ntitle: {{en: Test, es: Prueba}}\n{body}", encoding="utf-8")
    return load_campaign(path, FLOWS)


def local_times(occurrences: list[dt.datetime], tz: str) -> list[str]:
    return [o.astimezone(ZoneInfo(tz)).strftime("%a %m-%d %H:%M") for o in occurrences]


# ---------------------------------------------------------------------------------- planning, a table
PLANS: list[tuple[str, str, dict[str, str], list[str]]] = [
    (
        "daily at 09:00 for 3 days",
        "touches:\n  - {id: t, flow: hf-daily-check, at: '09:00', from_day: 0, to_day: 2}\n",
        {},
        ["Mon 11-23 09:00", "Tue 11-24 09:00", "Wed 11-25 09:00"],
    ),
    (
        "listed days",
        "touches:\n  - {id: t, flow: post-discharge, days: [1, 3], at: '10:00'}\n",
        {},
        ["Tue 11-24 10:00", "Thu 11-26 10:00"],
    ),
    (
        "weekly on Monday and Thursday",
        "touches:\n  - {id: t, flow: copd-check, every: week, weekdays: [mon, thu], from_day: 0, to_day: 10}\n",
        {},
        ["Mon 11-23 09:00", "Thu 11-26 09:00", "Mon 11-30 09:00", "Thu 12-03 09:00"],
    ),
    (
        "every 14 days",
        "touches:\n  - {id: t, flow: phq2, every_days: 14, from_day: 0, to_day: 30, at: '10:00'}\n",
        {},
        ["Mon 11-23 10:00", "Mon 12-07 10:00", "Mon 12-21 10:00"],
    ),
    (
        "twice a day from the campaign",
        "touches:\n  - {id: t, flow: med-reminder, at: ['20:00', '08:00'], from_day: 0, to_day: 1}\n",
        {},
        ["Mon 11-23 08:00", "Mon 11-23 20:00", "Tue 11-24 08:00", "Tue 11-24 20:00"],
    ),
    (
        "three doses a day from the patient's own times",
        "touches:\n  - {id: t, flow: med-reminder, at: '08:00', times: dose_times, from_day: 0, to_day: 0}\n",
        {"dose_times": "07:30,13:00,21:30"},
        ["Mon 11-23 07:30", "Mon 11-23 13:00", "Mon 11-23 21:30"],
    ),
    (
        "patient's times missing: the campaign's default",
        "touches:\n  - {id: t, flow: med-reminder, at: '08:00', times: dose_times, from_day: 0, to_day: 0}\n",
        {},
        ["Mon 11-23 08:00"],
    ),
    (
        "before the anchor (an appointment date)",
        "touches:\n  - {id: t, flow: appointment-reminder, days: [-2, -1], at: '10:00'}\n",
        {},
        ["Sat 11-21 10:00", "Sun 11-22 10:00"],
    ),
    (
        "hours after the anchor moment",
        "touches:\n  - {id: t, flow: post-discharge, after_hours: 48}\n",
        {},
        ["Wed 11-25 14:00"],
    ),
    (
        "a DST change keeps the wall-clock time (fall back on 1 November)",
        "touches:\n  - {id: t, flow: hf-daily-check, at: '09:00', from_day: 0, to_day: 2}\n",
        {"anchor": "2026-10-31"},
        ["Sat 10-31 09:00", "Sun 11-01 09:00", "Mon 11-02 09:00"],
    ),
]


@pytest.mark.parametrize(("case", "body", "given", "expected"), PLANS, ids=[p[0] for p in PLANS])
def test_plan(tmp_path: Path, case: str, body: str, given: dict[str, str], expected: list[str]) -> None:
    anchor = dt.date.fromisoformat(given.pop("anchor", "2026-11-23"))  # a Monday
    moment = dt.datetime(2026, 11, 23, 14, 0, tzinfo=ZoneInfo(CHI))
    planned = plan(campaign(tmp_path, body), anchor, CHI, variables=given, anchor_moment=moment)
    assert local_times([o.due for o in planned], CHI) == expected


def test_the_same_plan_in_three_time_zones_is_the_same_wall_clock(tmp_path: Path) -> None:
    spec = campaign(tmp_path, "touches:\n  - {id: t, flow: hf-daily-check, at: '09:00', from_day: 0, to_day: 0}\n")
    dues = {tz: plan(spec, dt.date(2026, 11, 23), tz)[0].due for tz in (NY, CHI, LA)}
    assert dues[CHI] - dues[NY] == dt.timedelta(hours=1)
    assert dues[LA] - dues[NY] == dt.timedelta(hours=3)


CONDITIONS: list[tuple[str, list[str], list[str]]] = [
    ("heart failure gets the HF check", ["heart_failure"], ["first", "hf"]),
    ("diabetes only: no HF check", ["diabetes"], ["first"]),
    ("no conditions", [], ["first"]),
]


@pytest.mark.parametrize(("case", "conditions", "touches"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition_filter(tmp_path: Path, case: str, conditions: list[str], touches: list[str]) -> None:
    spec = campaign(
        tmp_path,
        "touches:\n"
        "  - {id: first, flow: post-discharge, day: 1}\n"
        "  - {id: hf, flow: hf-daily-check, day: 7, conditions: [heart_failure]}\n",
    )
    assert [o.touch.id for o in plan(spec, dt.date(2026, 11, 23), NY, conditions=conditions)] == touches


def test_a_campaign_level_condition_filter_plans_nothing_for_other_patients(tmp_path: Path) -> None:
    spec = campaign(tmp_path, "conditions: [copd]\ntouches:\n  - {id: t, flow: copd-check, day: 0}\n")
    assert plan(spec, dt.date(2026, 11, 23), NY, conditions=["heart_failure"]) == []
    assert len(plan(spec, dt.date(2026, 11, 23), NY, conditions=["copd"])) == 1


def test_a_touch_anchored_on_an_event_waits_for_it(tmp_path: Path) -> None:
    spec = campaign(
        tmp_path,
        "touches:\n"
        "  - {id: screen, flow: phq2, day: 0, at: '10:00'}\n"
        "  - {id: repeat, flow: phq9, anchor: positive_screen, every_days: 21, from_day: 21, to_day: 42,"
        " at: '10:00'}\n",
    )
    before = plan(spec, dt.date(2026, 11, 23), NY)
    after = plan(spec, dt.date(2026, 11, 23), NY, events={"positive_screen": "2026-11-30"})
    assert [o.touch.id for o in before] == ["screen"]
    assert local_times([o.due for o in after if o.touch.id == "repeat"], NY) == ["Mon 12-21 10:00", "Mon 01-11 10:00"]


# --------------------------------------------------------------- what is stored as pending, a table
DAILY = "touches:\n  - {id: t, flow: hf-daily-check, at: '09:00', from_day: 0, to_day: 2}\n"
UPCOMING: list[tuple[str, str, str, bool, list[str]]] = [
    (
        "enrolled at 08:00: today's 09:00 still goes",
        DAILY,
        "08:00",
        False,
        ["11-23 09:00", "11-24 09:00", "11-25 09:00"],
    ),
    (
        "enrolled at 19:30: starts tomorrow, no 'good morning' at night",
        DAILY,
        "19:30",
        False,
        ["11-24 09:00", "11-25 09:00"],
    ),
    ("enrolled at 19:30, campaign says start now", DAILY, "19:30", True, ["11-23 19:30", "11-24 09:00", "11-25 09:00"]),
    ("enrolled at 22:00, start now, but stale (12 h) is not", DAILY, "22:00", True, ["11-24 09:00", "11-25 09:00"]),
]


@pytest.mark.parametrize(("case", "body", "at", "send_now", "expected"), UPCOMING, ids=[u[0] for u in UPCOMING])
def test_upcoming(tmp_path: Path, case: str, body: str, at: str, send_now: bool, expected: list[str]) -> None:
    hour, minute = (int(x) for x in at.split(":"))
    now = dt.datetime(2026, 11, 23, hour, minute, tzinfo=ZoneInfo(NY)).astimezone(dt.UTC)
    planned = plan(campaign(tmp_path, body), dt.date(2026, 11, 23), NY)
    chosen = upcoming(planned, now, send_now=send_now, already=set())
    assert [due.astimezone(ZoneInfo(NY)).strftime("%m-%d %H:%M") for _, due in chosen] == expected


def test_an_occurrence_already_sent_that_day_is_not_planned_again_after_a_zone_change(tmp_path: Path) -> None:
    spec = campaign(tmp_path, DAILY)
    # Sent at 09:00 New York; the patient moves to Los Angeles at 10:00 New York (07:00 there).
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo(NY))
    planned = plan(spec, dt.date(2026, 11, 23), LA)
    chosen = upcoming(planned, now, send_now=False, already={("t", dt.date(2026, 11, 23), 0)})
    assert local_times([due for _, due in chosen], LA) == ["Tue 11-24 09:00", "Wed 11-25 09:00"]


LOCAL_TODAY: list[tuple[str, str, str, str]] = [
    ("19:00 Pacific is still that day (UTC is the next)", "2026-11-25T03:00", LA, "2026-11-24"),
    ("00:30 New York", "2026-11-25T05:30", NY, "2026-11-25"),
    ("23:59 Chicago", "2026-11-25T05:59", CHI, "2026-11-24"),
]


@pytest.mark.parametrize(("case", "utc", "tz", "expected"), LOCAL_TODAY, ids=[c[0] for c in LOCAL_TODAY])
def test_local_today(case: str, utc: str, tz: str, expected: str) -> None:
    now = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
    assert local_today(now, tz) == dt.date.fromisoformat(expected)


# ---------------------------------------------------------------------- exemption caps over a plan
def _days(*days: int, hour: int = 15) -> list[dt.datetime]:
    return [dt.datetime(2026, 11, 23, hour, tzinfo=dt.UTC) + dt.timedelta(days=d) for d in days]


CAPS: list[tuple[str, list[dt.datetime], tuple[str, str] | None]] = [
    ("nothing planned", [], None),
    ("three a week", _days(0, 2, 4, 7, 9, 11), None),
    ("daily", _days(*range(7)), ("weekly_cap", "2026-11-26")),
    ("two on one day", _days(0) + _days(0, hour=22), ("daily_cap", "2026-11-23")),
    ("four within seven days", _days(0, 1, 2, 6), ("weekly_cap", "2026-11-29")),
    ("four spread over eight days", _days(0, 1, 2, 7), None),
    # 04:30 UTC on the 24th is still the 23rd in Chicago: two that local day.
    (
        "the local day counts, not UTC",
        [*_days(0), dt.datetime(2026, 11, 24, 4, 30, tzinfo=dt.UTC)],
        ("daily_cap", "2026-11-23"),
    ),
]


@pytest.mark.parametrize(("case", "planned", "expected"), CAPS, ids=[c[0] for c in CAPS])
def test_schedule_exceeds_caps(case: str, planned: list[dt.datetime], expected: tuple[str, str] | None) -> None:
    found = schedule_exceeds_caps(planned, CHI)
    assert (None if found is None else (found[0], found[1].isoformat())) == expected


# ------------------------------------------------------------------ the format's errors (file, line)
ERRORS: list[tuple[str, str, int, str]] = [
    ("unknown touch field", "touches:\n  - id: t\n    flow: phq2\n    when: later\n", 6, "unknown field 'when'"),
    ("unknown campaign field", "colour: blue\ntouches:\n  - {id: t, flow: phq2}\n", 3, "unknown field 'colour'"),
    ("bad time", "touches:\n  - id: t\n    flow: phq2\n    at: '25:00'\n", 6, "not a time"),
    ("unknown flow", "touches:\n  - id: t\n    flow: nope\n", 5, "unknown flow 'nope'"),
    ("bad weekday", "touches:\n  - id: t\n    flow: phq2\n    every: week\n    weekdays: [funday]\n", 7, "funday"),
    ("weekdays without weekly", "touches:\n  - id: t\n    flow: phq2\n    weekdays: [mon]\n", 6, "every: week"),
    ("unknown event", "stop_on: [moved]\ntouches:\n  - {id: t, flow: phq2}\n", 3, "unknown 'moved'"),
    ("unknown channel", "channels: [fax]\ntouches:\n  - {id: t, flow: phq2}\n", 3, "unknown 'fax'"),
    ("day after the duration", "duration_days: 10\ntouches:\n  - id: t\n    flow: phq2\n    day: 11\n", 5, "duration"),
    ("unknown per-patient times", "touches:\n  - id: t\n    flow: phq2\n    times: lunch\n", 6, "times must name"),
    ("unless what", "touches:\n  - id: t\n    flow: phq2\n    unless: tired\n", 6, "unless must be"),
    ("same touch id twice", "touches:\n  - {id: t, flow: phq2}\n  - {id: t, flow: phq9}\n", 5, "used twice"),
]


@pytest.mark.parametrize(("case", "body", "line", "reason"), ERRORS, ids=[e[0] for e in ERRORS])
def test_campaign_errors_name_the_line_and_the_reason(
    tmp_path: Path, case: str, body: str, line: int, reason: str
) -> None:
    with pytest.raises(FlowError) as caught:
        campaign(tmp_path, body)
    assert f"test-campaign.yaml:{line}:" in str(caught.value)
    assert reason in str(caught.value)


# --------------------------------------------------------------------------- the shipped campaigns
def test_the_shipped_campaigns_and_the_old_ids() -> None:
    library = load_content(config.CONTENT_DIR)
    assert {
        "post-discharge-30d",
        "hf-remote-monitoring",
        "diabetes-monitoring",
        "copd-monitoring",
        "medication-adherence",
        "behavioral-health",
        "appointment-reminders",
    } <= set(library.campaigns)
    old = library.campaign("post-discharge-tcm")
    assert old is not None and old.id == "post-discharge-30d"
    assert library.campaigns["post-discharge-30d"].channels == ("voice", "sms")


def test_post_discharge_30d_for_a_heart_failure_patient() -> None:
    spec = load_content(config.CONTENT_DIR).campaigns["post-discharge-30d"]
    planned = plan(spec, dt.date(2026, 11, 20), CHI, conditions=["heart_failure"])
    days = [((o.local_day - dt.date(2026, 11, 20)).days, o.touch.flow) for o in planned]
    assert days == [
        (1, "post-discharge"),
        (2, "post-discharge"),
        (2, "education:medicines-after-discharge"),
        (3, "post-discharge"),
        (6, "education:when-to-call"),
        (7, "hf-daily-check"),
        (14, "hf-daily-check"),
        (30, "phq2"),
    ]
    # Check-ins at 10:00; the lessons (issue 12 item 5) in the afternoon.
    assert {(o.touch.education is None, o.due.astimezone(ZoneInfo(CHI)).strftime("%H:%M")) for o in planned} == {
        (True, "10:00"),
        (False, "15:00"),
    }
    assert spec.touch("red-call-retry") is not None and spec.touch("red-call-retry").unless == "reached"  # type: ignore[union-attr]


def test_medication_adherence_any_number_of_doses() -> None:
    spec = load_content(config.CONTENT_DIR).campaigns["medication-adherence"]
    planned = plan(spec, dt.date(2026, 11, 20), NY, variables={"dose_times": "08:00,12:00,16:00,20:00"})
    first_day = [o for o in planned if o.local_day == dt.date(2026, 11, 20)]
    assert local_times([o.due for o in first_day], NY) == [
        "Fri 11-20 08:00",
        "Fri 11-20 12:00",
        "Fri 11-20 16:00",
        "Fri 11-20 20:00",
    ]


def test_behavioral_health_phq2_every_14_days_and_phq9_after_a_positive_screen() -> None:
    spec = load_content(config.CONTENT_DIR).campaigns["behavioral-health"]
    planned = plan(spec, dt.date(2026, 11, 2), NY, events={"positive_screen": "2026-11-16"})
    phq2 = [o.local_day for o in planned if o.touch.flow == "phq2"]
    phq9 = [o.local_day for o in planned if o.touch.flow == "phq9"]
    assert [(b - a).days for a, b in itertools.pairwise(phq2)] == [14] * (len(phq2) - 1)
    assert phq9[0] == dt.date(2026, 12, 7)  # 3 weeks after the positive screen
    assert all(14 <= (b - a).days <= 28 for a, b in itertools.pairwise(phq9))


def test_diabetes_and_copd_monitoring_fit_the_exemption_caps_alone() -> None:
    library = load_content(config.CONTENT_DIR)
    for name, condition in (("diabetes-monitoring", "diabetes"), ("copd-monitoring", "copd")):
        planned = plan(library.campaigns[name], dt.date(2026, 11, 23), NY, conditions=[condition])
        assert planned and schedule_exceeds_caps([o.due for o in planned], NY) is None, name


def test_a_due_occurrence_pending_when_the_schedule_is_derived_again_stays_due(tmp_path: Path) -> None:
    spec = campaign(tmp_path, DAILY)
    now = dt.datetime(2026, 11, 23, 9, 0, 20, tzinfo=ZoneInfo(NY))  # 20 s after the 09:00 check-in was due
    planned = plan(spec, dt.date(2026, 11, 23), NY)
    dropped = upcoming(planned, now, send_now=False, already=set())
    kept = upcoming(planned, now, send_now=False, already=set(), overdue=frozenset({("t", dt.date(2026, 11, 23))}))
    assert len(kept) == len(dropped) + 1
    assert kept[0][1] == dt.datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo(NY))


def test_channel_order_of_a_touch_falls_back_to_the_campaigns(tmp_path: Path) -> None:
    spec = campaign(
        tmp_path,
        "channels: [voice, sms]\ntouches:\n"
        "  - {id: call, flow: post-discharge, day: 1}\n"
        "  - {id: text, flow: phq2, day: 2, channels: [sms]}\n",
    )
    assert spec.channel_order("call") == ("voice", "sms")
    assert spec.channel_order("text") == ("sms",)
