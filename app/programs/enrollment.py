"""Pausing, resuming and ending enrollments, each with a reason on the patient's timeline.

A paused or ended enrollment has no pending occurrence (they are cancelled, ``outcome`` = why), so the
tick never starts one; resuming re-derives the schedule from the anchor (missed occurrences stay missed:
``app.scheduling.enrollments.derive_touches`` drops stale ones). Timeline entries are audit events on
the patient (``enrollment.paused`` / ``enrollment.resumed`` / ``enrollment.ended`` / ``enrollment.created``)
with ``{"enrollment_id", "campaign", "reason", "actor"}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import AuditEvent, Enrollment, Patient, Program, ScheduledTouch, TouchStatus
from app.runtime import Runtime
from app.scheduling.bulk import Enrolled
from app.scheduling.enrollments import derive_touches

ACTIVE = "active"
PAUSED = "paused"
ENDED = "ended"
REASON_MAX = 200


class EnrollmentRefused(Exception):
    """The change does not apply to the enrollment's status (``code`` for the API's 409)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def note_event(
    session: Session,
    patient_id: int,
    action: str,
    enrollment: Enrollment | Enrolled,
    reason: str,
    actor: str,
    now: dt.datetime,
) -> None:
    session.add(AuditEvent(**event_row(patient_id, action, enrollment, reason, actor, now)))


def event_row(
    patient_id: int, action: str, enrollment: Enrollment | Enrolled, reason: str, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """The audit row ``note_event`` writes, as column values (the bulk paths insert many at once)."""
    return {
        "action": action,
        "subject_type": "patient",
        "subject_id": patient_id,
        "detail": {
            "enrollment_id": enrollment.id,
            "campaign": enrollment.campaign,
            "reason": reason[:REASON_MAX],
            "actor": actor[:REASON_MAX],
        },
        "at": now,
    }


def _cancel_pending(session: Session, enrollment: Enrollment, outcome: str, now: dt.datetime) -> None:
    session.execute(
        update(ScheduledTouch)
        .where(ScheduledTouch.enrollment_id == enrollment.id, ScheduledTouch.status == TouchStatus.PENDING)
        .values(status=TouchStatus.CANCELLED, outcome=outcome[:64], processed_at=now)
    )
    enrollment.next_due_at = None


def paused_by_admission(rt: Runtime, program: Program, enrollment: Enrollment) -> bool:
    """Whether a hospital admission (ADT A01/A04) reported by ``program`` pauses this active enrollment.

    The rule (DESIGN §4.2, scheduling; §1, enrollment from the hospital's feeds): an inpatient must not get
    the home outreach of the program that admitted them: post-discharge / TCM calls, daily HF weights,
    glucose and COPD check-ins, reminders to take home medicines (a double dose beside the ward's), screens
    — every campaign that program runs pauses, unless the campaign says ``during_admission: continue``
    (appointment reminders: the clinic's appointment stands until the clinic moves it, and the reminder
    lets the patient or caregiver rearrange it). A campaign the admitting program does not run (its list
    changed since, or another program enrolled the patient in it) is that program's decision and goes on.
    An unknown (retired) campaign pauses: when unsure, stay quiet to an inpatient.
    """
    if program.campaigns and enrollment.campaign not in program.campaigns:
        campaign = rt.content.campaign(enrollment.campaign)
        if campaign is None or not ({campaign.id, *campaign.aliases} & set(program.campaigns)):
            return False
    campaign = rt.content.campaign(enrollment.campaign)
    return campaign is None or campaign.during_admission == "pause"


def pause(session: Session, enrollment: Enrollment, reason: str, actor: str, now: dt.datetime) -> Enrollment:
    """Stop outreach for now (a readmission, a care manager's decision); raises EnrollmentRefused."""
    if enrollment.status != ACTIVE:
        raise EnrollmentRefused("not_active", f"The enrollment is {enrollment.status}, not active.")
    enrollment.status = PAUSED
    _cancel_pending(session, enrollment, "paused", now)
    note_event(session, enrollment.patient_id, "enrollment.paused", enrollment, reason, actor, now)
    return enrollment


def resume(
    session: Session, rt: Runtime, enrollment: Enrollment, reason: str, actor: str, now: dt.datetime
) -> Enrollment:
    """Outreach again from now on (future occurrences only); raises EnrollmentRefused."""
    if enrollment.status != PAUSED:
        raise EnrollmentRefused("not_paused", f"The enrollment is {enrollment.status}, not paused.")
    duplicate = session.scalars(
        select(Enrollment.id).where(
            Enrollment.patient_id == enrollment.patient_id,
            Enrollment.campaign == enrollment.campaign,
            Enrollment.status == ACTIVE,
        )
    ).first()
    if duplicate is not None:
        raise EnrollmentRefused("already_enrolled", "The patient has another active enrollment in this campaign.")
    enrollment.status = ACTIVE
    enrollment.schedule_version += 1
    patient = session.get(Patient, enrollment.patient_id)
    assert patient is not None
    derive_touches(session, rt, enrollment, patient, now)
    note_event(session, enrollment.patient_id, "enrollment.resumed", enrollment, reason, actor, now)
    return enrollment


def unenroll(session: Session, enrollment: Enrollment, reason: str, actor: str, now: dt.datetime) -> Enrollment:
    """End the enrollment for good (pending occurrences cancelled); raises EnrollmentRefused if ended."""
    if enrollment.status == ENDED:
        raise EnrollmentRefused("already_ended", "The enrollment has already ended.")
    enrollment.status = ENDED
    _cancel_pending(session, enrollment, "unenrolled", now)
    note_event(session, enrollment.patient_id, "enrollment.ended", enrollment, reason, actor, now)
    return enrollment


def timeline(session: Session, patient_id: int, limit: int = 500) -> list[dict[str, Any]]:
    """The patient's enrollment history, oldest first: ``{"at", "action", "enrollment_id", "campaign",
    "reason", "actor"}``."""
    rows = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.subject_type == "patient",
            AuditEvent.subject_id == patient_id,
            AuditEvent.action.like("enrollment.%"),
        )
        .order_by(AuditEvent.at, AuditEvent.id)
        .limit(limit)
    ).all()
    return [
        {
            "at": row.at.isoformat(),
            "action": row.action.removeprefix("enrollment."),
            "enrollment_id": row.detail.get("enrollment_id"),
            "campaign": row.detail.get("campaign"),
            "reason": row.detail.get("reason", ""),
            "actor": row.detail.get("actor", ""),
        }
        for row in rows
    ]
