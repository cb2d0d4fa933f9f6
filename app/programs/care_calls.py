"""Calls care managers log from the patient page: they feed the TCM clock and count CCM minutes.

TCM (CMS Transitional Care Management, app/programs/tcm.py): a care manager's phone call is interactive
contact; its outcome (reached / voicemail / no answer / wrong number) is recorded as a contact attempt of
the patient's open discharge — the most recent one discharged before the call and within the 30-day TCM
service period (``discharge_to_feed``). A bot's texts and calls never reach this module.

CCM (CMS Chronic Care Management, CPT 99490): at least 20 minutes of clinical staff time directed by a
physician per *calendar month*; 99439 adds each further 20 minutes. Months are counted in the program's
time zone (``monthly_minutes``), where the practice bills.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CareCall, Discharge, Patient, User
from app.programs.tcm import CLOCK_SLACK, OUTCOMES, record_attempt

#: CPT 99490: the monthly minimum of clinical staff time.
CCM_MONTHLY_MINUTES = 20
#: One call's minutes; longer work is logged as more calls.
MAX_MINUTES = 240
#: TCM covers the 30 days that begin on the discharge date.
TCM_PERIOD = dt.timedelta(days=30)
NOTE_MAX = 2000


class CallRefused(ValueError):
    """A field of the logged call is not acceptable; ``fields`` maps each bad field to a code
    (``outcome``: unknown, ``minutes``: range, ``at``: future, ``note``: too_long, over NOTE_MAX characters)."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class DischargeWindow:
    id: int
    discharged_at: dt.datetime
    status: str


def discharge_to_feed(discharges: Iterable[DischargeWindow], at: dt.datetime) -> int | None:
    """The id of the discharge a call at ``at`` counts for: not cancelled, discharged at or before ``at``
    and at most ``TCM_PERIOD`` before it; the most recent such discharge, or None."""
    candidates = [
        d for d in discharges if d.status != "cancelled" and d.discharged_at <= at <= d.discharged_at + TCM_PERIOD
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda d: (d.discharged_at, d.id)).id


def month_key(at: dt.datetime, tz: str) -> str:
    """``"YYYY-MM"`` of ``at`` (aware) in the zone ``tz``."""
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def monthly_minutes(entries: Iterable[tuple[dt.datetime, int]], tz: str) -> dict[str, int]:
    """CCM minutes per calendar month in ``tz``: ``{"2026-11": 25, …}`` from ``(called_at, minutes)``,
    newest month first. Negative minutes (never stored) count as 0."""
    totals: dict[str, int] = {}
    for at, minutes in entries:
        key = month_key(at, tz)
        totals[key] = totals.get(key, 0) + max(0, int(minutes))
    return dict(sorted(totals.items(), reverse=True))


@dataclass(frozen=True)
class CcmMonth:
    month: str
    minutes: int
    #: Minutes still needed for CPT 99490 this month (0 once met).
    remaining: int

    @property
    def met(self) -> bool:
        return self.remaining == 0


def ccm_month(month: str, minutes: int, threshold: int = CCM_MONTHLY_MINUTES) -> CcmMonth:
    """The month's total against the 99490 threshold (met at ``threshold`` minutes or more)."""
    return CcmMonth(month, minutes, max(0, threshold - minutes))


def check_call(outcome: str, minutes: int | None, at: dt.datetime, now: dt.datetime) -> dict[str, str]:
    """The problems of a call to log, by field (empty when fine)."""
    problems: dict[str, str] = {}
    if outcome not in OUTCOMES:
        problems["outcome"] = "unknown"
    if minutes is None or not 0 <= minutes <= MAX_MINUTES:
        problems["minutes"] = "range"
    if at > now + CLOCK_SLACK:
        problems["at"] = "future"
    return problems


def log_call(
    session: Session,
    patient: Patient,
    user: User,
    *,
    outcome: str,
    minutes: int | None,
    note: str,
    at: dt.datetime,
    now: dt.datetime,
) -> CareCall:
    """Record the call; when it falls in an open discharge's TCM period, also the discharge's contact
    attempt (method ``phone``, by the user's email). Raises CallRefused naming each bad field."""
    problems = check_call(outcome, minutes, at, now)
    if len(note) > NOTE_MAX:
        # Refused rather than cut: a nurse's note silently losing its end could lose what mattered.
        problems["note"] = "too_long"
    if problems:
        raise CallRefused(problems)
    assert minutes is not None
    rows = session.scalars(
        select(Discharge).where(Discharge.patient_id == patient.id, Discharge.discharged_at <= at).with_for_update()
    ).all()
    chosen = discharge_to_feed((DischargeWindow(d.id, d.discharged_at, d.status) for d in rows), at)
    attempt_id: int | None = None
    if chosen is not None:
        discharge = next(d for d in rows if d.id == chosen)
        attempt = record_attempt(
            session,
            discharge,
            outcome=outcome,
            method="phone",
            attempted_by=user.email,
            attempted_at=at,
            note=note[:NOTE_MAX] or None,
            now=now,
        )
        attempt_id = attempt.id
    call = CareCall(
        patient_id=patient.id,
        program_id=patient.program_id,
        user_id=user.id,
        outcome=outcome,
        minutes=minutes,
        note=note[:NOTE_MAX] or None,
        called_at=at,
        recorded_at=now,
        contact_attempt_id=attempt_id,
    )
    session.add(call)
    session.flush()
    return call


def patient_calls(session: Session, patient_id: int, limit: int = 100) -> Sequence[CareCall]:
    """The patient's logged calls, newest first."""
    return session.scalars(
        select(CareCall)
        .where(CareCall.patient_id == patient_id)
        .order_by(CareCall.called_at.desc(), CareCall.id.desc())
        .limit(limit)
    ).all()


def ccm_months(session: Session, patient_id: int, tz: str, now: dt.datetime, months: int = 6) -> list[CcmMonth]:
    """The last ``months`` calendar months (this one first, months without calls at 0)."""
    since = now - dt.timedelta(days=31 * months)
    entries = session.execute(
        select(CareCall.called_at, CareCall.minutes).where(
            CareCall.patient_id == patient_id, CareCall.called_at >= since
        )
    ).all()
    totals = monthly_minutes(((at, minutes) for at, minutes in entries), tz)
    local = now.astimezone(ZoneInfo(tz))
    year, month = local.year, local.month
    result = []
    for _ in range(months):
        key = f"{year:04d}-{month:02d}"
        result.append(ccm_month(key, totals.get(key, 0)))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return result
