"""Campaign definitions (``content/campaigns/*.yaml``): which flows run on which days at what time.

The format is documented with examples in docs/campaign-format.md. In short, a campaign has an ``id``
(the file name), a ``title`` (en, es), optional ``aliases`` (old ids that still enroll), a
``duration_days``, a ``channels`` order (``[voice, sms]``: voice first, SMS as the fallback), a
``conditions`` filter, ``stop_on`` events (``readmitted``, ``opted_out``, ``goal_met``), ``start``
(``next`` = a first touch whose time already passed today starts at its next time; ``now`` = it goes out
at once), ``during_admission`` (``pause``, the default, or ``continue``: what a hospital admission does to
it) and ``touches``. A touch runs ``flow``:

- on days relative to the anchor: ``day: 1``, ``days: [2, 3]`` or ``from_day``/``to_day`` with
  ``every: day | week`` (or ``every_days: 14``) and, for weekly touches, ``weekdays: [mon, thu]``;
- at local times of day: ``at: "09:00"`` or ``at: ["08:00", "20:00"]``; ``times: dose_times`` reads the
  patient's own times from the enrollment (``dose_times: "08:00,14:00,20:00"``), ``at`` then being the
  default; or ``after_hours: 4`` (hours after the anchor moment);
- relative to an event instead of the anchor date: ``anchor: positive_screen`` (no occurrence until the
  event is recorded);
- only for some patients: ``conditions: [heart_failure]``; ``unless: reached`` skips it (visibly) when an
  earlier touch of the enrollment was already answered to the end;
- ``education: medicines-after-discharge`` instead of ``flow``: the topic's lesson, one part per text with
  "reply MORE" for the next (texts only; capped and quiet-hours-bound as any outreach, deferred, not
  skipped, when the day's cap is used);
- ``stale_after: 2h``: later than this it is skipped, never sent late; ``channels`` overrides the order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.flows.loader import FlowError, LineDict, load_yaml_with_lines, parse_duration_minutes

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
CHANNELS = ("sms", "voice")
#: Events a campaign may stop on (and a touch may be anchored to).
#: ``social_needs_referred``: dated by the social-needs flow's effect (app/flows/model.py RECORD_FIELDS).
EVENTS = frozenset(
    {"readmitted", "opted_out", "goal_met", "discharged", "positive_screen", "unenrolled", "social_needs_referred"}
)
#: Per-patient time lists a touch may read from the enrollment's variables.
TIME_VARIABLES = frozenset({"dose_times"})
TOUCH_FIELDS = {
    "id",
    "flow",
    "education",
    "every",
    "every_days",
    "weekdays",
    "at",
    "times",
    "day",
    "days",
    "from_day",
    "to_day",
    "after_hours",
    "anchor",
    "stale_after",
    "conditions",
    "unless",
    "channels",
}
CAMPAIGN_FIELDS = {
    "id",
    "version",
    "title",
    "aliases",
    "duration_days",
    "channels",
    "conditions",
    "stop_on",
    "start",
    "touches",
    "during_admission",
}
UNLESS = frozenset({"reached"})


@dataclass(frozen=True)
class Touch:
    id: str
    flow: str
    at_hour: int
    at_minute: int
    from_day: int
    to_day: int
    stale_after_minutes: int
    #: 1 = every day, 7 = weekly, 14 = every two weeks (counted from ``from_day``).
    every_days: int = 1
    #: Explicit days after the anchor (``days: [2, 3]``); when set, from/to/every are not used.
    days: tuple[int, ...] = ()
    #: Weekly on given weekdays (0 = Monday); every day of the range whose weekday is listed.
    weekdays: frozenset[int] = frozenset()
    #: More local times on each day (``at: ["08:00", "20:00"]``), besides ``at_hour:at_minute``.
    extra_times: tuple[tuple[int, int], ...] = ()
    #: An enrollment variable holding the patient's own times (``dose_times``); ``at`` is the default.
    times_variable: str | None = None
    #: Hours after the anchor moment (instead of a day and a time of day).
    after_hours: int | None = None
    #: An event whose date anchors this touch instead of the enrollment's anchor date.
    anchor_event: str | None = None
    conditions: tuple[str, ...] = ()
    unless: str | None = None
    channels: tuple[str, ...] = ()
    #: An education touch sends this topic's lesson (one part per text, "reply MORE") instead of a flow;
    #: ``flow`` is then ``education:<topic>`` (what the occurrence row records).
    education: str | None = None
    #: The touch's line in its campaign file (for errors found after the file is read).
    line: int = 1

    @property
    def default_times(self) -> tuple[tuple[int, int], ...]:
        return tuple(sorted({(self.at_hour, self.at_minute), *self.extra_times}))


@dataclass(frozen=True)
class Campaign:
    id: str
    title: dict[str, str]
    touches: tuple[Touch, ...]
    #: A hash of the file (or its ``version``): when it changes, pending occurrences are derived again.
    version: str = "1"
    aliases: tuple[str, ...] = ()
    duration_days: int | None = None
    channels: tuple[str, ...] = ("sms",)
    conditions: tuple[str, ...] = ()
    stop_on: frozenset[str] = field(default_factory=frozenset)
    #: ``next``: a first touch whose time passed today starts at its next time; ``now``: at once.
    start: str = "next"
    #: What a hospital admission (ADT A01/A04) of an enrolled patient does to this campaign: ``pause``
    #: (home check-ins, reminders to take home medicines: wrong for an inpatient) or ``continue``
    #: (appointment reminders: the appointment stands until the clinic moves it). DESIGN §4.2.
    during_admission: str = "pause"

    def touch(self, touch_id: str) -> Touch | None:
        return next((t for t in self.touches if t.id == touch_id), None)

    def channel_order(self, touch_id: str) -> tuple[str, ...]:
        """The channels to try for a touch, first to last (``("voice", "sms")``: call, then text)."""
        touch = self.touch(touch_id)
        return (touch.channels if touch is not None and touch.channels else None) or self.channels

    def applies_to(self, conditions: list[str] | None) -> bool:
        """A campaign with a condition filter touches only patients with one of those conditions."""
        return not self.conditions or bool(set(self.conditions) & set(conditions or []))


def _time(value: Any, shown: str, line: int) -> tuple[int, int]:
    text = str(value)
    try:
        hour, minute = (int(x) for x in text.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        raise FlowError(shown, line, f"touch: '{text}' is not a time like 09:00") from None
    return hour, minute


def _int(raw: LineDict, key: str, default: int, shown: str, minimum: int = 0) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise FlowError(shown, raw.key_lines.get(key, raw.line), f"touch: {key} must be a whole number ≥ {minimum}")
    return value


def _names(
    raw: LineDict, key: str, shown: str, allowed: frozenset[str] | tuple[str, ...] | None = None
) -> tuple[str, ...]:
    value = raw.get(key) or []
    line = raw.key_lines.get(key, raw.line)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FlowError(shown, line, f"{key} must be a list of names")
    if allowed is not None:
        for item in value:
            if item not in allowed:
                raise FlowError(shown, line, f"{key}: unknown '{item}' (known: {', '.join(sorted(allowed))})")
    return tuple(value)


def _touch(raw: LineDict, known_flows: set[str], shown: str, duration: int | None) -> Touch:
    line = raw.line
    for key in raw:
        if key not in TOUCH_FIELDS:
            raise FlowError(shown, raw.key_lines[key], f"touch: unknown field '{key}'")
    if not raw.get("id"):
        raise FlowError(shown, line, "touch: id is required")
    flow = raw.get("flow")
    education = raw.get("education")
    if education is not None:
        if flow is not None:
            raise FlowError(shown, raw.key_lines["education"], "touch: give flow or education, not both")
        if not isinstance(education, str) or not education:
            raise FlowError(shown, raw.key_lines["education"], "touch: education must name a topic")
        flow = f"education:{education}"
    elif flow not in known_flows:
        raise FlowError(shown, raw.key_lines.get("flow", line), f"touch: unknown flow '{flow}'")
    every = raw.get("every", "day")
    if every not in {"day", "week"}:
        raise FlowError(shown, raw.key_lines.get("every", line), "touch: every must be 'day' or 'week'")
    every_days = _int(raw, "every_days", 7 if every == "week" and "weekdays" not in raw else 1, shown, minimum=1)
    weekdays = frozenset(WEEKDAYS[d] for d in _names(raw, "weekdays", shown, tuple(WEEKDAYS)))
    if weekdays and every != "week":
        raise FlowError(shown, raw.key_lines.get("weekdays", line), "touch: weekdays needs every: week")
    at = raw.get("at", "09:00")
    at_line = raw.key_lines.get("at", line)
    times = [_time(t, shown, at_line) for t in (at if isinstance(at, list) else [at])]
    if not times:
        raise FlowError(shown, at_line, "touch: at needs at least one time")
    times_variable = raw.get("times")
    if times_variable is not None and times_variable not in TIME_VARIABLES:
        raise FlowError(
            shown,
            raw.key_lines.get("times", line),
            f"touch: times must name one of {', '.join(sorted(TIME_VARIABLES))}",
        )
    days: tuple[int, ...] = ()
    if "day" in raw or "days" in raw:
        if "from_day" in raw or "to_day" in raw:
            raise FlowError(shown, line, "touch: give day/days or from_day/to_day, not both")
        listed = raw.get("days") if "days" in raw else [raw.get("day")]
        if not isinstance(listed, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and -365 <= d <= 3650 for d in listed
        ):
            raise FlowError(
                shown,
                raw.key_lines.get("days", raw.key_lines.get("day", line)),
                "touch: days must be whole numbers from -365 (before the anchor) to 3650",
            )
        days = tuple(sorted(set(listed)))
        from_day, to_day = days[0], days[-1]
    else:
        from_day = _int(raw, "from_day", 0, shown)
        to_day = _int(raw, "to_day", duration if duration is not None else from_day, shown)
        if to_day < from_day:
            raise FlowError(shown, line, "touch: to_day must not be before from_day")
    if duration is not None and to_day > duration:
        raise FlowError(shown, line, f"touch: day {to_day} is after the campaign's duration_days ({duration})")
    after_hours = raw.get("after_hours")
    if after_hours is not None:
        after_hours = _int(raw, "after_hours", 0, shown)
        if any(k in raw for k in ("day", "days", "from_day", "to_day", "at", "times", "every", "weekdays")):
            raise FlowError(shown, raw.key_lines["after_hours"], "touch: after_hours stands alone (no day or time)")
    anchor = raw.get("anchor")
    if anchor is not None and anchor not in EVENTS:
        raise FlowError(
            shown, raw.key_lines.get("anchor", line), f"touch: anchor must be an event ({', '.join(sorted(EVENTS))})"
        )
    unless = raw.get("unless")
    if unless is not None and unless not in UNLESS:
        raise FlowError(
            shown, raw.key_lines.get("unless", line), f"touch: unless must be one of {', '.join(sorted(UNLESS))}"
        )
    stale = parse_duration_minutes(raw.get("stale_after", "12h"), shown, raw.key_lines.get("stale_after", line))
    return Touch(
        id=str(raw["id"]),
        flow=str(flow),
        at_hour=times[0][0],
        at_minute=times[0][1],
        from_day=from_day,
        to_day=to_day,
        stale_after_minutes=stale,
        every_days=every_days,
        days=days,
        weekdays=weekdays,
        extra_times=tuple(times[1:]),
        times_variable=times_variable,
        after_hours=after_hours,
        anchor_event=anchor,
        conditions=_names(raw, "conditions", shown),
        unless=unless,
        channels=_names(raw, "channels", shown, CHANNELS),
        education=education,
        line=line,
    )


def load_campaign(path: Path, known_flows: set[str], display: str | None = None) -> Campaign:
    """Load and check one campaign file; raises FlowError with file, line and reason."""
    shown = display or str(path)
    source = path.read_text(encoding="utf-8")
    data = load_yaml_with_lines(source, shown)
    if not isinstance(data, LineDict):
        raise FlowError(shown, 1, "a campaign file must be a mapping with id, title and touches")
    for key in data:
        if key not in CAMPAIGN_FIELDS:
            raise FlowError(shown, data.key_lines[key], f"campaign: unknown field '{key}'")
    campaign_id = data.get("id")
    if campaign_id != path.stem:
        raise FlowError(shown, data.key_lines.get("id", 1), f"campaign id '{campaign_id}' must match the file name")
    duration = data.get("duration_days")
    if duration is not None and (not isinstance(duration, int) or isinstance(duration, bool) or duration < 0):
        raise FlowError(shown, data.key_lines["duration_days"], "duration_days must be a whole number ≥ 0")
    start = data.get("start", "next")
    if start not in {"next", "now"}:
        raise FlowError(shown, data.key_lines.get("start", data.line), "start must be 'next' or 'now'")
    during_admission = data.get("during_admission", "pause")
    if during_admission not in {"pause", "continue"}:
        raise FlowError(
            shown, data.key_lines.get("during_admission", data.line), "during_admission must be 'pause' or 'continue'"
        )
    raw_touches = data.get("touches") or []
    if not isinstance(raw_touches, list):
        raise FlowError(shown, data.key_lines.get("touches", data.line), "touches must be a list")
    touches = []
    seen: set[str] = set()
    for raw in raw_touches:
        if not isinstance(raw, LineDict):
            raise FlowError(shown, data.line, "each touch must be a mapping")
        touch = _touch(raw, known_flows, shown, duration)
        if touch.id in seen:
            raise FlowError(shown, raw.line, f"touch: id '{touch.id}' is used twice")
        seen.add(touch.id)
        touches.append(touch)
    if not touches:
        raise FlowError(shown, data.line, "a campaign needs at least one touch")
    if len(touches) > 1 and all(t.anchor_event for t in touches):
        raise FlowError(shown, data.line, "a campaign needs at least one touch that does not wait for an event")
    title = data.get("title") or {}
    if not isinstance(title, dict) or not {"en", "es"} <= set(title):
        raise FlowError(shown, data.key_lines.get("title", data.line), "title needs en and es")
    channels = _names(data, "channels", shown, CHANNELS) or ("sms",)
    version = str(data.get("version") or hashlib.sha256(source.encode()).hexdigest()[:12])
    return Campaign(
        id=str(campaign_id),
        title={str(k): str(v) for k, v in title.items()},
        touches=tuple(touches),
        version=version,
        aliases=_names(data, "aliases", shown),
        duration_days=duration,
        channels=channels,
        conditions=_names(data, "conditions", shown),
        stop_on=frozenset(_names(data, "stop_on", shown, EVENTS)),
        start=str(start),
        during_admission=str(during_admission),
    )


def parse_times(text: str) -> tuple[tuple[int, int], ...]:
    """``"08:00, 20:00"`` → ((8, 0), (20, 0)), sorted, duplicates dropped; ValueError if one is not a time."""
    result = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        hour, minute = (int(x) for x in part.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(part)
        result.add((hour, minute))
    if not result:
        raise ValueError(text)
    return tuple(sorted(result))
