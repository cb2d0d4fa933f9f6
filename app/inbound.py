"""Inbound texts: store once per provider SID, then keywords, then the conversation, else the inbox.

What a text is (keyword, the conversation's answer, or outside any conversation) is decided by
``app/flows/routing.py``'s ``route``, the same function transcripts and ``outreach simulate`` use; triage
runs on every text in every state (inside a flow through the engine, outside here, for opted-out patients
and unknown numbers too). Nothing a patient sends is lost: a reply that is not an answer, a reply after the
conversation ended, or a text from an unknown number is kept and flagged for the care team.

Unknown numbers: no patient, so no escalation row (escalations belong to a patient and a program). A red
flag or a "right now?" mention from an unknown number is flagged on the stored inbox row
(``messages.flags``), listed at the top of the care-manager queue until someone marks it reviewed, and an
EMERGENCY pages every program's on-call number at once (no PHI in the page). The sender gets the generic
no-PHI reply, which says 911, plus 988 / Poison Control when they apply.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from app.consent import Keyword, keyword_language, opt_in, opt_out, reply_text
from app.conversations import active_conversation, pinned_flow, resume_conversation, start_conversation
from app.flows import engine
from app.flows.routing import RIGHT_NOW_FLOW, ActiveFlow, Route, outside_plan, route
from app.flows.safety import emergency_text
from app.i18n import gettext_for
from app.models import Conversation, Message, Patient, Program, utcnow
from app.outbound import queue_text
from app.phones import InvalidPhone, mask, to_e164
from app.runtime import Runtime
from app.scheduling.enrollments import rederive_for_patient
from app.triage.verdict import Verdict

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
        "flags": None,
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


def unknown_sender_text(verdict: Verdict | None = None) -> str:
    """No PHI and no program name a stranger could learn anything from; the 911 advice in both languages,
    and 988 / Poison Control when triage found they apply."""
    texts = []
    for language in ("en", "es"):
        _ = gettext_for(language)
        text = _(
            "We could not match this number to a patient. Please call your care team. "
            "If this is an emergency, call 911."
        )
        if verdict is not None and (verdict.crisis_line or verdict.poison_control):
            text += " " + emergency_text(
                language, crisis_line=verdict.crisis_line, poison_control=verdict.poison_control
            )
        texts.append(text)
    en, es = texts
    return en if en == es else f"{en}\n\n{es}"


def unknown_sender_page(base_url: str) -> str:
    _ = gettext_for("en")
    return _("Outreach: a text from an unknown number may be an emergency. Open %(url)s") % {"url": f"{base_url}/queue"}


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
    intents = rt.content.intents
    if patient is None:
        decided = route(body, intents=intents, language=None)
        verdict = decided.verdict if decided.kind == "outside" else Verdict()
        flags = [f"red_flag:{r}" for r in verdict.emergency] + [f"confirm:{r}" for r in verdict.to_confirm]
        message = _store_inbound(session, {**values, "needs_review": True, "kind": "inbox", "flags": flags or None})
        if message is None:
            return _duplicate(session, sid)
        queue_text(session, rt, to=sender, body=unknown_sender_text(verdict), kind="system", patient=None, now=now)
        if verdict.emergency:
            _page_for_unknown_sender(session, rt, message.id, now)
        log.info("inbound from unknown number %s kept for review id=%s", mask(sender), message.id)
        return InboundResult("unknown_sender", message.id)
    conversation: Conversation | None = None
    active: ActiveFlow | None = None
    if not patient.opted_out:
        conversation = active_conversation(session, patient.id, lock=True)
        if conversation is not None:
            flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
            active = ActiveFlow(flow, engine.State.from_dict(conversation.state))
    decided = route(body, intents=intents, language=patient.language, opted_out=patient.opted_out, conversation=active)
    if decided.kind == "keyword":
        values["kind"] = "keyword"
    elif decided.kind == "conversation":
        assert conversation is not None
        values.update(conversation_id=conversation.id, flow_id=conversation.flow_id)
    else:
        values.update(needs_review=True, kind="inbox")
    message = _store_inbound(session, values)
    if message is None:
        # Another request stored the same SID (Twilio retried): it handles this message, we do nothing.
        return _duplicate(session, sid)
    program = session.get(Program, patient.program_id)
    assert program is not None
    if decided.kind == "keyword":
        hit = decided.keyword
        assert hit is not None
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
    if decided.kind == "conversation":
        assert conversation is not None
        resume_conversation(session, rt, patient, conversation, engine.Reply(body), now, inbound=message)
        return InboundResult("answered", message.id)
    # Not an answer to anything (or an opted-out patient): the inbox, and triage's findings reach a human.
    _outside_conversation(session, rt, patient, program, decided, message, now)
    return InboundResult("opted_out" if patient.opted_out else "inbox", message.id)


def _duplicate(session: Session, sid: str) -> InboundResult:
    return InboundResult("duplicate", session.scalar(_MESSAGE_BY_SID, {"sid": sid}))


_NOTICE_SENT_SINCE = select(Message.id).where(
    Message.patient_id == bindparam("patient_id"),
    Message.direction == "outbound",
    Message.kind == "notice",
    Message.created_at >= bindparam("since"),
)


def notice_due(session: Session, patient: Patient, now: dt.datetime) -> bool:
    """The "not watched all the time" notice goes at most once per calendar day in the patient's zone."""
    local = now.astimezone(ZoneInfo(patient.timezone))
    since = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    return session.scalar(_NOTICE_SENT_SINCE.limit(1), {"patient_id": patient.id, "since": since}) is None


def _outside_conversation(
    session: Session,
    rt: Runtime,
    patient: Patient,
    program: Program,
    decided: Route,
    message: Message,
    now: dt.datetime,
) -> None:
    from app.escalation.service import escalate

    ctx = engine.PatientContext(
        first_name=patient.given_name,
        language=patient.language,
        program_name=program.name,
        program_phone=program.phone_display,
    )
    reachable = patient.reachable
    plan = outside_plan(decided, ctx, reachable=reachable, notice_due=reachable and notice_due(session, patient, now))
    if plan.flags:
        message.flags = list(plan.flags)
    for event in plan.events:
        if isinstance(event, engine.Escalate):
            escalate(
                session,
                rt,
                patient,
                level=event.level,
                reason=event.reason,
                rule_id=event.rule_id,
                detail=event.detail,
                conversation_id=None,
                now=now,
            )
    said = plan.said()
    if plan.confirm and RIGHT_NOW_FLOW in rt.content.flows:
        # "Right now?" as a short conversation: the engine opens the URGENT items and reads the YES / NO.
        start_conversation(session, rt, patient, RIGHT_NOW_FLOW, now, lead_in=said, confirm=plan.confirm)
        return
    if plan.confirm:  # pragma: no cover - the content library ships the flow; never leave a mention unseen
        for finding in plan.confirm:
            escalate(
                session,
                rt,
                patient,
                level="URGENT",
                reason=finding.reason,
                rule_id=f"confirm:{finding.reason}",
                detail={"outside_conversation": True, "evidence": finding.evidence},
                conversation_id=None,
                now=now,
            )
    if said and reachable:
        kind = "emergency" if plan.emergency else "notice" if plan.notice else "reply"
        queue_text(session, rt, to=patient.phone, kind=kind, patient=patient, now=now, body="\n\n".join(said))


_FLAGGED_UNKNOWN = (
    select(Message)
    .where(
        Message.patient_id.is_(None),
        Message.direction == "inbound",
        Message.needs_review.is_(True),
        Message.flags.is_not(None),
    )
    .order_by(Message.created_at.desc(), Message.id.desc())
)


def flagged_unknown_senders(session: Session, limit: int = 50) -> list[Message]:
    """Texts from unknown numbers in which triage found a red flag or a mention to confirm, newest first,
    until staff mark them reviewed (the care-manager queue lists them above the escalations)."""
    rows = session.scalars(_FLAGGED_UNKNOWN.limit(limit)).all()
    return [m for m in rows if any(f.startswith(("red_flag:", "confirm:")) for f in m.flags or [])]


def mark_reviewed(session: Session, message: Message, user_id: int, now: dt.datetime) -> None:
    """Staff looked at a flagged inbound text: it leaves the queue; the audit keeps who and when."""
    from app.models import AuditEvent

    message.needs_review = False
    session.add(
        AuditEvent(user_id=user_id, action="message.reviewed", subject_type="message", subject_id=message.id, at=now)
    )


def _page_for_unknown_sender(session: Session, rt: Runtime, message_id: int, now: dt.datetime) -> None:
    """An unknown number's EMERGENCY: page every program's on-call number once (no PHI in the page)."""
    for program in session.scalars(select(Program).where(Program.on_call_phone.is_not(None)).order_by(Program.id)):
        assert program.on_call_phone is not None
        queue_text(
            session,
            rt,
            to=program.on_call_phone,
            body=unknown_sender_page(rt.settings.public_base_url),
            kind="page",
            patient=None,
            send_key=f"page:unknown:{message_id}:{program.id}",
            now=now,
        )
    log.warning("EMERGENCY words from an unknown number: message id=%s paged on-call", message_id)
