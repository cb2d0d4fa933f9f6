"""Applying HL7 v2 ADT messages (DESIGN §1: enrollment from the hospital's feeds), for ``POST /api/v1/adt``
and the MLLP listener alike: one message in, one ACK out, one transaction.

- A03 (discharge): create or update the patient (PID), open the TCM clock for the visit (PV1-19), and
  enroll in the campaigns the ADT mapping gives for the unit and diagnoses (anchor = the local discharge
  date), adding the mapped conditions. A patient new to Outreach needs a name and a phone that can take
  texts, else AE.
- A01 / A04 (admit / register) while enrolled: a readmission. The outreach an admission makes wrong pauses
  (reason ``readmitted``; which one: app/programs/enrollment.py:paused_by_admission) and the open
  discharge records ``readmitted_at``. Not enrolled: AA, nothing to do. The next A03 restarts the mapped
  campaigns from the new discharge and resumes the other enrollments the admission paused.
- A08 (update patient information): names, birth date, language, phone of a known patient.
- A11 (cancel admit): undoes the readmission pause. A13 (cancel discharge): the discharge is cancelled
  (off the TCM list) and the enrollments it made end (reason ``discharge cancelled``).
- Other ADT events: AA, nothing changes.
A message that cannot be used (AE/AR) changes nothing and the ACK says why (field and problem). The same
message delivered again (same MSH-3/4 and MSH-10) gets the first answer again and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.flows.loader import FlowError
from app.models import AdtMessage, Discharge, Enrollment, Patient, Program
from app.patients.phones import InvalidPhone, to_e164
from app.patients.service import default_program
from app.programs.combined import combine_campaigns
from app.programs.enrollment import (
    ACTIVE,
    ENDED,
    PAUSED,
    EnrollmentRefused,
    note_event,
    pause,
    paused_by_admission,
    resume,
    unenroll,
)
from app.programs.hl7_adt import AdtEvent, AdtProblem, build_ack, localise, read_adt
from app.programs.mapping import AdtMapping, load_mapping
from app.programs.programs import campaign_allowed, find_program
from app.programs.tcm import open_discharge
from app.runtime import Runtime
from app.scheduling.bulk import NewEnrollment, enroll_new
from app.scheduling.enrollments import ConsentRequired, UnknownCampaign, enroll, note

log = logging.getLogger(__name__)
ACTOR = "adt"
READMITTED = "readmitted"


@dataclass(frozen=True)
class AdtOutcome:
    ack_code: str
    detail: str
    ack: str
    event: str = ""
    patient_id: int | None = None
    duplicate: bool = False


class _Refused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def receive_adt(rt: Runtime, text: str, *, program_slug: str | None = None, retried: int = 0) -> AdtOutcome:
    """Apply one ADT message and answer its ACK (AA / AE / AR); never raises for bad input."""
    now = rt.now()
    try:
        event = read_adt(text)
    except AdtProblem as problem:
        if problem.control_id and problem.sender:
            _remember(rt, problem.sender, problem.control_id, problem.event, problem.ack_code, problem.reason, now)
        log.info("adt refused ack=%s event=%s reason=%s", problem.ack_code, problem.event or "-", problem.reason)
        return AdtOutcome(
            problem.ack_code, problem.reason, build_ack(text, problem.ack_code, problem.reason, now=now), problem.event
        )
    try:
        with rt.sessions() as session:
            try:
                with session.begin():
                    earlier = session.scalars(
                        select(AdtMessage).where(
                            AdtMessage.sender == event.sender, AdtMessage.control_id == event.control_id
                        )
                    ).first()
                    if earlier is not None:
                        return AdtOutcome(
                            earlier.ack_code,
                            earlier.detail,
                            build_ack(text, earlier.ack_code, earlier.detail, now=now),
                            event.event,
                            earlier.patient_id,
                            duplicate=True,
                        )
                    program = _program(session, rt, event, program_slug)
                    patient_id, detail = _apply(session, rt, program, event)
                    code = "AA"
                    session.add(_answer(event, code, detail, program.id, patient_id, now))
            except _Refused as refused:
                # A message that cannot be used changes nothing: everything it did is rolled back (no
                # savepoint on the way of every good message), and the answer is stored on its own.
                patient_id, detail, code = None, refused.reason, "AE"
                with session.begin():
                    session.add(_answer(event, code, detail, None, None, now))
    except IntegrityError:
        # The same message is being applied by another connection right now: answer as it will.
        return (
            receive_adt(rt, text, program_slug=program_slug, retried=retried + 1)
            if retried < 2
            else _failed(text, event, now)
        )
    except Exception as exc:  # a fault of ours: nothing was applied; say so instead of dropping the connection
        log.exception("adt failed event=%s error=%s", event.event, type(exc).__name__)
        return _failed(text, event, now)
    log.info("adt applied ack=%s event=%s", code, event.event)
    return AdtOutcome(code, detail, build_ack(text, code, detail, now=now), event.event, patient_id)


def _answer(
    event: AdtEvent, code: str, detail: str, program_id: int | None, patient_id: int | None, now: dt.datetime
) -> AdtMessage:
    """The stored answer to a message (MSH-3/4 + MSH-10 unique): the same message again gets it back."""
    return AdtMessage(
        sender=event.sender,
        control_id=event.control_id,
        event=event.event,
        ack_code=code,
        detail=detail[:400],
        program_id=program_id,
        patient_id=patient_id,
        received_at=now,
    )


def _failed(text: str, event: AdtEvent, now: dt.datetime) -> AdtOutcome:
    reason = "internal error: the message was not applied; send it again later"
    return AdtOutcome("AE", reason, build_ack(text, "AE", reason, now=now), event.event)


def _remember(rt: Runtime, sender: str, control_id: str, event: str, code: str, detail: str, now: dt.datetime) -> None:
    try:
        with rt.sessions() as session, session.begin():
            exists = session.scalars(
                select(AdtMessage.id).where(AdtMessage.sender == sender, AdtMessage.control_id == control_id)
            ).first()
            if exists is None:
                session.add(
                    AdtMessage(
                        sender=sender,
                        control_id=control_id[:64],
                        event=event[:8],
                        ack_code=code,
                        detail=detail[:400],
                        received_at=now,
                    )
                )
    except IntegrityError:
        pass


def _mapping(rt: Runtime) -> AdtMapping:
    try:
        return load_mapping(rt.settings.content_dir, {*rt.content.campaigns, *rt.content.campaign_aliases})
    except FlowError as exc:
        raise _Refused(f"the ADT mapping is invalid ({exc.path}:{exc.line}); run outreach lint-content") from None


def _program(session: Session, rt: Runtime, event: AdtEvent, slug: str | None) -> Program:
    slug = slug or _mapping(rt).program_for(event.facility)
    if slug:
        program = find_program(session, slug)
        if program is None:
            raise _Refused(f"no program '{slug}' for this feed")
        return program
    try:
        return default_program(session)
    except LookupError:
        raise _Refused("no program is set up") from None


def _patient(session: Session, program: Program, mrn: str) -> Patient | None:
    return session.scalars(
        select(Patient).where(Patient.program_id == program.id, Patient.mrn == mrn).with_for_update()
    ).first()


def _first_textable(phones: tuple[str, ...]) -> str | None:
    for raw in phones:
        try:
            return to_e164(raw)
        except InvalidPhone:
            continue
    return None


def _update_demographics(patient: Patient, event: AdtEvent) -> list[str]:
    """Copy what the message carries (absent fields keep their values); returns what changed."""
    changed: list[str] = []
    values: dict[str, object] = {}
    if event.given_name:
        values["given_name"] = event.given_name[:100]
    if event.family_name:
        values["family_name"] = event.family_name[:100]
    if event.birth_date:
        values["birth_date"] = event.birth_date
    if event.language:
        values["language"] = event.language
    phone = _first_textable(event.phones)
    if phone:
        values["phone"] = phone
    for key, value in values.items():
        if getattr(patient, key) != value:
            setattr(patient, key, value)
            changed.append(key)
    if "phone" in changed:
        patient.phone_invalid = False
    return changed


def _apply(session: Session, rt: Runtime, program: Program, event: AdtEvent) -> tuple[int | None, str]:
    now = rt.now()
    if event.event == "A03":
        return _discharge(session, rt, program, event, now)
    patient = _patient(session, program, event.mrn) if event.mrn else None
    if event.event in ("A01", "A04"):
        if patient is None:
            return None, "not enrolled: nothing to do"
        active = _enrollments(session, patient, ACTIVE)
        if not active:
            return patient.id, "not enrolled: nothing to do"
        # Only the outreach an admission makes wrong pauses (app/programs/enrollment.py:paused_by_admission).
        paused = [e for e in active if paused_by_admission(rt, program, e)]
        for enrollment in paused:
            pause(session, enrollment, READMITTED, ACTOR, now)
        discharge = _latest_discharge(session, patient)
        if discharge is not None and discharge.readmitted_at is None:
            discharge.readmitted_at = localise(event.admitted_at or event.recorded_at or now, program.timezone)
        going_on = sorted({e.campaign for e in active if e not in paused})
        return patient.id, f"readmission: {len(paused)} enrollments paused" + (
            f"; continuing: {', '.join(going_on)}" if going_on else ""
        )
    if event.event == "A08":
        if patient is None:
            return None, "unknown patient: nothing to update"
        changed = _update_demographics(patient, event)
        return patient.id, f"updated: {', '.join(changed) or 'nothing changed'}"
    if event.event == "A11":
        if patient is None:
            return None, "unknown patient: nothing to cancel"
        paused = [e for e in _enrollments(session, patient, PAUSED) if _paused_for_readmission(session, e)]
        for enrollment in paused:
            resume(session, rt, enrollment, "admission cancelled", ACTOR, now)
        discharge = _latest_discharge(session, patient)
        if discharge is not None:
            discharge.readmitted_at = None
        return patient.id, f"admission cancelled: {len(paused)} enrollments resumed"
    if event.event == "A13":
        if patient is None:
            return None, "unknown patient: nothing to cancel"
        query = select(Discharge).where(Discharge.patient_id == patient.id, Discharge.status == "open")
        if event.visit_number:
            query = query.where(Discharge.visit_number == event.visit_number[:64])
        discharge = session.scalars(query.order_by(Discharge.discharged_at.desc())).first()
        if discharge is None:
            return patient.id, "no open discharge for this visit: nothing to cancel"
        discharge.status = "cancelled"
        ended = 0
        for enrollment_id in discharge.enrollment_ids or []:
            made = session.get(Enrollment, enrollment_id)
            if made is not None and made.status != ENDED:
                unenroll(session, made, "discharge cancelled", ACTOR, now)
                ended += 1
        return patient.id, f"discharge cancelled: {ended} enrollments ended"
    return None, f"{event.event}: not used by Outreach, nothing changed"


def _enrollments(session: Session, patient: Patient, status: str) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.patient_id == patient.id, Enrollment.status == status)
            .order_by(Enrollment.id)
            .with_for_update()
        ).all()
    )


def _paused_for_readmission(session: Session, enrollment: Enrollment) -> bool:
    from app.models import AuditEvent

    last = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.subject_type == "patient",
            AuditEvent.subject_id == enrollment.patient_id,
            AuditEvent.action == "enrollment.paused",
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    ).all()
    for event in last:
        if event.detail.get("enrollment_id") == enrollment.id:
            return bool(event.detail.get("reason") == READMITTED)
    return False


def _latest_discharge(session: Session, patient: Patient) -> Discharge | None:
    return session.scalars(
        select(Discharge)
        .where(Discharge.patient_id == patient.id, Discharge.status == "open")
        .order_by(Discharge.discharged_at.desc())
    ).first()


def _discharge(
    session: Session, rt: Runtime, program: Program, event: AdtEvent, now: dt.datetime
) -> tuple[int | None, str]:
    when = event.discharged_at or event.recorded_at
    if when is None:
        raise _Refused("PV1-45: an A03 needs the discharge date/time (or EVN-2)")
    discharged_at = localise(when, program.timezone)
    if discharged_at > now + dt.timedelta(days=1):
        raise _Refused("PV1-45: the discharge date/time is in the future")
    mapped = _mapping(rt).for_discharge(event.unit, event.diagnoses)
    patient = _patient(session, program, event.mrn)
    if patient is None:
        missing = [
            where for where, value in (("PID-5.2", event.given_name), ("PID-5.1", event.family_name)) if not value
        ]
        if missing:
            raise _Refused(f"{', '.join(missing)}: a new patient needs a name")
        phone = _first_textable(event.phones)
        if phone is None:
            raise _Refused("PID-13: no phone number that can receive texts")
        patient = Patient(
            program_id=program.id,
            mrn=event.mrn,
            given_name=(event.given_name or "")[:100],
            family_name=(event.family_name or "")[:100],
            phone=phone,
            language=event.language or "en",
            timezone=program.timezone,
            birth_date=event.birth_date,
            conditions=list(mapped.conditions),  # set before the INSERT: no UPDATE right after
            consent_basis="program_enrollment",
            consent_recorded_at=now,
            consent_recorded_by=f"adt:{event.sender}"[:200],
            created_at=now,
        )
        session.add(patient)
        session.flush()
        new_patient = True
    else:
        new_patient = False
        _update_demographics(patient, event)
    conditions = list(patient.conditions or [])
    if any(c not in conditions for c in mapped.conditions):
        patient.conditions = conditions + [c for c in mapped.conditions if c not in conditions]
    visit = (event.visit_number or f"{event.sender}:{event.control_id}")[:64]
    discharge = open_discharge(
        session,
        patient,
        visit_number=visit,
        discharged_at=discharged_at,
        tz=program.timezone,
        unit=event.unit,
        diagnoses=event.diagnoses,
        new_patient=new_patient,
    )
    enrolled: list[str] = []
    skipped: list[str] = []
    needs_consent: list[str] = []
    ids = list(discharge.enrollment_ids or [])
    campaigns = list(mapped.campaigns)
    combined = combine_campaigns(rt.content, campaigns)
    if all(campaign_allowed(program, c) for c in combined if c not in campaigns):
        # Several monitored conditions: one combined daily check-in, not one campaign each (issue 12).
        campaigns = combined
    if new_patient:
        # Nothing to move or restart for a patient first seen now: every campaign at once (the same rows
        # ``enroll`` writes, in a few statements; the ACK waits for them, so it is the latency that counts).
        skipped = [c for c in campaigns if not campaign_allowed(program, c)]
        wanted, seen = [], set()
        for name in campaigns:
            found = rt.content.campaign(name)
            key = found.id if found is not None else name  # an alias and its campaign: one enrollment
            if name not in skipped and key not in seen:
                seen.add(key)
                wanted.append(NewEnrollment(patient, name, discharge.discharge_date))
        try:
            outcomes = enroll_new(session, rt, wanted, now)
        except UnknownCampaign as exc:
            raise _Refused(f"the ADT mapping names unknown campaign '{exc.args[0]}'") from None
        for item, outcome in zip(wanted, outcomes, strict=True):
            if isinstance(outcome, ConsentRequired):
                note(
                    session,
                    patient.id,
                    "enrollment_refused",
                    "consent_required",
                    now,
                    detail={"campaign": item.campaign_id},
                )
                needs_consent.append(item.campaign_id)
                continue
            reason = f"discharge {discharge.discharge_date.isoformat()}"
            note_event(session, patient.id, "enrollment.created", outcome, reason, ACTOR, now)
            ids.append(outcome.id)
            enrolled.append(item.campaign_id)
    for campaign in campaigns if not new_patient else ():
        if not campaign_allowed(program, campaign):
            skipped.append(campaign)
            continue
        # A paused enrollment (a readmission) restarts from this discharge instead of doubling up.
        for paused in _enrollments(session, patient, PAUSED):
            if paused.campaign == campaign:
                paused.status = ACTIVE
        existed = session.scalars(
            select(Enrollment.id).where(
                Enrollment.patient_id == patient.id, Enrollment.campaign == campaign, Enrollment.status == ACTIVE
            )
        ).first()
        try:
            with session.begin_nested():
                enrollment = enroll(session, rt, patient, campaign, discharge.discharge_date, now)
        except UnknownCampaign:
            raise _Refused(f"the ADT mapping names unknown campaign '{campaign}'") from None
        except ConsentRequired:
            # The discharge and the TCM clock still count; the campaign waits for express consent, and the
            # care team reads why on the patient's timeline (never a silent skip; issue 10 item 3).
            note(session, patient.id, "enrollment_refused", "consent_required", now, detail={"campaign": campaign})
            needs_consent.append(campaign)
            continue
        note_event(
            session,
            patient.id,
            "enrollment.created" if existed is None else "enrollment.moved",
            enrollment,
            f"discharge {discharge.discharge_date.isoformat()}",
            ACTOR,
            now,
        )
        if enrollment.id not in ids:
            ids.append(enrollment.id)
        enrolled.append(campaign)
    discharge.enrollment_ids = ids
    # The admission is over: what it paused and the mapping did not restart resumes (future touches only).
    resumed = 0
    for waiting in _enrollments(session, patient, PAUSED):
        if _paused_for_readmission(session, waiting):
            try:
                with session.begin_nested():
                    resume(session, rt, waiting, "discharged", ACTOR, now)
                resumed += 1
            except EnrollmentRefused:
                continue  # enrolled again in the same campaign meanwhile: the newer one runs
    detail = f"discharge recorded; enrolled: {', '.join(enrolled) or 'none'}"
    if skipped:
        detail += f"; not run by this program: {', '.join(skipped)}"
    if needs_consent:
        detail += f"; needs express consent first: {', '.join(needs_consent)}"
    if resumed:
        detail += f"; resumed after the admission: {resumed}"
    return patient.id, detail
