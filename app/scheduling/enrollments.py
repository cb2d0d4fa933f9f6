"""Enrolling patients in campaigns and deriving the SQL rows for every scheduled occurrence."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.models import Enrollment, Patient, ScheduledTouch, TouchStatus
from app.runtime import Runtime
from app.scheduling.occurrences import occurrence_key, occurrences, still_worth_sending


class UnknownCampaign(LookupError):
    pass


def enroll(
    session: Session,
    rt: Runtime,
    patient: Patient,
    campaign_id: str,
    anchor: dt.date,
    now: dt.datetime,
    variables: dict[str, str] | None = None,
) -> Enrollment:
    """Enroll (idempotent): enrolling again in the same campaign moves the anchor, never duplicates."""
    if campaign_id not in rt.content.campaigns:
        raise UnknownCampaign(campaign_id)
    enrollment = session.scalars(
        select(Enrollment)
        .where(Enrollment.patient_id == patient.id, Enrollment.campaign == campaign_id, Enrollment.status == "active")
        .with_for_update()
    ).first()
    if enrollment is None:
        enrollment = Enrollment(
            patient_id=patient.id,
            campaign=campaign_id,
            anchor_date=anchor,
            status="active",
            schedule_version=1,
            created_at=now,
        )
        session.add(enrollment)
        session.flush()
    elif enrollment.anchor_date != anchor:
        enrollment.anchor_date = anchor
        enrollment.schedule_version += 1
    if variables is not None:
        enrollment.variables = variables
    derive_touches(session, rt, enrollment, patient, now)
    return enrollment


def derive_touches(session: Session, rt: Runtime, enrollment: Enrollment, patient: Patient, now: dt.datetime) -> None:
    """Replace the enrollment's pending occurrences with ones derived from its current anchor."""
    session.execute(
        delete(ScheduledTouch).where(
            ScheduledTouch.enrollment_id == enrollment.id, ScheduledTouch.status == TouchStatus.PENDING
        )
    )
    existing = set(
        session.scalars(
            select(ScheduledTouch.occurrence_key).where(ScheduledTouch.enrollment_id == enrollment.id)
        ).all()
    )
    if patient.reachable:
        campaign = rt.content.campaigns[enrollment.campaign]
        for touch in campaign.touches:
            for due in occurrences(touch, enrollment.anchor_date, patient.timezone):
                if due < now and not still_worth_sending(due, now, touch.stale_after_minutes):
                    continue
                key = occurrence_key(enrollment.id, touch.id, enrollment.schedule_version, due)
                if key in existing:
                    continue
                session.add(
                    ScheduledTouch(
                        enrollment_id=enrollment.id,
                        touch_id=touch.id,
                        flow_id=touch.flow,
                        due_at=due,
                        scheduled_for=due,
                        stale_after_minutes=touch.stale_after_minutes,
                        occurrence_key=key,
                        status=TouchStatus.PENDING,
                    )
                )
    session.flush()
    refresh_next_due(session, enrollment)


def refresh_next_due(session: Session, enrollment: Enrollment) -> None:
    enrollment.next_due_at = session.scalar(
        select(func.min(ScheduledTouch.due_at)).where(
            ScheduledTouch.enrollment_id == enrollment.id, ScheduledTouch.status == TouchStatus.PENDING
        )
    )


def rederive_for_patient(session: Session, rt: Runtime, patient: Patient, now: dt.datetime) -> None:
    """After an opt-in: future occurrences of every active enrollment come back (missed ones do not)."""
    for enrollment in session.scalars(
        select(Enrollment).where(Enrollment.patient_id == patient.id, Enrollment.status == "active")
    ).all():
        enrollment.schedule_version += 1
        derive_touches(session, rt, enrollment, patient, now)
