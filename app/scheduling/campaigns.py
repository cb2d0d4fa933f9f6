"""Campaign definitions (``content/campaigns/*.yaml``): which flows run on which days at what time.

A touch says: run ``flow`` every day at ``at`` (patient-local) from ``from_day`` to ``to_day`` days
after the anchor date (a discharge date, an enrollment date).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.flows.loader import FlowError, LineDict, load_yaml_with_lines, parse_duration_minutes


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


@dataclass(frozen=True)
class Campaign:
    id: str
    title: dict[str, str]
    touches: tuple[Touch, ...]


def load_campaign(path: Path, known_flows: set[str], display: str | None = None) -> Campaign:
    shown = display or str(path)
    data = load_yaml_with_lines(path.read_text(encoding="utf-8"), shown)
    if not isinstance(data, LineDict):
        raise FlowError(shown, 1, "a campaign file must be a mapping with id, title and touches")
    campaign_id = data.get("id")
    if campaign_id != path.stem:
        raise FlowError(shown, data.key_lines.get("id", 1), f"campaign id '{campaign_id}' must match the file name")
    touches = []
    for raw in data.get("touches") or []:
        if not isinstance(raw, LineDict):
            raise FlowError(shown, data.line, "each touch must be a mapping")
        line = raw.line
        for key in raw:
            if key not in {"id", "flow", "every", "every_days", "at", "from_day", "to_day", "stale_after"}:
                raise FlowError(shown, raw.key_lines[key], f"touch: unknown field '{key}'")
        flow = raw.get("flow")
        if flow not in known_flows:
            raise FlowError(shown, raw.key_lines.get("flow", line), f"touch: unknown flow '{flow}'")
        every = raw.get("every", "day")
        if every not in {"day", "week"}:
            raise FlowError(shown, raw.key_lines.get("every", line), "touch: every must be 'day' or 'week'")
        every_days = int(raw.get("every_days", 7 if every == "week" else 1))
        if every_days < 1:
            raise FlowError(shown, raw.key_lines.get("every_days", line), "touch: every_days must be at least 1")
        at = str(raw.get("at", "09:00"))
        try:
            hour, minute = (int(x) for x in at.split(":"))
            if not (0 <= hour < 24 and 0 <= minute < 60):
                raise ValueError
        except ValueError:
            raise FlowError(shown, raw.key_lines.get("at", line), f"touch: '{at}' is not a time like 09:00") from None
        from_day, to_day = int(raw.get("from_day", 0)), int(raw.get("to_day", 0))
        if to_day < from_day:
            raise FlowError(shown, line, "touch: to_day must not be before from_day")
        stale = parse_duration_minutes(raw.get("stale_after", "12h"), shown, raw.key_lines.get("stale_after", line))
        touches.append(
            Touch(
                id=str(raw["id"]),
                flow=str(flow),
                at_hour=hour,
                at_minute=minute,
                from_day=from_day,
                to_day=to_day,
                stale_after_minutes=stale,
                every_days=every_days,
            )
        )
    if not touches:
        raise FlowError(shown, data.line, "a campaign needs at least one touch")
    title = data.get("title") or {}
    return Campaign(id=str(campaign_id), title=dict(title), touches=tuple(touches))
