"""Inbound texts: store once per provider SID, then keywords, then the conversation, else the inbox.

Nothing a patient sends is lost: a reply that is not an answer, a reply after the conversation ended,
or a text from an unknown number is kept and flagged for the care team.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from app.consent import Keyword, classify, keyword_language, opt_in, opt_out, reply_text
from app.conversations import active_conversation, resume_conversation
from app.flows import engine
from app.flows.intents import RedFlag
from app.i18n import gettext_for
from app.models import Conversation, Message, Patient, Program, utcnow
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


# Statements built once: building an ORM statement and its cache key per call costs more CPU than the
# round trip it makes (bench/README.md, section 1). Values go in as bound parameters.
_BY_PHONE = (
    select(Patient).where(Patient.phone == bindparam("phone")).options(joinedload(Patient.program, innerjoin=True))
)
_BY_PHONE_NEWEST_FIRST = _BY_PHONE.order_by(Patient.updated_at.desc())
_BY_PHONE_LOCKED = _BY_PHONE.order_by(Patient.id).with_for_update(of=Patient)
_MESSAGE_BY_SID = select(Message.id).where(Message.provider_sid == bindparam("sid"))
_MESSAGES = cast(Table, Message.__table__)
#: ``INSERT … ON CONFLICT (provider_sid) DO NOTHING RETURNING id``, per dialect (Core: no ORM bulk machinery).
_INSERT_NEW_SID = {
    name: dialect_insert(_MESSAGES).on_conflict_do_nothing(index_elements=["provider_sid"]).returning(_MESSAGES.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def find_patient(session: Session, phone: str, *, lock: bool = False) -> Patient | None:
    """The patient who owns this number; a shared number goes to the one in a conversation first.

    ``lock``: take the row lock(s) in the same statement (``SELECT … FOR UPDATE OF patients``), so messages
    from one patient are serialised without a second query. Rows are locked in id order (a fixed order, so
    two texts from a shared number cannot deadlock); the most recently updated still comes first. The
    program is loaded with the patient (``session.get(Program, …)`` then hits the identity map).
    """
    candidates = list(session.scalars(_BY_PHONE_LOCKED if lock else _BY_PHONE_NEWEST_FIRST, {"phone": phone}).all())
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if lock:
        candidates.sort(key=lambda p: p.updated_at, reverse=True)
    for candidate in candidates:
        if active_conversation(session, candidate.id) is not None:
            return candidate
    return candidates[0]


def _store_inbound(session: Session, values: dict[str, Any]) -> Message | None:
    """Insert the inbound row unless its provider SID is already stored; ``None`` means a duplicate.

    The unique index on ``provider_sid`` decides, also between concurrent requests (``ON CONFLICT DO
    NOTHING`` waits for the other transaction to end). The returned row is a persistent ORM object in
    ``session``, every column loaded, so later changes to it (``needs_review``) are flushed as an UPDATE.
    """
    row: dict[str, Any] = {
        "conversation_id": None,
        "flow_id": None,
        "needs_review": False,
        "attempts": 0,
        "send_key": None,
        "segments": None,
        "encoding": None,
        "error_code": None,
        "sent_at": None,
        "next_attempt_at": None,
        **values,
    }
    row.setdefault("updated_at", row.get("created_at") or utcnow())
    stmt = _INSERT_NEW_SID.get(session.get_bind().dialect.name)
    if stmt is None:  # pragma: no cover - PostgreSQL in production, SQLite for the demo
        message = Message(**row)
        try:
            with session.begin_nested():
                session.add(message)
        except IntegrityError:
            return None
        return message
    message_id = session.connection().execute(stmt, row).scalar()
    if message_id is None:
        return None
    message = Message(id=message_id, **row)
    make_transient_to_detached(message)
    session.add(message)
    return message


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
    # Lock first, then store: the patient's row lock serialises messages from one patient (the second
    # waits for the first's conversation step), and the inbound row goes in once, already complete.
    patient = find_patient(session, sender, lock=True)
    values: dict[str, Any] = {
        "patient_id": patient.id if patient else None,
        "direction": "inbound",
        "channel": channel,
        "kind": "reply",
        "body": body[:MAX_BODY],
        "status": "received",
        "provider_sid": sid,
        "from_number": sender,
        "to_number": to_number[:20],
        "created_at": now,
    }
    if patient is None:
        message = _store_inbound(session, {**values, "needs_review": True, "kind": "inbox"})
        if message is None:
            return _duplicate(session, sid)
        queue_text(session, rt, to=sender, body=unknown_sender_text(), kind="system", patient=None, now=now)
        log.info("inbound from unknown number %s kept for review id=%s", mask(sender), message.id)
        return InboundResult("unknown_sender", message.id)
    hit = classify(body, opted_out=patient.opted_out)
    conversation: Conversation | None = None
    if hit is not None:
        values["kind"] = "keyword"
    elif patient.opted_out:
        values.update(needs_review=True, kind="inbox")
    else:
        conversation = active_conversation(session, patient.id, lock=True)
        if conversation is None:
            values.update(needs_review=True, kind="inbox")
        else:
            values.update(conversation_id=conversation.id, flow_id=conversation.flow_id)
    message = _store_inbound(session, values)
    if message is None:
        # Another request stored the same SID (Twilio retried): it handles this message, we do nothing.
        return _duplicate(session, sid)
    program = session.get(Program, patient.program_id)
    assert program is not None
    if hit is not None:
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
        flag = rt.content.intents.red_flag(body)
        if flag is not None:
            _red_flag_outside_flow(session, rt, patient, flag, now)
        return InboundResult("opted_out", message.id)
    if conversation is None:
        # Not an answer to anything: the care team's inbox. Red flags still reach a human at once.
        flag = rt.content.intents.red_flag(body)
        if flag is not None:
            _red_flag_outside_flow(session, rt, patient, flag, now)
        return InboundResult("inbox", message.id)
    resume_conversation(session, rt, patient, conversation, engine.Reply(body), now, inbound=message)
    return InboundResult("answered", message.id)


def _duplicate(session: Session, sid: str) -> InboundResult:
    return InboundResult("duplicate", session.scalar(_MESSAGE_BY_SID, {"sid": sid}))


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
