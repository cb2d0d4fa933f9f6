"""The TCM clock (DESIGN §4.2; CMS Transitional Care Management, CPT 99495/99496).

After a discharge the practice must make *interactive contact* with the patient (or caregiver) within
2 business days: a call, a video visit or a visit in person by clinical staff. Automated texts and
calls do not count (Noridian TCM guidance), so only attempts care managers log here are counted and a
bot's conversation never moves the clock. The requirement is met when the patient was reached, or when
two separate, documented attempts were made in time and were unsuccessful (CMS TCM FAQ, 2016).

Rules (pure functions): ``tcm_deadline`` (end of the 2nd business day after the discharge date, in the
program's time zone; business days are Mon-Fri without US federal holidays) and ``tcm_status``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.models import ContactAttempt, Discharge, Patient
from app.scheduling.calendar import add_business_days

OUTCOMES = ("reached", "voicemail", "no_answer", "wrong_number")
#: Interactive contact (CMS): the bot's SMS or IVR is not one of these.
METHODS = ("phone", "video", "in_person")
REQUIRED_UNSUCCESSFUL = 2
#: An attempt logged a little ahead of the server's clock is fine; one in the future is a mistake.
CLOCK_SLACK = dt.timedelta(minutes=5)

TcmStatus = Literal["due", "overdue", "met", "cancelled"]


@dataclass(frozen=True)
class Attempt:
    outcome: str
    method: str
    at: dt.datetime


@dataclass(frozen=True)
class ClockState:
    status: TcmStatus
    #: ``reached`` or ``two_attempts`` when met, else None.
    met_by: str | None
    met_at: dt.datetime | None


def tcm_deadline(discharge_date: dt.date, tz: str) -> dt.datetime:
    """The last moment of the 2nd business day after ``discharge_date`` (23:59:59 local), as UTC.

    A Friday discharge is due Tuesday; before a Monday holiday, Wednesday."""
    day = add_business_days(discharge_date, 2)
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


def tcm_status(
    discharged_at: dt.datetime, deadline: dt.datetime, attempts: Sequence[Attempt], now: dt.datetime, *, cancelled: bool
) -> ClockState:
    """Met by a timely ``reached`` attempt or by two timely unsuccessful ones; else due until the
    deadline and overdue after it. Timely = after the discharge and no later than the deadline."""
    if cancelled:
        return ClockState("cancelled", None, None)
    timely = sorted(
        (a for a in attempts if a.method in METHODS and discharged_at <= a.at <= deadline), key=lambda a: a.at
    )
    for unsuccessful, attempt in enumerate(timely, start=1):
        if attempt.outcome == "reached":
            return ClockState("met", "reached", attempt.at)
        if unsuccessful >= REQUIRED_UNSUCCESSFUL:
            return ClockState("met", "two_attempts", attempt.at)
    return ClockState("due" if now <= deadline else "overdue", None, None)


class AttemptRefused(ValueError):
    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def open_discharge(
    session: Session,
    patient: Patient,
    *,
    visit_number: str,
    discharged_at: dt.datetime,
    tz: str,
    unit: str | None,
    diagnoses: Sequence[str],
    new_patient: bool = False,
) -> Discharge:
    """Start (or, for the same visit, correct) the TCM clock of a discharge. ``new_patient``: the patient
    was created in this transaction, so there is no earlier discharge to look for."""
    discharge_date = discharged_at.astimezone(ZoneInfo(tz)).date()
    discharge = (
        None
        if new_patient
        else session.scalars(
            select(Discharge)
            .where(Discharge.patient_id == patient.id, Discharge.visit_number == visit_number)
            .with_for_update()
        ).first()
    )
    if discharge is None:
        discharge = Discharge(patient_id=patient.id, program_id=patient.program_id, visit_number=visit_number)
        session.add(discharge)
    discharge.discharged_at = discharged_at
    discharge.discharge_date = discharge_date
    discharge.deadline_at = tcm_deadline(discharge_date, tz)
    discharge.unit = unit[:64] if unit else None
    discharge.diagnoses = list(diagnoses)
    discharge.status = "open"
    discharge.enrollment_ids = list(discharge.enrollment_ids or [])
    session.flush()
    return discharge


def record_attempt(
    session: Session,
    discharge: Discharge,
    *,
    outcome: str,
    method: str,
    attempted_by: str,
    attempted_at: dt.datetime,
    note: str | None,
    now: dt.datetime,
) -> ContactAttempt:
    """Log a care manager's attempt; raises AttemptRefused naming each bad field."""
    problems: dict[str, str] = {}
    if outcome not in OUTCOMES:
        problems["outcome"] = f"must be one of {', '.join(OUTCOMES)}"
    if method not in METHODS:
        problems["method"] = f"must be one of {', '.join(METHODS)} (texts and bot calls do not count)"
    if attempted_at > now + CLOCK_SLACK:
        problems["at"] = "must not be in the future"
    elif attempted_at < discharge.discharged_at:
        problems["at"] = "must not be before the discharge"
    if problems:
        raise AttemptRefused(problems)
    attempt = ContactAttempt(
        discharge_id=discharge.id,
        outcome=outcome,
        method=method,
        attempted_by=attempted_by,
        attempted_at=attempted_at,
        note=note or None,
        recorded_at=now,
    )
    session.add(attempt)
    session.flush()
    session.refresh(discharge, ["attempts"])
    return attempt


def clock_of(discharge: Discharge, now: dt.datetime) -> ClockState:
    return tcm_status(
        discharge.discharged_at,
        discharge.deadline_at,
        [Attempt(a.outcome, a.method, a.attempted_at) for a in discharge.attempts],
        now,
        cancelled=discharge.status == "cancelled",
    )


def discharge_json(discharge: Discharge, now: dt.datetime) -> dict[str, Any]:
    clock = clock_of(discharge, now)
    return {
        "id": discharge.id,
        "patient_id": discharge.patient_id,
        "program_id": discharge.program_id,
        "mrn": discharge.patient.mrn,
        "visit_number": discharge.visit_number,
        "discharged_at": discharge.discharged_at.isoformat(),
        "discharge_date": discharge.discharge_date.isoformat(),
        "deadline_at": discharge.deadline_at.isoformat(),
        "status": clock.status,
        "met_by": clock.met_by,
        "met_at": clock.met_at.isoformat() if clock.met_at else None,
        "unit": discharge.unit,
        "diagnoses": list(discharge.diagnoses or []),
        "readmitted_at": discharge.readmitted_at.isoformat() if discharge.readmitted_at else None,
        "attempts": [
            {
                "id": a.id,
                "outcome": a.outcome,
                "method": a.method,
                "by": a.attempted_by,
                "at": a.attempted_at.isoformat(),
                "note": a.note,
            }
            for a in discharge.attempts
        ],
    }


#: Discharges older than this are history, not a work list.
WORKLIST_DAYS = 60


def worklist(
    session: Session, now: dt.datetime, status: str | None = None, program_id: int | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Discharges of the last ``WORKLIST_DAYS`` days with their clock, soonest deadline first, filtered
    by derived ``status`` (due / overdue / met / cancelled)."""
    query = (
        select(Discharge)
        .options(selectinload(Discharge.attempts), selectinload(Discharge.patient))
        .where(Discharge.discharged_at >= now - dt.timedelta(days=WORKLIST_DAYS))
        .order_by(Discharge.deadline_at, Discharge.id)
    )
    if program_id is not None:
        query = query.where(Discharge.program_id == program_id)
    if status in ("due", "overdue", "met"):
        query = query.where(Discharge.status == "open")
    elif status == "cancelled":
        query = query.where(Discharge.status == "cancelled")
    if status == "due":
        query = query.where(Discharge.deadline_at >= now)
    elif status == "overdue":
        query = query.where(Discharge.deadline_at < now)
    rows = []
    for discharge in session.scalars(query).all():
        item = discharge_json(discharge, now)
        if status is None or item["status"] == status:
            rows.append(item)
            if len(rows) >= limit:
                break
    return rows
