"""Inbound texts: store once per provider SID, then keywords, then the conversation, else the inbox.

Nothing a patient sends is lost: a reply that is not an answer, a reply after the conversation ended,
or a text from an unknown number is kept and flagged for the care team.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.consent import Keyword, classify, keyword_language, opt_in, opt_out, reply_text
from app.conversations import active_conversation, resume_conversation
from app.flows import engine
from app.flows.intents import RedFlag
from app.i18n import gettext_for
from app.models import Message, Patient, Program
from app.outbound import queue_text
from app.phones import InvalidPhone, mask, to_e164
from app.runtime import Runtime
from app.scheduling.enrollments import rederive_for_patient

log = logging.getLogger(__name__)

MAX_BODY = 1600


@dataclass(frozen=True)
class InboundResult:
    outcome: str  # duplicate | unknown_sender | keyword | answered | inbox | opted_out
    message_id: int | None


def find_patient(session: Session, phone: str) -> Patient | None:
    """The patient who owns this number; a shared number goes to the one in a conversation first."""
    candidates = session.scalars(
        select(Patient).where(Patient.phone == phone).order_by(Patient.updated_at.desc())
    ).all()
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    for candidate in candidates:
        if active_conversation(session, candidate.id) is not None:
            return candidate
    return candidates[0]


def unknown_sender_text() -> str:
    """No PHI and no program name a stranger could learn anything from; the 911 advice in both languages."""
    texts = []
    for language in ("en", "es"):
        _ = gettext_for(language)
        texts.append(
            _(
                "We could not match this number to a patient. Please call your care team. "
                "If this is an emergency, call 911."
            )
        )
    en, es = texts
    return en if en == es else f"{en}\n\n{es}"


def receive_text(
    session: Session,
    rt: Runtime,
    *,
    sid: str,
    from_number: str,
    to_number: str,
    body: str,
    channel: str,
    now: dt.datetime,
) -> InboundResult:
    """Handle one inbound text inside the caller's transaction."""
    try:
        sender = to_e164(from_number)
    except InvalidPhone:
        sender = from_number[:20]
    existing = session.scalar(select(Message.id).where(Message.provider_sid == sid))
    if existing is not None:
        return InboundResult("duplicate", existing)
    patient = find_patient(session, sender)
    message = Message(
        patient_id=patient.id if patient else None,
        direction="inbound",
        channel=channel,
        kind="reply",
        body=body[:MAX_BODY],
        status="received",
        provider_sid=sid,
        from_number=sender,
        to_number=to_number[:20],
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Another worker stored the same SID a moment ago: it handles this message, we do nothing.
        return InboundResult("duplicate", None)
    if patient is None:
        message.needs_review = True
        message.kind = "inbox"
        queue_text(session, rt, to=sender, body=unknown_sender_text(), kind="system", patient=None, now=now)
        log.info("inbound from unknown number %s kept for review id=%s", mask(sender), message.id)
        return InboundResult("unknown_sender", message.id)
    # Serialise messages from one patient: the second waits for the first's conversation step.
    session.execute(select(Patient.id).where(Patient.id == patient.id).with_for_update())
    hit = classify(body, opted_out=patient.opted_out)
    program = session.get(Program, patient.program_id)
    assert program is not None
    if hit is not None:
        message.kind = "keyword"
        language = keyword_language(hit, patient)
        changed = True
        if hit.keyword is Keyword.STOP:
            changed = opt_out(session, rt, patient, now=now)
        elif hit.keyword is Keyword.START:
            changed = opt_in(session, patient, now=now)
            if changed:
                rederive_for_patient(session, rt, patient, now)
        if changed or hit.keyword is Keyword.HELP:
            queue_text(
                session,
                rt,
                to=patient.phone,
                kind="consent",
                patient=patient,
                now=now,
                body=reply_text(hit.keyword, language, program.name, program.phone_display),
            )
        return InboundResult("keyword", message.id)
    if patient.opted_out:
        # No texts go back to an opted-out number, but a red flag still reaches a human.
        message.needs_review = True
        message.kind = "inbox"
        flag = rt.content.intents.red_flag(body)
        if flag is not None:
            _red_flag_outside_flow(session, rt, patient, flag, now)
        return InboundResult("opted_out", message.id)
    conversation = active_conversation(session, patient.id, lock=True)
    if conversation is None:
        # Not an answer to anything: the care team's inbox. Red flags still reach a human at once.
        message.needs_review = True
        message.kind = "inbox"
        flag = rt.content.intents.red_flag(body)
        if flag is not None:
            _red_flag_outside_flow(session, rt, patient, flag, now)
        return InboundResult("inbox", message.id)
    message.conversation_id = conversation.id
    message.flow_id = conversation.flow_id
    resume_conversation(session, rt, patient, conversation, engine.Reply(body), now, inbound=message)
    return InboundResult("answered", message.id)


def _red_flag_outside_flow(session: Session, rt: Runtime, patient: Patient, flag: RedFlag, now: dt.datetime) -> None:
    from app.conversations import patient_context
    from app.escalation.service import escalate

    escalate(
        session,
        rt,
        patient,
        level="EMERGENCY",
        reason=flag.reason,
        rule_id=f"red-flag:{flag.id}",
        detail={"phrase_category": flag.id, "outside_conversation": True},
        conversation_id=None,
        now=now,
    )
    if not patient.reachable:
        return
    ctx = patient_context(session, rt, patient, now)
    queue_text(
        session,
        rt,
        to=patient.phone,
        kind="emergency",
        patient=patient,
        now=now,
        body=engine.emergency_text(patient.language, ctx, crisis_line=flag.crisis_line),
    )
