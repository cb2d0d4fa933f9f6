"""Caps on initiated outreach: the TCPA health-care exemption's (FCC 15-72: at most 1 initiated message a
day and 3 a week) and a program's own (``programs.daily_cap`` / ``weekly_cap``, DESIGN §4.2: "programs with
express consent set their own caps").

- A patient whose consent basis is the health-care exemption (app/patients/consent.py) is capped at 1 a
  day and 3 a week whatever the program says; a program cap below that (2 a week, say) applies too.
- A patient who gave express consent (written or oral) is capped only by the program's caps, when set.

Replies to a patient's own message are not "initiated" and never count.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

PER_DAY = 1
PER_WEEK = 3


@dataclass(frozen=True)
class Limits:
    """Initiated touches allowed per local day and per 7-day window (None = no limit), and the reason code
    each one writes on the timeline when it skips a touch (``daily_cap`` / ``weekly_cap`` for the
    exemption's, ``program_daily_cap`` / ``program_weekly_cap`` for a program's own)."""

    per_day: int | None
    per_week: int | None
    day_code: str = "daily_cap"
    week_code: str = "weekly_cap"


#: The health-care exemption's caps (FCC 15-72).
EXEMPTION = Limits(PER_DAY, PER_WEEK)


def limits_for(exemption: bool, daily_cap: int | None, weekly_cap: int | None) -> Limits | None:
    """The caps for one patient: ``exemption`` (the patient's consent basis is the health-care exemption)
    and the program's own ``daily_cap`` / ``weekly_cap`` (None = not set). An exemption patient never gets
    more than 1 a day or 3 a week, however large the program's caps; a smaller program cap wins. None when
    nothing caps the patient."""
    day: tuple[int | None, str] = (daily_cap, "program_daily_cap")
    week: tuple[int | None, str] = (weekly_cap, "program_weekly_cap")
    if exemption:
        if daily_cap is None or daily_cap >= PER_DAY:
            day = (PER_DAY, "daily_cap")
        if weekly_cap is None or weekly_cap >= PER_WEEK:
            week = (PER_WEEK, "weekly_cap")
    if day[0] is None and week[0] is None:
        return None
    return Limits(day[0], week[0], day[1], week[1])


def cap_reached(
    earlier_starts: Sequence[dt.datetime], now: dt.datetime, tz: str, limits: Limits = EXEMPTION
) -> str | None:
    """The reason code (``limits.day_code`` / ``week_code``) when one more initiated outreach now would
    exceed ``limits`` in the patient's zone ``tz``; None when it fits. ``earlier_starts``: UTC moments of
    earlier initiated touches (the last 7 local days are enough)."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    same_day = sum(1 for t in earlier_starts if t.astimezone(zone).date() == today)
    if limits.per_day is not None and same_day >= limits.per_day:
        return limits.day_code
    week_start = today - dt.timedelta(days=6)
    in_week = sum(1 for t in earlier_starts if week_start <= t.astimezone(zone).date() <= today)
    if limits.per_week is not None and in_week >= limits.per_week:
        return limits.week_code
    return None


def schedule_exceeds_caps(planned: Sequence[dt.datetime], tz: str) -> tuple[str, dt.date] | None:
    """Whether a planned schedule needs more than the exemption allows: ``("daily_cap", day)`` when a
    local day has more than 1 touch, ``("weekly_cap", day)`` when a 7-day window ending on ``day`` has
    more than 3; None when it fits."""
    zone = ZoneInfo(tz)
    per_day = Counter(t.astimezone(zone).date() for t in planned)
    for day, count in sorted(per_day.items()):
        if count > PER_DAY:
            return "daily_cap", day
    for day in sorted(per_day):
        in_week = sum(n for d, n in per_day.items() if day - dt.timedelta(days=6) <= d <= day)
        if in_week > PER_WEEK:
            return "weekly_cap", day
    return None
