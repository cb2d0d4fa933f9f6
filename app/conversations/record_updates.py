"""Applying a flow's record effects (``effects:`` in a flow, ``engine.UpdateRecord``) to the patient.

The welcome flow (issue 12 item 1) asks for consent to texts or calls, the preferred time of day, whether a
caregiver may also get messages and whether an interpreter is needed; the social-needs screen schedules its
two-week follow-up. The flow says *what* changes as data; this module is the one place that knows *how*:

- ``consent``: ``texts_and_calls`` / ``texts`` / ``calls`` record a consent record (app/patients/consent.py)
  for those channels, under the basis content/consent.yaml gives the channel the answer came on
  (``answered_consent_basis``: a typed reply is express written, a call's answer express oral), recorded by
  ``flow:<id>``; ``declined`` records nothing and writes a ``consent_declined`` timeline row for staff;
- ``preferred_time``: morning | afternoon | evening (``any`` clears it); check-ins move into that window
  (app/scheduling/occurrences.py ``touch_times``);
- ``interpreter_needed``, ``caregiver_may_receive``: true / false on the patient; a yes to the caregiver
  question grants the known caregiver phone (``patients.caregiver_phone``) the ``reminders`` scope
  (app/patients/caregivers.py, basis ``patient_text`` for a typed reply, ``verbal`` for a call), or, with no
  phone on file, opens a ROUTINE task ``caregiver_phone_needed`` so staff collect it;
- ``event``: the date (the patient's today) of a campaign anchor event on every active enrollment whose
  campaign has a touch anchored on it (``social_needs_referred`` → the follow-up 14 days later).

Whatever the schedule depends on (preferred time, events) is written in this transaction; the schedule is
derived again by the job ``app.tasks.refresh_schedule`` after the commit, and, should that job be lost, by
the sweeper, which re-derives an enrollment whose basis changed before it sends anything.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import after_commit
from app.escalation.levels import EscalationLevel
from app.escalation.service import escalate
from app.flows import engine
from app.models import Enrollment, Patient, TimelineEvent
from app.patients.caregivers import caregivers_of, grant_caregiver_permission
from app.patients.consent import CHANNELS, record_consent
from app.runtime import Runtime

#: The job that derives the patient's schedule again (app/tasks.py), enqueued by name after the commit.
REFRESH_JOB = "app.tasks.refresh_schedule"
#: A consent answer → the channels it covers.
CONSENT_CHANNELS = {"texts_and_calls": ["sms", "voice"], "texts": ["sms"], "calls": ["voice"]}


def apply_record_update(
    session: Session,
    rt: Runtime,
    patient: Patient,
    update: engine.UpdateRecord,
    *,
    channel: str,
    conversation_id: int,
    now: dt.datetime,
) -> list[str]:
    """Apply one effect's changes to ``patient`` (``channel``: the conversation's, ``sms`` or ``voice``).

    Returns the fields that changed. Each change writes one timeline row (kind ``record_updated``, or the
    consent module's ``consent_recorded``); a change to what the schedule depends on enqueues
    :data:`REFRESH_JOB` after the commit. Unknown fields cannot reach here (the loader refuses them).
    """
    changed: list[str] = []
    for key, value in update.changes.items():
        if key == "consent":
            if _consent(session, rt, patient, str(value), channel, conversation_id, now):
                changed.append(key)
        elif key == "preferred_time":
            wanted = None if value == "any" else str(value)
            if patient.preferred_time != wanted:
                patient.preferred_time = wanted
                changed.append(key)
        elif key == "interpreter_needed":
            if patient.interpreter_needed is not bool(value):
                patient.interpreter_needed = bool(value)
                changed.append(key)
        elif key == "caregiver_may_receive":
            if patient.caregiver_may_receive is not bool(value):
                patient.caregiver_may_receive = bool(value)
                changed.append(key)
            if bool(value):
                _caregiver_allowed(session, rt, patient, channel, conversation_id, now)
        elif key == "event" and _record_event(session, rt, patient, str(value), now):
            changed.append(str(value))
    for code in changed:
        if code == "consent":
            continue  # record_consent wrote its own row
        session.add(
            TimelineEvent(
                patient_id=patient.id,
                kind="record_updated",
                code=code,
                detail={"effect": update.effect_id, "conversation_id": conversation_id, "value": _shown(patient, code)},
                at=now,
            )
        )
    if any(code not in ("consent", "interpreter_needed", "caregiver_may_receive") for code in changed):
        patient_id = patient.id
        session.flush()
        after_commit(session, lambda: rt.jobs.enqueue(REFRESH_JOB, patient_id, job_id=f"refresh-{patient_id}-{now:%s}"))
    return changed


#: Fields whose new value the timeline row shows (an event shows only that it was dated).
_PATIENT_FIELDS = ("preferred_time", "interpreter_needed", "caregiver_may_receive")


def _shown(patient: Patient, code: str) -> object:
    return getattr(patient, code, None) if code in _PATIENT_FIELDS else True


#: The task a caregiver "yes" opens when no caregiver phone is on file (app/web/labels.py has its words).
CAREGIVER_PHONE_NEEDED = "caregiver_phone_needed"


def _caregiver_allowed(
    session: Session, rt: Runtime, patient: Patient, channel: str, conversation_id: int, now: dt.datetime
) -> None:
    """The patient said a caregiver may also get messages: grant the known caregiver phone copies of
    reminders (only that scope: answering for the patient or getting escalation advice needs staff to ask),
    unless it already has them; with no phone known, a ROUTINE task asks staff to collect it."""
    how = "voice" if channel == "voice" else "sms"
    phone = patient.caregiver_phone
    if not phone:
        escalate(
            session,
            rt,
            patient,
            level=EscalationLevel.ROUTINE.value,
            reason=CAREGIVER_PHONE_NEEDED,
            rule_id="welcome:caregiver_phone_needed",
            detail={"source": "welcome", "channel": how},
            conversation_id=conversation_id,
            now=now,
        )
        return
    if any(c.phone == phone for c in caregivers_of(session, patient.id, "reminders")):
        return
    grant_caregiver_permission(
        session,
        patient,
        phone=phone,
        scopes=["reminders"],
        basis="verbal" if how == "voice" else "patient_text",
        recorded_by=f"welcome flow: patient reply ({how}, conversation {conversation_id})",
        now=now,
    )


def _consent(
    session: Session, rt: Runtime, patient: Patient, answer: str, channel: str, conversation_id: int, now: dt.datetime
) -> bool:
    if answer == "declined":
        session.add(
            TimelineEvent(
                patient_id=patient.id,
                kind="record_updated",
                code="consent_declined",
                detail={"conversation_id": conversation_id},
                at=now,
            )
        )
        return False
    how = "voice" if channel == "voice" else "sms"
    basis = rt.content.answered_consent_basis.get(how, "express_oral" if how == "voice" else "express_written")
    channels = [c for c in CONSENT_CHANNELS.get(answer, list(CHANNELS)) if c in CHANNELS]
    record = {
        "basis": basis,
        "date": now.astimezone(ZoneInfo(patient.timezone)).date(),
        "recorded_by": f"patient reply ({how}, conversation {conversation_id})",
        "channels": channels,
    }
    return record_consent(session, patient, record, actor="welcome flow", now=now)


def _record_event(session: Session, rt: Runtime, patient: Patient, event: str, now: dt.datetime) -> bool:
    """Date ``event`` (the patient's today) on each active enrollment whose campaign anchors a touch on it."""
    today = now.astimezone(ZoneInfo(patient.timezone)).date().isoformat()
    found = False
    for enrollment in session.scalars(
        select(Enrollment).where(Enrollment.patient_id == patient.id, Enrollment.status == "active")
    ).all():
        campaign = rt.content.campaign(enrollment.campaign)
        if campaign is None or not any(t.anchor_event == event for t in campaign.touches):
            continue
        if (enrollment.events or {}).get(event) == today:
            continue
        enrollment.events = {**(enrollment.events or {}), event: today}
        found = True
    return found
