"""Care programs: several in one deployment, each with its own name, sender (a number or a Twilio
Messaging Service), nurse line, on-call and supervisor numbers, quiet-hours window, caps and campaigns.

``save_program`` is the one place a program is created or changed (API and CLI); it checks the rules
that need more than a field's type:
- the quiet-hours window may only narrow 08:00-21:00 (47 CFR 64.1200(c)(1)), start before end;
- a program under the TCPA health-care exemption is capped at 1 a day and 3 a week (FCC 15-72): it
  cannot set larger caps; one with express consent may set its own;
- one sender: a number or a Messaging Service, not both;
- campaigns must exist in content/campaigns.
Raises ``ProgramInvalid`` with ``{field: problem}``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Program
from app.patients.phones import InvalidPhone, to_e164
from app.scheduling.caps import PER_DAY, PER_WEEK

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
EARLIEST_HOUR = 8
LATEST_HOUR = 21
PHONE_FIELDS = ("sender_number", "nurse_line", "on_call_phone", "supervisor_phone")
FIELDS = (
    "name",
    "phone_display",
    "sender_number",
    "messaging_service_sid",
    "nurse_line",
    "on_call_phone",
    "supervisor_phone",
    "timezone",
    "quiet_start_hour",
    "quiet_end_hour",
    "express_consent",
    "daily_cap",
    "weekly_cap",
    "campaigns",
    "consent_before_outreach",
)


class ProgramInvalid(ValueError):
    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class ProgramExists(LookupError):
    pass


def find_program(session: Session, slug: str) -> Program | None:
    return session.scalars(select(Program).where(Program.slug == slug)).first()


def _merged(program: Program | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    current: dict[str, Any] = {
        "name": None,
        "phone_display": None,
        "sender_number": None,
        "messaging_service_sid": None,
        "nurse_line": None,
        "on_call_phone": None,
        "supervisor_phone": None,
        "timezone": "America/New_York",
        "quiet_start_hour": EARLIEST_HOUR,
        "quiet_end_hour": LATEST_HOUR,
        "express_consent": False,
        "daily_cap": None,
        "weekly_cap": None,
        "campaigns": [],
        "consent_before_outreach": False,
    }
    if program is not None:
        for key in FIELDS:
            if key == "express_consent":
                current[key] = not program.uses_healthcare_exemption
            else:
                current[key] = getattr(program, key)
    for key, value in changes.items():
        if key in FIELDS:
            current[key] = value
    return current


def check_program(values: Mapping[str, Any], known_campaigns: Collection[str]) -> dict[str, Any]:
    """The rules above over a whole program's values; returns them normalised (phones in E.164)."""
    problems: dict[str, str] = {}
    clean = dict(values)
    for key in ("name", "phone_display"):
        if not isinstance(values.get(key), str) or not values[key].strip():
            problems[key] = "required"
    for key in PHONE_FIELDS:
        if values.get(key):
            try:
                clean[key] = to_e164(str(values[key]))
            except InvalidPhone as exc:
                problems[key] = str(exc)
        else:
            clean[key] = None
    sid = values.get("messaging_service_sid") or None
    clean["messaging_service_sid"] = sid
    if sid and not MESSAGING_SERVICE.match(str(sid)):
        problems["messaging_service_sid"] = "must be a Messaging Service SID (MG followed by 32 hex digits)"
    if sid and values.get("sender_number"):
        problems["sender_number"] = "give a sender number or a Messaging Service, not both"
    try:
        ZoneInfo(str(values.get("timezone")))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        problems["timezone"] = "must be an IANA time zone such as America/Chicago"
    start, end = values.get("quiet_start_hour"), values.get("quiet_end_hour")
    if not isinstance(start, int) or not EARLIEST_HOUR <= start <= LATEST_HOUR - 1:
        problems["quiet_start_hour"] = f"must be an hour from {EARLIEST_HOUR} to {LATEST_HOUR - 1} (47 CFR 64.1200)"
    elif not isinstance(end, int) or not start < end <= LATEST_HOUR:
        problems["quiet_end_hour"] = f"must be after the start hour and at most {LATEST_HOUR} (47 CFR 64.1200)"
    express = bool(values.get("express_consent"))
    for key, ceiling in (("daily_cap", PER_DAY), ("weekly_cap", PER_WEEK)):
        cap = values.get(key)
        if cap is None:
            continue
        if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= 100:
            problems[key] = "must be a whole number from 1 to 100"
        elif not express and cap > ceiling:
            problems[key] = (
                f"the TCPA health-care exemption allows at most {ceiling} (FCC 15-72); record express consent"
            )
    campaigns = values.get("campaigns") or []
    unknown = sorted(set(campaigns) - set(known_campaigns))
    if unknown:
        problems["campaigns"] = f"unknown campaigns: {', '.join(unknown)}"
    clean["campaigns"] = list(dict.fromkeys(campaigns))
    # True: nothing but the welcome flow goes out until the patient gives express consent in it.
    clean["consent_before_outreach"] = bool(values.get("consent_before_outreach"))
    if problems:
        raise ProgramInvalid(problems)
    return clean


def save_program(
    session: Session,
    slug: str,
    changes: Mapping[str, Any],
    known_campaigns: Collection[str],
    *,
    create: bool | None = None,
) -> tuple[Program, bool]:
    """Create (``create=True``: ProgramExists if the slug is taken), update (``create=False``: LookupError
    if missing) or either (``None``). Returns (program, created)."""
    if not SLUG.match(slug):
        raise ProgramInvalid({"slug": "lowercase letters, digits and hyphens, at most 64"})
    program = session.scalars(select(Program).where(Program.slug == slug).with_for_update()).first()
    if program is not None and create is True:
        raise ProgramExists(slug)
    if program is None and create is False:
        raise LookupError(slug)
    clean = check_program(_merged(program, changes), known_campaigns)
    created = program is None
    if program is None:
        program = Program(slug=slug)
        session.add(program)
    for key in FIELDS:
        if key == "express_consent":
            program.uses_healthcare_exemption = not clean[key]
        else:
            setattr(program, key, clean[key])
    session.flush()
    return program, created


def program_json(program: Program) -> dict[str, Any]:
    return {
        "id": program.id,
        "slug": program.slug,
        "name": program.name,
        "phone_display": program.phone_display,
        "sender_number": program.sender_number,
        "messaging_service_sid": program.messaging_service_sid,
        "nurse_line": program.nurse_line,
        "on_call_phone": program.on_call_phone,
        "supervisor_phone": program.supervisor_phone,
        "timezone": program.timezone,
        "quiet_start_hour": program.quiet_start_hour,
        "quiet_end_hour": program.quiet_end_hour,
        "express_consent": not program.uses_healthcare_exemption,
        "daily_cap": PER_DAY if program.uses_healthcare_exemption else program.daily_cap,
        "weekly_cap": PER_WEEK if program.uses_healthcare_exemption else program.weekly_cap,
        "campaigns": list(program.campaigns or []),
        "consent_before_outreach": bool(program.consent_before_outreach),
    }


def campaign_allowed(program: Program, campaign: str) -> bool:
    """A program runs the campaigns it lists (all of them when it lists none)."""
    return not program.campaigns or campaign in program.campaigns
