"""Pure schedule arithmetic: when each occurrence of a touch falls, in UTC, for one patient.

Every rule here is a plain function over data (no SQL): the patient's time zone, the anchor date, the
patient's own times and the campaign's touches go in; occurrences come out. DST is handled by computing
wall-clock times on local dates (a 09:00 check-in stays 09:00, DESIGN §4.2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from app.scheduling.calendar import local_time_on
from app.scheduling.campaigns import Campaign, Touch, parse_times


@dataclass(frozen=True)
class Occurrence:
    """One planned send: ``due`` (UTC); ``local_day`` and ``slot`` (the n-th time that day) identify it
    across re-derivations, so a dose already sent is not sent again after a time-zone change."""

    touch: Touch
    due: dt.datetime
    local_day: dt.date
    slot: int


#: The patient's preferred time of day (asked by the welcome flow): the local hours it spans [start, end)
#: and the time a check-in moves to when the campaign's own time falls outside it.
PREFERRED_WINDOWS: Mapping[str, tuple[int, int, tuple[int, int]]] = {
    "morning": (8, 12, (9, 0)),
    "afternoon": (12, 17, (14, 0)),
    "evening": (17, 21, (18, 0)),
}


def touch_times(
    touch: Touch, variables: Mapping[str, Any] | None, preferred_time: str | None = None
) -> tuple[tuple[int, int], ...]:
    """The local times of day: the patient's own (``dose_times`` in the enrollment) or the touch's.

    A touch at one time of day (a check-in, not a dose) moves into the patient's ``preferred_time``
    window (``PREFERRED_WINDOWS``: morning 09:00, afternoon 14:00, evening 18:00) unless its own time
    already falls inside it; dose times and several-times-a-day touches never move."""
    if touch.times_variable and variables and variables.get(touch.times_variable):
        try:
            return parse_times(str(variables[touch.times_variable]))
        except ValueError:
            pass  # validated on input; an old bad value falls back to the campaign's times
    times = touch.default_times
    window = PREFERRED_WINDOWS.get(preferred_time or "")
    if window is None or touch.times_variable or len(times) != 1:
        return times
    start, end, moved = window
    if start <= times[0][0] < end:
        return times
    return (moved,)


def touch_days(touch: Touch, base: dt.date) -> list[int]:
    """Days after ``base`` the touch falls on: listed days, or the range stepped by ``every_days`` and
    filtered to the listed weekdays."""
    if touch.days:
        return list(touch.days)
    if touch.weekdays:
        return [
            day
            for day in range(touch.from_day, touch.to_day + 1)
            if (base + dt.timedelta(days=day)).weekday() in touch.weekdays
        ]
    return list(range(touch.from_day, touch.to_day + 1, touch.every_days))


def touch_occurrences(
    touch: Touch,
    anchor: dt.date,
    tz: str,
    *,
    variables: Mapping[str, Any] | None = None,
    events: Mapping[str, Any] | None = None,
    anchor_moment: dt.datetime | None = None,
    preferred_time: str | None = None,
) -> list[Occurrence]:
    """Every occurrence of one touch for one patient (no filtering by "now")."""
    zone = ZoneInfo(tz)
    base = anchor
    if touch.anchor_event:
        when = (events or {}).get(touch.anchor_event)
        if not when:
            return []  # the event has not happened: nothing is scheduled yet
        base = dt.date.fromisoformat(str(when)[:10])
    if touch.after_hours is not None:
        start = anchor_moment or local_time_on(base, 0, 0, tz)
        due = start.astimezone(dt.UTC) + dt.timedelta(hours=touch.after_hours)
        return [Occurrence(touch, due, due.astimezone(zone).date(), 0)]
    times = touch_times(touch, variables, preferred_time)
    result = []
    for day in touch_days(touch, base):
        local_day = base + dt.timedelta(days=day)
        for slot, (hour, minute) in enumerate(times):
            result.append(Occurrence(touch, local_time_on(local_day, hour, minute, tz), local_day, slot))
    return result


def occurrences(touch: Touch, anchor: dt.date, tz: str) -> list[dt.datetime]:
    """Every scheduled time of ``touch``: its local wall-clock time on each day of its range."""
    return [o.due for o in touch_occurrences(touch, anchor, tz)]


def plan(
    campaign: Campaign,
    anchor: dt.date,
    tz: str,
    *,
    conditions: Iterable[str] = (),
    variables: Mapping[str, Any] | None = None,
    events: Mapping[str, Any] | None = None,
    anchor_moment: dt.datetime | None = None,
    preferred_time: str | None = None,
) -> list[Occurrence]:
    """Every occurrence of the campaign for a patient with ``conditions``, ordered by due time;
    ``preferred_time``: the patient's time of day (see :func:`touch_times`).

    Touches with a condition filter are left out for patients without one of those conditions; a
    campaign-level filter leaves out everything (the enrollment stays, with nothing to send).
    """
    have = set(conditions)
    if not campaign.applies_to(list(have)):
        return []
    result: list[Occurrence] = []
    for touch in campaign.touches:
        if touch.conditions and not (set(touch.conditions) & have):
            continue
        result.extend(
            touch_occurrences(
                touch,
                anchor,
                tz,
                variables=variables,
                events=events,
                anchor_moment=anchor_moment,
                preferred_time=preferred_time,
            )
        )
    return sorted(result, key=lambda o: (o.due, o.touch.id))


def upcoming(
    planned: list[Occurrence],
    now: dt.datetime,
    *,
    send_now: bool,
    already: set[tuple[str, dt.date, int]],
    overdue: frozenset[tuple[str, dt.date]] = frozenset(),
) -> list[tuple[Occurrence, dt.datetime]]:
    """The occurrences to store as pending, each with its due time.

    - one already sent or skipped (same touch, local day, slot in ``already``) is kept as it was, never
      planned again (a time-zone change must not send today's check-in twice);
    - one whose time has passed is not planned: a first touch whose time passed today starts at its
      next time ("Good morning" must not arrive at 19:30), unless the campaign says ``start: now``,
      in which case the latest passed one that is still fresh goes out at once;
    - but one that was already pending and due (``overdue``: touch and local day) when the schedule was
      derived again, and is still fresh, stays due: a re-derivation a few seconds after 09:00 must not
      drop the 09:00 check-in the sweeper had not reached yet.
    """
    chosen: list[tuple[Occurrence, dt.datetime]] = []
    missed: Occurrence | None = None
    for occ in planned:
        if (occ.touch.id, occ.local_day, occ.slot) in already:
            continue
        if occ.due < now:
            if still_worth_sending(occ.due, now, occ.touch.stale_after_minutes):
                if (occ.touch.id, occ.local_day) in overdue:
                    chosen.append((occ, occ.due))
                    continue
                missed = occ
            continue
        chosen.append((occ, occ.due))
    if send_now and missed is not None:
        chosen.insert(0, (missed, now))
    return chosen


def occurrence_key(enrollment_id: int, touch_id: str, schedule_version: int, due: dt.datetime) -> str:
    return f"{enrollment_id}:{touch_id}:v{schedule_version}:{due.astimezone(dt.UTC):%Y%m%dT%H%MZ}"


def still_worth_sending(scheduled_for: dt.datetime, now: dt.datetime, stale_after_minutes: int) -> bool:
    """Stale work is skipped, not sent late ("take your 8 am dose" must not arrive at 3 pm)."""
    return now - scheduled_for <= dt.timedelta(minutes=stale_after_minutes)


def local_today(now: dt.datetime, tz: str) -> dt.date:
    """The patient's own date now: enrolling at 19:00 Pacific is still that day, not the UTC date."""
    return now.astimezone(ZoneInfo(tz)).date()
