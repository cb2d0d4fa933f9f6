"""Business days and quiet hours, in the patient's own time zone.

Quiet hours: outreach only 08:00–21:00 local (47 CFR 64.1200(c)(1)); programs may narrow the window.
Business days: Monday to Friday, not a US federal holiday.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import holidays


@functools.lru_cache(maxsize=64)
def _us_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("US", years=year)


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _us_holidays(day.year)


def add_business_days(day: dt.date, count: int) -> dt.date:
    current = day
    added = 0
    while added < count:
        current += dt.timedelta(days=1)
        if is_business_day(current):
            added += 1
    return current


def next_business_day_end(at: dt.datetime, tz: str, end_hour: int = 17) -> dt.datetime:
    """The end (17:00 local) of the business day after ``at``: the ROUTINE callback deadline."""
    local = at.astimezone(ZoneInfo(tz))
    due_day = add_business_days(local.date(), 1)
    return dt.datetime.combine(due_day, dt.time(end_hour), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


def within_quiet_window(at: dt.datetime, tz: str, start_hour: int = 8, end_hour: int = 21) -> bool:
    local = at.astimezone(ZoneInfo(tz))
    return start_hour <= local.hour < end_hour


def next_allowed(at: dt.datetime, tz: str, start_hour: int = 8, end_hour: int = 21) -> dt.datetime:
    """``at`` if outreach is allowed then, else the start of the next allowed window (UTC)."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    if start_hour <= local.hour < end_hour:
        return at
    day = local.date() if local.hour < start_hour else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(start_hour), tzinfo=zone).astimezone(dt.UTC)


def local_time_on(day: dt.date, hour: int, minute: int, tz: str) -> dt.datetime:
    """A wall-clock time on a local date, as UTC: a 09:00 check-in stays 09:00 across DST."""
    zone = ZoneInfo(tz)
    naive = dt.datetime.combine(day, dt.time(hour, minute))
    local = naive.replace(tzinfo=zone, fold=0)
    # A time that does not exist (spring-forward gap) moves to the same offset's wall time after the gap.
    roundtrip = local.astimezone(dt.UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != naive:
        local = (naive + dt.timedelta(hours=1)).replace(tzinfo=zone)
    return local.astimezone(dt.UTC)
