"""TCPA health-care exemption caps (FCC 15-72): at most 1 initiated message a day and 3 a week.

Programs that hold express consent set ``uses_healthcare_exemption = False`` and are not capped here.
Replies to a patient's own message are not "initiated" and never count.
"""

from __future__ import annotations

import datetime as dt
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
