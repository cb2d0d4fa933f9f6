"""Texts from and to caregivers (issue 12 item 6): a caregiver's answer goes into the patient's check-in
(when the scope allows), STOP / START / HELP from a caregiver's number act for that caregiver only, and
copies of reminders and of the emergency advice go to the caregivers the patient allowed.

What a caregiver is sent never holds more than the patient's own first-name-only texts: no diagnosis, no
answer, no reason (DESIGN §4.1 "minimum necessary"). The emergency copy says 988 only when the patient's
own advice did (the caregiver scope ``escalations`` is that consent).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.addressing import ADDRESSED_TO
from app.flows.keywords import Keyword, classify
from app.i18n import gettext_for
from app.messaging.outbound import queue_text
from app.models import Caregiver, Conversation, Message, Patient, Program, TimelineEvent
from app.patients.caregivers import CaregiverRoute, caregiver_route, caregivers_at, caregivers_of, describe
from app.runtime import Runtime

log = logging.getLogger(__name__)

#: Flows whose opening is a reminder a caregiver with the ``reminders`` scope gets a copy of.
REMINDER_FLOWS = frozenset({"med-reminder", "appointment-reminder"})


def reminder_copy_text(language: str, program: str, first_name: str) -> str:
    _ = gettext_for(language)
    return _("%(program)s: We just sent %(first_name)s a reminder. Reply STOP to stop these texts.") % {
        "program": program,
        "first_name": first_name,
    }


def emergency_copy_text(language: str, program: str, first_name: str, *, crisis_line: bool) -> str:
    _ = gettext_for(language)
    text = _(
        "%(program)s: %(first_name)s's check-in found signs of an emergency. We told the care team. "
        "If %(first_name)s needs help now, call 911."
    ) % {"program": program, "first_name": first_name}
    if crisis_line:
        text += " " + _("For thoughts of suicide or self-harm, call or text 988.")
    return text


def caregiver_keyword_text(keyword: Keyword, language: str, program: str, phone: str) -> str:
    _ = gettext_for(language)
    values = {"program": program, "phone": phone}
    if keyword is Keyword.STOP:
        return _("%(program)s: You will not get more caregiver texts from us. Reply START to get them again.") % values
    if keyword is Keyword.START:
        return _("%(program)s: You will get caregiver texts from us again. Reply STOP to stop them.") % values
    return (
        _("%(program)s: You get these texts as a caregiver. For help call %(phone)s. Reply STOP to stop them.") % values
    )


def _queue(session: Session, rt: Runtime, caregiver: Caregiver, patient: Patient, body: str, kind: str,
           now: dt.datetime, send_key: str | None = None) -> None:  # fmt: skip
    message = queue_text(
        session, rt, to=caregiver.phone, body=body, kind=kind, patient=patient, now=now, send_key=send_key
    )
    message.caregiver_id = caregiver.id


def copy_reminder(session: Session, rt: Runtime, patient: Patient, flow_id: str, key: str, now: dt.datetime) -> int:
    """A reminder flow just opened for the patient: a copy to each caregiver with the ``reminders`` scope.
    ``key``: what makes it once (the conversation). Returns how many copies were queued."""
    if flow_id not in REMINDER_FLOWS:
        return 0
    program = session.get(Program, patient.program_id)
    assert program is not None
    sent = 0
    for caregiver in caregivers_of(session, patient.id, "reminders"):
        body = reminder_copy_text(caregiver.language, program.name, patient.given_name)
        _queue(session, rt, caregiver, patient, body, "caregiver", now, send_key=f"cg-reminder:{key}:{caregiver.id}")
        sent += 1
    return sent


#: The National Domestic Violence Hotline's number, as every advice text with it says it (app/flows/safety.py).
DV_HOTLINE = "1-800-799-7233"


def copy_emergency(
    session: Session, rt: Runtime, patient: Patient, said: Sequence[str], key: str, now: dt.datetime
) -> int:
    """The patient was just told to call 911 (and 988): the advice to each caregiver with the ``escalations``
    scope, once per ``key`` (the inbound text or conversation step). Returns how many were queued.

    Never when the patient was given the Domestic Violence Hotline: the caregiver may be the person they are
    afraid of (thehotline.org safety planning: do not alert the abuser); staff have the EMERGENCY item."""
    if any(DV_HOTLINE in line for line in said):
        return 0
    program = session.get(Program, patient.program_id)
    assert program is not None
    crisis = any("988" in line for line in said)
    sent = 0
    for caregiver in caregivers_of(session, patient.id, "escalations"):
        body = emergency_copy_text(caregiver.language, program.name, patient.given_name, crisis_line=crisis)
        _queue(session, rt, caregiver, patient, body, "emergency", now, send_key=f"cg-emergency:{key}:{caregiver.id}")
        sent += 1
    return sent


def from_caregiver(
    session: Session, rt: Runtime, message: Message, now: dt.datetime
) -> tuple[str, Patient | None, Caregiver | None]:
    """A text from a number that is no patient's: is it a caregiver's? Returns ``("none", None, None)``
    when not; ``("keyword", patient, caregiver)`` for STOP / START / HELP (applied for the caregiver only);
    ``("answer", patient, caregiver)`` when it goes into the patient's check-in (the caller resumes it with
    the message marked as the caregiver's); ``("inbox", patient, caregiver)`` otherwise (the patient's inbox,
    for staff, as the caregiver's)."""
    rows = caregivers_at(session, message.from_number or "")
    if not rows:
        return "none", None, None
    hit = classify(message.body, opted_out=all(c.opted_out for c in rows))
    first = rows[0]
    patient = session.get(Patient, first.patient_id, with_for_update=True)
    assert patient is not None
    if hit is not None:
        _caregiver_keyword(session, rt, rows, patient, hit.keyword, hit.language, now)
        message.patient_id, message.caregiver_id, message.kind = patient.id, first.id, "keyword"
        return "keyword", patient, first
    in_check_in = set(
        session.scalars(
            select(Conversation.patient_id).where(
                Conversation.patient_id.in_([c.patient_id for c in rows]), Conversation.status == "active"
            )
        ).all()
    )
    conversations = {c.patient_id: c.patient_id in in_check_in for c in rows}
    decided = _addressed_route(session, rows) or caregiver_route(
        [(c.id, c.patient_id, frozenset(c.scopes or []), c.opted_out) for c in rows], conversations
    )
    assert decided is not None
    caregiver = next(c for c in rows if c.id == decided.caregiver_id)
    if caregiver.patient_id != patient.id:
        patient = session.get(Patient, caregiver.patient_id, with_for_update=True)
        assert patient is not None
    message.patient_id, message.caregiver_id = patient.id, caregiver.id
    if decided.kind == "answer":
        # The timeline says who answered: this text went into the patient's check-in from the caregiver.
        session.add(
            TimelineEvent(
                patient_id=patient.id,
                kind="caregiver",
                code="answered_for_patient",
                detail={"caregiver_id": caregiver.id, "message_id": message.id},
                at=now,
            )
        )
    log.info("inbound from %s for patient id=%s: %s", describe(caregiver), patient.id, decided.kind)
    return ("answer" if decided.kind == "answer" else "inbox"), patient, caregiver


def _addressed_route(session: Session, rows: Sequence[Caregiver]) -> CaregiverRoute | None:
    """A check-in addressed to one of these caregivers (caregiver-strain) is answered by that caregiver,
    whatever their scope: the questions are about the caregiver."""
    ids = {str(c.id): c for c in rows if not c.opted_out}
    for conversation in session.scalars(
        select(Conversation).where(
            Conversation.patient_id.in_([c.patient_id for c in rows]), Conversation.status == "active"
        )
    ).all():
        caregiver = ids.get(str((conversation.variables or {}).get(ADDRESSED_TO)))
        if caregiver is not None and caregiver.patient_id == conversation.patient_id:
            return CaregiverRoute("answer", caregiver.id, caregiver.patient_id)
    return None


def _caregiver_keyword(
    session: Session,
    rt: Runtime,
    rows: Sequence[Caregiver],
    patient: Patient,
    keyword: Keyword,
    language: str | None,
    now: dt.datetime,
) -> None:
    """STOP / START / HELP from a caregiver's number: for every patient this number is a caregiver of, that
    caregiver only; confirmed once (a second STOP is not answered); the patients' timelines say so."""
    program = session.get(Program, patient.program_id)
    assert program is not None
    changed = keyword is Keyword.HELP
    for caregiver in rows:
        if keyword is Keyword.STOP and not caregiver.opted_out:
            caregiver.opted_out, caregiver.opted_out_at, changed = True, now, True
        elif keyword is Keyword.START and caregiver.opted_out:
            caregiver.opted_out, caregiver.opted_out_at, changed = False, None, True
        else:
            continue
        session.add(
            TimelineEvent(
                patient_id=caregiver.patient_id,
                kind="caregiver",
                code="caregiver_opted_out" if caregiver.opted_out else "caregiver_opted_in",
                detail={"caregiver_id": caregiver.id},
                at=now,
            )
        )
    if changed:
        body = caregiver_keyword_text(keyword, language or rows[0].language, program.name, program.phone_display)
        _queue(session, rt, rows[0], patient, body, "consent", now)
