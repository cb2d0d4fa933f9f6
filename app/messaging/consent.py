"""Consent: keywords (STOP / START / HELP in every supported language) and what opting out or in does.

Only a message that is one keyword as a whole counts ("stop", "STOP!", " Parar "); "please don't stop"
is a reply, not an opt-out. YES / SÍ opt back in only while the patient is opted out, because
otherwise they are answers. The word lists and ``classify`` are pure and live in app/flows/keywords.py
(transcripts and ``outreach simulate`` classify exactly as the webhook does); the order of the checks
is ``app/flows/routing.py``'s ``route``.

Keywords never eat answers (issue 7, item 2). Twilio itself acts on its default opt-out words (STOP,
STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT) and opt-in words (START, UNSTOP): the number is
blocked or unblocked at Twilio whatever we answer, so these are always keywords, even mid-question
(a flow must never offer them as answers; ``outreach lint-content`` checks). Every other keyword — ALTO,
PARAR, BAJA, CANCELAR, AYUDA, and HELP / INFO — is ours: when a conversation is active and its pending
question understands the whole message as a valid answer (``engine.understands``), it is that answer
("Alto" at the ketone question means high, and the patient stays subscribed). With no conversation, or at
a question that does not understand it, it is the keyword as before ("Alto" alone is still an opt-out).

HELP / INFO: Twilio answers HELP (and INFO) on its own when its default keyword handling is on, and it
still forwards the message to us; it blocks nothing. So HELP / INFO follow the same rule as the Spanish
words: an answer when the pending question understands it (the patient may also get Twilio's own help
line, which is harmless), else our HELP text (program, phone, how to stop, 911). Flows should still not
offer HELP / INFO / AYUDA as answer words; the rule above is the safety net, not the design.
An opt-out written as a sentence ("please stop texting me") is not an opt-out: see content/consent.yaml.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.flows.keywords import (
    HELP,
    OPT_IN,
    OPT_IN_WHILE_OPTED_OUT,
    OPT_OUT,
    TWILIO_ENFORCED,
    Keyword,
    KeywordHit,
    classify,
    opt_out_sentence_text,
    reply_text,
)
from app.i18n import normalise_language
from app.models import (
    AuditEvent,
    Conversation,
    Enrollment,
    Message,
    Patient,
    ScheduledTouch,
    TimelineEvent,
    TouchStatus,
)

__all__ = [
    "HELP",
    "OPT_IN",
    "OPT_IN_WHILE_OPTED_OUT",
    "OPT_OUT",
    "TWILIO_ENFORCED",
    "Keyword",
    "KeywordHit",
    "classify",
    "decline_outreach",
    "keyword_language",
    "opt_in",
    "opt_out",
    "opt_out_sentence_text",
    "reply_text",
]

log = logging.getLogger(__name__)


def opt_out(
    session: Session,
    rt: object,
    patient: Patient,
    *,
    now: dt.datetime,
    confirm: bool = True,
    outcome: str = "opted_out",
) -> bool:
    """Stop all outreach at once. Returns whether this changed anything (so it is confirmed once).

    ``outcome``: the reason written on each cancelled pending touch (``opted_out``: the STOP keyword;
    ``outreach_declined``: the welcome's "no to messages and calls")."""
    if patient.opted_out:
        return False
    patient.opted_out = True
    patient.opted_out_at = now
    enrollment_ids = select(Enrollment.id).where(Enrollment.patient_id == patient.id)
    session.execute(
        update(ScheduledTouch)
        .where(ScheduledTouch.enrollment_id.in_(enrollment_ids), ScheduledTouch.status == TouchStatus.PENDING)
        .values(status=TouchStatus.CANCELLED, outcome=outcome, processed_at=now)
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


def decline_outreach(session: Session, patient: Patient, *, conversation_id: int, now: dt.datetime) -> int:
    """The patient answered the welcome "no to messages and calls": no further automated outreach.

    Opts the patient out of texts (as STOP does; START opts back in) and of calls, cancels every pending
    touch with the outcome ``outreach_declined`` and writes an ``outreach_stopped`` timeline row (reason,
    date, touches cancelled). Staff still get the ROUTINE task the welcome's rule opens. Returns the number
    of pending touches cancelled."""
    enrollment_ids = select(Enrollment.id).where(Enrollment.patient_id == patient.id)
    pending = len(
        session.scalars(
            select(ScheduledTouch.id).where(
                ScheduledTouch.enrollment_id.in_(enrollment_ids), ScheduledTouch.status == TouchStatus.PENDING
            )
        ).all()
    )
    opt_out(session, None, patient, now=now, confirm=False, outcome="outreach_declined")
    if not patient.voice_opted_out:
        patient.voice_opted_out = True
        patient.voice_opted_out_at = now
    session.add(
        TimelineEvent(
            patient_id=patient.id,
            kind="record_updated",
            code="outreach_stopped",
            detail={
                "reason": "welcome_declined",
                "conversation_id": conversation_id,
                "touches_cancelled": pending,
                "date": now.date().isoformat(),
            },
            at=now,
        )
    )
    return pending


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
