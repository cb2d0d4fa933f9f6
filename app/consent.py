"""Consent keywords (STOP / START / HELP in every supported language), handled before any flow runs.

Only a message that is one keyword as a whole counts ("stop", "STOP!", " Parar "); "please don't stop"
is a reply, not an opt-out. YES / SÍ opt back in only while the patient is opted out, because
otherwise they are answers.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.flows.text import squash
from app.i18n import gettext_for, normalise_language
from app.models import AuditEvent, Conversation, Enrollment, Message, Patient, ScheduledTouch, TouchStatus

log = logging.getLogger(__name__)


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


@dataclass(frozen=True)
class KeywordHit:
    keyword: Keyword
    #: The language the keyword itself is in, when it says ("PARAR" is Spanish), else None.
    language: str | None


OPT_OUT = {
    "stop": None,
    "stopall": None,
    "unsubscribe": None,
    "cancel": None,
    "end": None,
    "quit": None,
    "revoke": None,
    "optout": None,
    "parar": "es",
    "alto": "es",
    "cancelar": "es",
    "baja": "es",
}
OPT_IN = {"start": None, "unstop": None}
OPT_IN_WHILE_OPTED_OUT = {"yes": "en", "si": "es"}
HELP = {"help": None, "info": None, "ayuda": "es"}


def classify(text: str, *, opted_out: bool) -> KeywordHit | None:
    word = squash(text)
    if word in OPT_OUT:
        return KeywordHit(Keyword.STOP, OPT_OUT[word])
    if word in OPT_IN:
        return KeywordHit(Keyword.START, OPT_IN[word])
    if opted_out and word in OPT_IN_WHILE_OPTED_OUT:
        return KeywordHit(Keyword.START, OPT_IN_WHILE_OPTED_OUT[word])
    if word in HELP:
        return KeywordHit(Keyword.HELP, HELP[word])
    return None


def reply_text(keyword: Keyword, language: str, program_name: str, program_phone: str) -> str:
    _ = gettext_for(language)
    values = {"program": program_name, "phone": program_phone}
    if keyword is Keyword.STOP:
        return _("%(program)s: You will not get more messages from us. Reply START to get them again.") % values
    if keyword is Keyword.START:
        return _("%(program)s: You will get messages from us again. Reply STOP to stop them.") % values
    return (
        _("%(program)s: For help call %(phone)s. Reply STOP to stop messages. If this is an emergency, call 911.")
        % values
    )


def opt_out(session: Session, rt: object, patient: Patient, *, now: dt.datetime, confirm: bool = True) -> bool:
    """Stop all outreach at once. Returns whether this changed anything (so it is confirmed once)."""
    if patient.opted_out:
        return False
    patient.opted_out = True
    patient.opted_out_at = now
    enrollment_ids = select(Enrollment.id).where(Enrollment.patient_id == patient.id)
    session.execute(
        update(ScheduledTouch)
        .where(ScheduledTouch.enrollment_id.in_(enrollment_ids), ScheduledTouch.status == TouchStatus.PENDING)
        .values(status=TouchStatus.CANCELLED, outcome="opted_out", processed_at=now)
    )
    session.execute(update(Enrollment).where(Enrollment.patient_id == patient.id).values(next_due_at=None))
    session.execute(
        update(Conversation)
        .where(Conversation.patient_id == patient.id, Conversation.status == "active")
        .values(status="stopped", result="opted_out", ended_at=now, wake_at=None)
    )
    session.execute(
        update(Message)
        .where(
            Message.patient_id == patient.id,
            Message.direction == "outbound",
            Message.status == "queued",
            Message.kind != "consent",
        )
        .values(status="cancelled", error_code="opted_out")
    )
    session.add(AuditEvent(action="patient.opted_out", subject_type="patient", subject_id=patient.id, at=now))
    log.info("patient opted out id=%s", patient.id)
    return True


def opt_in(session: Session, patient: Patient, *, now: dt.datetime) -> bool:
    if not patient.opted_out:
        return False
    patient.opted_out = False
    patient.opted_out_at = None
    session.add(AuditEvent(action="patient.opted_in", subject_type="patient", subject_id=patient.id, at=now))
    log.info("patient opted in id=%s", patient.id)
    return True


def keyword_language(hit: KeywordHit, patient: Patient | None) -> str:
    return normalise_language(hit.language or (patient.language if patient else None))
