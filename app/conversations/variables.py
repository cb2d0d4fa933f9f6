"""Text variables in the patient's language: an appointment on "miércoles, 16 de diciembre de 2026"
for a Spanish speaker and "Wednesday, December 16, 2026" for an English one (Babel)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

from app.i18n import locale_for

ALLOWED = {"appointment_at", "medication_name", "dose_time", "dose_times", "goal_text"}
#: How long a variable may be (a care-plan goal is up to 300 characters, app/api/schemas.py GoalIn).
LIMITS = {"goal_text": 300}


class InvalidVariables(ValueError):
    pass


def clean_variables(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidVariables("variables must be an object")
    clean: dict[str, str] = {}
    for key, value in raw.items():
        if key not in ALLOWED:
            raise InvalidVariables(f"unknown variable '{key}' (known: {', '.join(sorted(ALLOWED))})")
        text = str(value).strip()
        if key == "appointment_at":
            try:
                moment = dt.datetime.fromisoformat(text)
            except ValueError:
                raise InvalidVariables("appointment_at must be ISO 8601 with an offset") from None
            if moment.tzinfo is None:
                raise InvalidVariables("appointment_at must include a time zone offset")
        if key == "dose_time":
            try:
                dt.time.fromisoformat(text)
            except ValueError:
                raise InvalidVariables("dose_time must be a time like 08:00") from None
        if key == "dose_times":
            parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
            try:
                if not parts or len(parts) > 12:
                    raise ValueError(text)
                for part in parts:
                    dt.time.fromisoformat(part)
            except ValueError:
                raise InvalidVariables("dose_times must be 1 to 12 times like 08:00,20:00") from None
            text = ",".join(sorted({dt.time.fromisoformat(p).strftime("%H:%M") for p in parts}))
        clean[key] = text[: LIMITS.get(key, 100)]
    return clean


def render_variables(variables: Mapping[str, str], language: str, timezone: str) -> dict[str, str]:
    locale = locale_for(language)
    rendered: dict[str, str] = {}
    if "appointment_at" in variables:
        moment = dt.datetime.fromisoformat(variables["appointment_at"]).astimezone(ZoneInfo(timezone))
        rendered["appointment_date"] = format_date(moment.date(), format="full", locale=locale)
        rendered["appointment_time"] = format_time(moment.time(), format="short", locale=locale)
    if "dose_time" in variables:
        rendered["dose_time"] = format_time(
            dt.time.fromisoformat(variables["dose_time"]), format="short", locale=locale
        )
    if "medication_name" in variables:
        rendered["medication_name"] = variables["medication_name"]
    if "goal_text" in variables:
        rendered["goal_text"] = variables["goal_text"]
    # Babel puts a narrow no-break space before AM/PM; a plain space keeps the text in GSM-7.
    return {key: value.replace("\u202f", " ").replace("\xa0", " ") for key, value in rendered.items()}
