"""Pure schedule arithmetic: when each occurrence of a touch falls, in UTC, for one patient."""

from __future__ import annotations

import datetime as dt

from app.scheduling.calendar import local_time_on
from app.scheduling.campaigns import Touch


def occurrences(touch: Touch, anchor: dt.date, tz: str) -> list[dt.datetime]:
    """Every scheduled time of ``touch``: its local wall-clock time on each day of its range."""
    return [
        local_time_on(anchor + dt.timedelta(days=day), touch.at_hour, touch.at_minute, tz)
        for day in range(touch.from_day, touch.to_day + 1, touch.every_days)
    ]


def occurrence_key(enrollment_id: int, touch_id: str, schedule_version: int, due: dt.datetime) -> str:
    return f"{enrollment_id}:{touch_id}:v{schedule_version}:{due.astimezone(dt.UTC):%Y%m%dT%H%MZ}"


def still_worth_sending(scheduled_for: dt.datetime, now: dt.datetime, stale_after_minutes: int) -> bool:
    """Stale work is skipped, not sent late ("take your 8 am dose" must not arrive at 3 pm)."""
    return now - scheduled_for <= dt.timedelta(minutes=stale_after_minutes)
