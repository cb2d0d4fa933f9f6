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

from sqlalchemy import select
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
class NewEnrollment:
    """One enrollment to make: ``anchor`` None means the patient's local today."""

    patient: Patient
    campaign_id: str
    anchor: dt.date | None = None


def enroll_new(
    session: Session, rt: Runtime, wanted: Sequence[NewEnrollment], now: dt.datetime
) -> list[Enrollment | ConsentRequired]:
    """Make every enrollment in ``wanted`` (in order) and derive its occurrences, as ``enroll`` would.

    Returns, per item, the new Enrollment (flushed: it has its id) or the ConsentRequired that ``enroll``
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
            )
        ):
            pending[patient_id].append(due_at)
    results: list[Enrollment | ConsentRequired] = []
    made: list[tuple[Enrollment, Campaign, Patient, list[tuple[Occurrence, dt.datetime]]]] = []
    for item, campaign in zip(wanted, campaigns, strict=True):
        patient = item.patient
        anchor = item.anchor or local_today(now, patient.timezone)
        conditions = patient.conditions or []
        if patient.id in capped:
            planned = plan(campaign, anchor, patient.timezone, conditions=conditions, variables={}, anchor_moment=now)
            dues = [due for _, due in upcoming(planned, now, send_now=campaign.start == "now", already=set())]
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
        session.add(enrollment)
        made.append((enrollment, campaign, patient, chosen))
        results.append(enrollment)
    session.flush()  # one INSERT ... RETURNING for every enrollment: their ids key the occurrences
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
    return results
