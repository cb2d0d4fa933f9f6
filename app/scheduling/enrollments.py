"""Enrolling patients in campaigns and deriving the SQL rows for every scheduled occurrence.

The rule that fixes a whole kind of fault (issue 10 item 2): the pending occurrences of an enrollment are
a function of its *schedule basis* — the campaign version, the patient's time zone and conditions, the
patient's own times, the anchor date and the event dates. Whenever any of these changes, every pending
occurrence is derived again under a new schedule version (sent and skipped ones are kept, and are not
planned a second time). Every path that changes one of them calls ``reschedule_if_changed``; the sweeper
checks the basis again before it sends, as a safety net for a path that did not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.models import Enrollment, Patient, Program, ScheduledTouch, TimelineEvent, TouchStatus
from app.patients.consent import clean_consent, is_capped, record_consent
from app.patients.service import upsert_patient
from app.runtime import Runtime
from app.scheduling.campaigns import Campaign
from app.scheduling.caps import schedule_exceeds_caps
from app.scheduling.occurrences import local_today, occurrence_key, plan, upcoming

ACTIVE = "active"
STOPPED = "stopped"


class UnknownCampaign(LookupError):
    pass


class ConsentRequired(Exception):
    """Enrolling would need more than the health-care exemption allows (FCC 15-72: 1 a day, 3 a week)
    and the patient has no express consent recorded. ``cap``: ``daily_cap`` | ``weekly_cap``; ``day``:
    the first local day over the cap."""

    code = "consent_required"

    def __init__(self, campaign_id: str, cap: str, day: dt.date):
        limit = "1 a day" if cap == "daily_cap" else "3 a week"
        self.message = (
            f"Campaign '{campaign_id}' would send more than {limit} (first on {day.isoformat()}); the patient's "
            "consent basis is the health-care exemption. Record express consent first (basis express_written or "
            "express_oral)."
        )
        super().__init__(self.message)
        self.campaign_id = campaign_id
        self.cap = cap
        self.day = day


def note(
    session: Session,
    patient_id: int,
    kind: str,
    code: str,
    now: dt.datetime,
    *,
    enrollment_id: int | None = None,
    touch_row_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """A row on the patient's timeline (app/scheduling/reasons.py gives ``code`` its words)."""
    session.add(
        TimelineEvent(
            patient_id=patient_id,
            enrollment_id=enrollment_id,
            touch_row_id=touch_row_id,
            kind=kind,
            code=code,
            detail=dict(detail or {}),
            at=now,
        )
    )


def _campaign(rt: Runtime, campaign_id: str) -> Campaign:
    campaign = rt.content.campaign(campaign_id)
    if campaign is None:
        raise UnknownCampaign(campaign_id)
    return campaign


def schedule_basis(campaign: Campaign, patient: Patient, enrollment: Enrollment) -> str:
    """What the occurrences depend on, as one short string (compared, never parsed)."""
    parts = [
        patient.timezone,
        sorted(patient.conditions or []),
        enrollment.anchor_date.isoformat(),
        {k: v for k, v in sorted((enrollment.variables or {}).items()) if k == "dose_times"},
        dict(sorted((enrollment.events or {}).items())),
    ]
    if patient.preferred_time:
        parts.append(patient.preferred_time)  # only when set: existing bases stay as they were
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"{campaign.version}:{digest}"


def check_consent(
    session: Session,
    rt: Runtime,
    patient: Patient,
    campaign: Campaign,
    anchor: dt.date,
    now: dt.datetime,
    variables: Mapping[str, Any] | None,
    replacing: int | None = None,
) -> None:
    """Raise ConsentRequired when the patient is capped and this campaign, with what is already pending
    for the patient, would send more than 1 a day or 3 a week (never a silent skip later). Education touches
    are left out: they never exceed a cap when sent (the sweeper defers them to a day with room)."""
    program = session.get(Program, patient.program_id)
    assert program is not None
    if not is_capped(patient, program):
        return
    planned = plan(
        campaign,
        anchor,
        patient.timezone,
        conditions=patient.conditions or [],
        variables=variables,
        anchor_moment=now,
        preferred_time=patient.preferred_time,
    )
    dues = [
        due
        for occ, due in upcoming(planned, now, send_now=campaign.start == "now", already=set())
        if occ.touch.education is None
    ]
    query = (
        select(ScheduledTouch.due_at)
        .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
        .where(
            Enrollment.patient_id == patient.id,
            Enrollment.status == ACTIVE,
            ScheduledTouch.status == TouchStatus.PENDING,
            ScheduledTouch.flow_id.not_like("education:%"),
        )
    )
    if replacing is not None:
        query = query.where(Enrollment.id != replacing)
    dues += list(session.scalars(query).all())
    over = schedule_exceeds_caps(dues, patient.timezone)
    if over:
        raise ConsentRequired(campaign.id, *over)


def enroll(
    session: Session,
    rt: Runtime,
    patient: Patient,
    campaign_id: str,
    anchor: dt.date | None,
    now: dt.datetime,
    variables: dict[str, str] | None = None,
) -> Enrollment:
    """Enroll (idempotent): enrolling again in the same campaign moves the anchor, never duplicates.

    ``anchor`` None means the patient's local today (not the UTC date). An old campaign id (an alias)
    enrolls in the campaign that replaced it. Raises UnknownCampaign, or ConsentRequired (nothing written)
    when a patient under the health-care exemption would get more than 1 a day or 3 a week.
    """
    campaign = _campaign(rt, campaign_id)
    anchor = anchor or local_today(now, patient.timezone)
    ids = (campaign.id, *campaign.aliases)
    enrollment = session.scalars(
        select(Enrollment)
        .where(Enrollment.patient_id == patient.id, Enrollment.campaign.in_(ids), Enrollment.status == ACTIVE)
        .order_by(Enrollment.id)
        .with_for_update()
    ).first()
    effective_variables = variables if variables is not None else (enrollment.variables if enrollment else {})
    check_consent(
        session, rt, patient, campaign, anchor, now, effective_variables, enrollment.id if enrollment else None
    )
    first = enrollment is None
    if enrollment is None:
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
        session.add(enrollment)
        session.flush()
        if not campaign.applies_to(patient.conditions):
            note(session, patient.id, "enrollment_note", "condition_not_met", now, enrollment_id=enrollment.id)
    elif enrollment.anchor_date != anchor:
        enrollment.anchor_date = anchor
        enrollment.schedule_version += 1
    if variables is not None and variables != enrollment.variables:
        enrollment.variables = variables
        if not first:
            enrollment.schedule_version += 1
    derive_touches(session, rt, enrollment, patient, now, first=first)
    return enrollment


def _already_handled(session: Session, enrollment: Enrollment, tz: str) -> set[tuple[str, dt.date, int]]:
    """(touch, local day, slot) of every occurrence sent or skipped: they are never planned again."""
    zone = ZoneInfo(tz)
    rows = session.execute(
        select(ScheduledTouch.touch_id, ScheduledTouch.scheduled_for)
        .where(
            ScheduledTouch.enrollment_id == enrollment.id,
            ScheduledTouch.status.in_([TouchStatus.DONE, TouchStatus.SKIPPED]),
        )
        .order_by(ScheduledTouch.scheduled_for)
    ).all()
    slots: dict[tuple[str, dt.date], int] = defaultdict(int)
    handled = set()
    for touch_id, scheduled_for in rows:
        day = scheduled_for.astimezone(zone).date()
        handled.add((touch_id, day, slots[(touch_id, day)]))
        slots[(touch_id, day)] += 1
    return handled


def derive_touches(
    session: Session, rt: Runtime, enrollment: Enrollment, patient: Patient, now: dt.datetime, *, first: bool = False
) -> None:
    """Replace the enrollment's pending occurrences with ones derived from its current basis.

    Sent and skipped occurrences stay as they were and are not planned again; an occurrence whose time
    has passed is not planned (``first`` and ``start: now``: the latest fresh one goes out at once).
    """
    campaign = _campaign(rt, enrollment.campaign)
    zone = ZoneInfo(patient.timezone)
    # A new enrollment has no rows yet: nothing to read or delete (enrolling thousands through the API).
    overdue: frozenset[tuple[str, dt.date]] = frozenset()
    if not first:
        overdue = frozenset(
            (touch_id, scheduled_for.astimezone(zone).date())
            for touch_id, scheduled_for in session.execute(
                select(ScheduledTouch.touch_id, ScheduledTouch.scheduled_for).where(
                    ScheduledTouch.enrollment_id == enrollment.id,
                    ScheduledTouch.status == TouchStatus.PENDING,
                    ScheduledTouch.scheduled_for <= now,
                )
            ).all()
        )
        session.execute(
            delete(ScheduledTouch).where(
                ScheduledTouch.enrollment_id == enrollment.id, ScheduledTouch.status == TouchStatus.PENDING
            )
        )
    next_due: dt.datetime | None = None
    if patient.reachable and enrollment.status == ACTIVE:
        existing: set[str] = set()
        if not first:
            existing = set(
                session.scalars(
                    select(ScheduledTouch.occurrence_key).where(ScheduledTouch.enrollment_id == enrollment.id)
                ).all()
            )
        planned = plan(
            campaign,
            enrollment.anchor_date,
            patient.timezone,
            conditions=patient.conditions or [],
            variables=enrollment.variables,
            events=enrollment.events,
            anchor_moment=enrollment.created_at,
            preferred_time=patient.preferred_time,
        )
        handled = set() if first else _already_handled(session, enrollment, patient.timezone)
        rows = []
        send_now = first and campaign.start == "now"
        for occ, due in upcoming(planned, now, send_now=send_now, already=handled, overdue=overdue):
            key = occurrence_key(enrollment.id, occ.touch.id, enrollment.schedule_version, occ.due)
            if key in existing:
                continue
            existing.add(key)
            rows.append(
                {
                    "enrollment_id": enrollment.id,
                    "touch_id": occ.touch.id,
                    "flow_id": occ.touch.flow,
                    "due_at": due,
                    "scheduled_for": occ.due,
                    "stale_after_minutes": occ.touch.stale_after_minutes,
                    "occurrence_key": key,
                    "status": TouchStatus.PENDING,
                }
            )
            next_due = due if next_due is None else min(next_due, due)
        if rows:
            # One executemany, no RETURNING (nothing needs the ids here): pipelined by psycopg, not a
            # statement per touch and not one huge multi-row INSERT to parse.
            session.execute(insert(ScheduledTouch), rows)
    enrollment.schedule_basis = schedule_basis(campaign, patient, enrollment)
    if first:
        enrollment.next_due_at = next_due  # the rows just written are all there is
    else:
        session.flush()
        refresh_next_due(session, enrollment)


def refresh_next_due(session: Session, enrollment: Enrollment) -> None:
    enrollment.next_due_at = session.scalar(
        select(func.min(ScheduledTouch.due_at)).where(
            ScheduledTouch.enrollment_id == enrollment.id, ScheduledTouch.status == TouchStatus.PENDING
        )
    )


def _active(session: Session, patient: Patient) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.patient_id == patient.id, Enrollment.status == ACTIVE)
            .order_by(Enrollment.id)
        ).all()
    )


def rederive_for_patient(session: Session, rt: Runtime, patient: Patient, now: dt.datetime) -> None:
    """After an opt-in: future occurrences of every active enrollment come back (missed ones do not)."""
    for enrollment in _active(session, patient):
        enrollment.schedule_version += 1
        derive_touches(session, rt, enrollment, patient, now)


def reschedule_if_changed(session: Session, rt: Runtime, patient: Patient, now: dt.datetime) -> int:
    """Derive again every active enrollment whose basis changed (time zone, conditions, times, anchor,
    events, campaign version); a timeline row says so. Returns how many were rescheduled."""
    count = 0
    for enrollment in _active(session, patient):
        campaign = rt.content.campaign(enrollment.campaign)
        if campaign is None or enrollment.schedule_basis == schedule_basis(campaign, patient, enrollment):
            continue
        noted = enrollment.schedule_basis is not None
        enrollment.schedule_version += 1
        derive_touches(session, rt, enrollment, patient, now)
        if noted:
            note(
                session,
                patient.id,
                "schedule_rederived",
                "schedule_changed",
                now,
                enrollment_id=enrollment.id,
                detail={"timezone": patient.timezone, "version": enrollment.schedule_version},
            )
        count += 1
    return count


def save_patient(
    session: Session,
    rt: Runtime,
    program: Program,
    data: Mapping[str, Any],
    *,
    actor: str,
    now: dt.datetime,
    consent: Mapping[str, Any] | None = None,
    known_thresholds: Collection[str] = (),
) -> tuple[Patient, bool]:
    """Create or update a patient by MRN (app/patients/service.py), record its consent when given, and
    re-derive the pending occurrences of every enrollment whose basis changed (a new time zone, say).

    Raises ValidationFailed / InvalidConsent (nothing written by the caller's rollback).
    """
    patient, created = upsert_patient(session, program, data, actor=actor, now=now, known_thresholds=known_thresholds)
    if consent is not None:
        # Checked against the patient's own today; a bad record raises and the caller rolls back.
        record_consent(
            session, patient, clean_consent(consent, local_today(now, patient.timezone)), actor=actor, now=now
        )
    if not created:
        reschedule_if_changed(session, rt, patient, now)
    return patient, created


def record_event(
    session: Session, rt: Runtime, patient: Patient, event: str, now: dt.datetime, on: dt.date | None = None
) -> list[Enrollment]:
    """Apply an event (``readmitted``, ``opted_out``, ``goal_met``, ``positive_screen``...) to the patient's
    active enrollments: a campaign that stops on it stops (pending touches cancelled, on the timeline); a
    touch anchored on it is scheduled from its date (``on``, default the patient's local today).
    Returns the enrollments that changed."""
    day = on or local_today(now, patient.timezone)
    changed = []
    for enrollment in _active(session, patient):
        campaign = rt.content.campaign(enrollment.campaign)
        if campaign is None:
            continue
        if event in campaign.stop_on:
            enrollment.status = STOPPED
            enrollment.status_reason = event
            session.execute(
                update(ScheduledTouch)
                .where(ScheduledTouch.enrollment_id == enrollment.id, ScheduledTouch.status == TouchStatus.PENDING)
                .values(status=TouchStatus.CANCELLED, outcome=event, processed_at=now)
            )
            enrollment.next_due_at = None
            note(session, patient.id, "enrollment_stopped", event, now, enrollment_id=enrollment.id)
            changed.append(enrollment)
        elif any(t.anchor_event == event for t in campaign.touches):
            enrollment.events = {**(enrollment.events or {}), event: day.isoformat()}
            enrollment.schedule_version += 1
            derive_touches(session, rt, enrollment, patient, now)
            changed.append(enrollment)
    return changed


def refresh_patient_schedule(rt: Runtime, patient_id: int, now: dt.datetime | None = None) -> int:
    """Derive again every active enrollment of the patient whose basis changed (``reschedule_if_changed``),
    in a transaction of its own; the job ``app.tasks.refresh_schedule``. Returns how many changed."""
    moment = now or rt.now()
    with rt.sessions() as session, session.begin():
        patient = session.get(Patient, patient_id)
        if patient is None:
            return 0
        return reschedule_if_changed(session, rt, patient, moment)
