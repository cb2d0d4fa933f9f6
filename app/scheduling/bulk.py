"""Enrolling many patients at once (CSV import, an ADT discharge) with the same result as
``app.scheduling.enrollments.enroll`` one by one, in a few statements instead of a dozen per enrollment.

Only for *new* enrollments: the caller has made sure none of these patients has an active enrollment in
the campaign (or one of its aliases); anything else (moving an anchor, re-deriving) goes through
``enroll``. For a new enrollment ``enroll`` finds nothing pending, nothing overdue, nothing sent and no
keys taken, so deriving its occurrences is the pure ``plan`` + ``upcoming``; this module does exactly that
and writes the enrollments (one multi-row INSERT ... RETURNING), their occurrences (COPY on PostgreSQL)
and each enrollment's ``next_due_at`` and ``schedule_basis`` in the same transaction as the caller.
tests/integration/test_bulk_enrollment.py checks that both ways give the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db import insert_many
from app.models import Enrollment, Patient, Program, ScheduledTouch, TouchStatus
from app.patients.consent import is_capped
from app.runtime import Runtime
from app.scheduling.campaigns import Campaign
from app.scheduling.caps import schedule_exceeds_caps
from app.scheduling.enrollments import (
    ACTIVE,
    ConsentRequired,
    _campaign,
    note,
    schedule_basis,
)
from app.scheduling.occurrences import Occurrence, local_today, occurrence_key, plan, upcoming


@dataclass(frozen=True)
class Enrolled:
    """An enrollment ``enroll_new`` made (its row is written; this is a read-only note of it)."""

    id: int
    campaign: str
    patient_id: int


@dataclass(frozen=True)
class NewEnrollment:
    """One enrollment to make: ``anchor`` None means the patient's local today."""

    patient: Patient
    campaign_id: str
    anchor: dt.date | None = None


def enroll_new(
    session: Session, rt: Runtime, wanted: Sequence[NewEnrollment], now: dt.datetime
) -> list[Enrolled | ConsentRequired]:
    """Make every enrollment in ``wanted`` (in order) and derive its occurrences, as ``enroll`` would.

    Returns, per item, the new enrollment (written, with its id) or the ConsentRequired that ``enroll``
    would have raised (nothing written for that item; the caller says so on the row and the timeline).
    Raises UnknownCampaign (nothing written) when a campaign id is unknown. A patient enrolled in several
    campaigns here has each checked against the caps with the ones before it, as one ``enroll`` after
    another would.
    """
    campaigns = [_campaign(rt, item.campaign_id) for item in wanted]
    programs: dict[int, Program] = {}
    for item in wanted:
        if item.patient.program_id not in programs:
            program = session.get(Program, item.patient.program_id)
            assert program is not None
            programs[item.patient.program_id] = program
    capped = {item.patient.id for item in wanted if is_capped(item.patient, programs[item.patient.program_id])}
    # What is already pending for the capped patients (one query for all of them; ``check_consent``).
    pending: dict[int, list[dt.datetime]] = defaultdict(list)
    if capped:
        for patient_id, due_at in session.execute(
            select(Enrollment.patient_id, ScheduledTouch.due_at)
            .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
            .where(
                Enrollment.patient_id.in_(capped),
                Enrollment.status == ACTIVE,
                ScheduledTouch.status == TouchStatus.PENDING,
                ScheduledTouch.flow_id.not_like("education:%"),  # lessons never exceed a cap (check_consent)
            )
        ):
            pending[patient_id].append(due_at)
    results: list[Enrolled | ConsentRequired | None] = []
    made: list[tuple[Enrollment, Campaign, Patient, list[tuple[Occurrence, dt.datetime]]]] = []
    for item, campaign in zip(wanted, campaigns, strict=True):
        patient = item.patient
        anchor = item.anchor or local_today(now, patient.timezone)
        conditions = patient.conditions or []
        if patient.id in capped:
            planned = plan(campaign, anchor, patient.timezone, conditions=conditions, variables={}, anchor_moment=now)
            dues = [
                due
                for occ, due in upcoming(planned, now, send_now=campaign.start == "now", already=set())
                if occ.touch.education is None
            ]
            over = schedule_exceeds_caps(dues + pending[patient.id], patient.timezone)
            if over:
                results.append(ConsentRequired(campaign.id, *over))
                continue
        enrollment = Enrollment(
            patient_id=patient.id,
            campaign=campaign.id,
            anchor_date=anchor,
            status=ACTIVE,
            schedule_version=1,
            created_at=now,
            variables={},
            events={},
        )
        chosen: list[tuple[Occurrence, dt.datetime]] = []
        if patient.reachable:
            planned = plan(
                campaign,
                anchor,
                patient.timezone,
                conditions=conditions,
                variables=enrollment.variables,
                events=enrollment.events,
                anchor_moment=now,
            )
            chosen = upcoming(planned, now, send_now=campaign.start == "now", already=set())
        enrollment.schedule_basis = schedule_basis(campaign, patient, enrollment)
        enrollment.next_due_at = min((due for _, due in chosen), default=None)
        pending[patient.id].extend(due for _, due in chosen)
        made.append((enrollment, campaign, patient, chosen))
        results.append(None)  # filled in once the enrollment has its id
    _write_enrollments(session, [enrollment for enrollment, _c, _p, _o in made])
    touches: list[dict[str, object]] = []
    for enrollment, campaign, patient, chosen in made:
        if not campaign.applies_to(patient.conditions):
            note(session, patient.id, "enrollment_note", "condition_not_met", now, enrollment_id=enrollment.id)
        keys: set[str] = set()
        for occ, due in chosen:
            key = occurrence_key(enrollment.id, occ.touch.id, enrollment.schedule_version, occ.due)
            if key in keys:
                continue
            keys.add(key)
            touches.append(
                {
                    "enrollment_id": enrollment.id,
                    "touch_id": occ.touch.id,
                    "flow_id": occ.touch.flow,
                    "due_at": due,
                    "scheduled_for": occ.due,
                    "stale_after_minutes": occ.touch.stale_after_minutes,
                    "occurrence_key": key,
                    "status": TouchStatus.PENDING.value,
                    "outcome": None,
                    "processed_at": None,
                    "conversation_id": None,
                }
            )
    insert_many(session, ScheduledTouch.__table__, touches)
    written = iter(made)
    done: list[Enrolled | ConsentRequired] = []
    for result in results:
        if result is None:
            enrollment = next(written)[0]
            result = Enrolled(enrollment.id, enrollment.campaign, enrollment.patient_id)
        done.append(result)
    return done


def _write_enrollments(session: Session, enrollments: list[Enrollment]) -> None:
    """Give every enrollment its id and write it. PostgreSQL: ids from the table's sequence in one query
    and the rows by ``insert_many`` (no ORM objects in the session: a large import keeps none in memory);
    elsewhere through the ORM (one flush)."""
    if not enrollments:
        return
    if session.connection().dialect.name != "postgresql":
        session.add_all(enrollments)
        session.flush()
        for enrollment in enrollments:
            session.expunge(enrollment)  # as on PostgreSQL: the caller holds notes, not session objects
        return
    ids = session.scalars(
        text("SELECT nextval(pg_get_serial_sequence('enrollments', 'id')) FROM generate_series(1, :n)"),
        {"n": len(enrollments)},
    ).all()
    columns = [column.name for column in Enrollment.__table__.columns]
    rows = []
    for enrollment, enrollment_id in zip(enrollments, ids, strict=True):
        enrollment.id = int(enrollment_id)
        rows.append({name: getattr(enrollment, name) for name in columns})
    insert_many(session, Enrollment.__table__, rows)
