"""TCPA health-care exemption caps (FCC 15-72): at most 1 initiated message a day and 3 a week.

They apply to patients whose consent basis is the health-care exemption (app/patients/consent.py);
patients who gave express consent (written or oral) are not capped here. Replies to a patient's own
message are not "initiated" and never count.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from zoneinfo import ZoneInfo

PER_DAY = 1
PER_WEEK = 3


def cap_reached(earlier_starts: Sequence[dt.datetime], now: dt.datetime, tz: str) -> str | None:
    """``daily_cap`` or ``weekly_cap`` when one more initiated outreach now would exceed the caps."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    same_day = sum(1 for t in earlier_starts if t.astimezone(zone).date() == today)
    if same_day >= PER_DAY:
        return "daily_cap"
    week_start = today - dt.timedelta(days=6)
    in_week = sum(1 for t in earlier_starts if week_start <= t.astimezone(zone).date() <= today)
    if in_week >= PER_WEEK:
        return "weekly_cap"
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
