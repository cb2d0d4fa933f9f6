"""Outbound calls: an intent row first, then one REST create per try, exactly once; tries, status, missed.

The same discipline as texts (app/messaging/outbound.py): the ``calls`` row (unique ``call_key``) is
committed before Twilio is called; a job that finds it ``dialing`` past its lease, or a try whose create
failed ambiguously (``error_code`` ``unconfirmed:…``), first asks Twilio (``Calls`` list by ``To`` since the
attempt began) whether it took the call, so no patient is called twice for one try. Each claim raises
``attempts`` and only its owner writes the result (fenced by ``(id, attempts)``).

Rules (DESIGN §4.2, §4.7): calls only inside the patient's window (08:00-21:00 local, narrowed by the
program; 47 CFR 64.1200(c)(1)); at most ``calls_per_second`` per account across workers; busy / no answer /
failed → up to ``MAX_TRIES`` tries ``RETRY_AFTER`` apart (moved into the window), then the check-in is a
missed one (the engine's non-response: ``no_response``, two in a row → ROUTINE "unreachable"). An answering
machine gets a voicemail with no PHI and, where the patient takes texts, an SMS; a hang-up mid-flow keeps
the answers, marks the conversation ``incomplete`` and sends an SMS where the patient takes texts.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.channels.base import OutboundCall, SendError
from app.channels.rate_limit import call_key
from app.conversations.service import apply_step, patient_context, pinned_flow, resume_and_say, start_and_say
from app.db import after_commit
from app.flows import engine
from app.flows import voice as v
from app.flows.instructions import render_text
from app.messaging.outbound import UNCONFIRMED, backoff, queue_text
from app.models import Call, CallStatus, Conversation, Message, Patient, Program, TimelineEvent
from app.runtime import Runtime
from app.scheduling.calendar import next_allowed, within_quiet_window

log = logging.getLogger(__name__)

PLACE_JOB = "app.tasks.place_call"
#: Tries that ring the patient's phone, in all (busy / no answer / failed count; DESIGN §4.7).
MAX_TRIES = 3
RETRY_AFTER = dt.timedelta(minutes=60)
#: REST create attempts per try before the try counts as failed.
MAX_ATTEMPTS = 5
#: A call left ``dialing`` this long had its worker die: reconcile before calling again.
DIALING_STUCK_AFTER = dt.timedelta(minutes=2)
#: The number is not a valid phone number (21614, "not a mobile number", refuses texts only).
CALL_BAD_NUMBER_CODES = frozenset({21211})
#: Twilio's final CallStatus values that mean nobody answered this try.
NOT_ANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})
FINAL = frozenset(
    {CallStatus.COMPLETED, CallStatus.VOICEMAIL, CallStatus.MISSED, CallStatus.FAILED, CallStatus.CANCELLED}
)


def answer_url(rt: Runtime, call_id: int) -> str:
    return f"{rt.settings.public_base_url}/twilio/voice?call={call_id}"


def status_url(rt: Runtime, call_id: int) -> str:
    return f"{rt.settings.public_base_url}/twilio/voice/status?call={call_id}"


def gather_url(rt: Runtime, call_id: int, step: int) -> str:
    return f"{rt.settings.public_base_url}/twilio/voice/gather?call={call_id}&step={step}"


def voices(rt: Runtime) -> v.Voices:
    return v.Voices({"en": rt.settings.voice_en, "es": rt.settings.voice_es})


def window(program: Program) -> tuple[int, int]:
    return max(8, program.quiet_start_hour), min(21, program.quiet_end_hour)


def can_call(patient: Patient) -> bool:
    return patient.reachable and not patient.voice_opted_out


def can_text(patient: Patient) -> bool:
    """SMS consent: not opted out of texts, a number that takes texts."""
    return patient.reachable and patient.sms_capable


def wants_voice(patient: Patient) -> bool:
    """The preferred channel decides (issue 9, item 9); a number that cannot take texts (21614) is called;
    a patient who pressed 9 is texted."""
    if patient.voice_opted_out:
        return False
    return patient.preferred_channel == "voice" or not patient.sms_capable


# ------------------------------------------------------------------------------------------ the intent
def start_voice_checkin(
    session: Session,
    rt: Runtime,
    patient: Patient,
    flow_id: str,
    now: dt.datetime,
    *,
    send_key: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> Conversation:
    """Start ``flow_id`` as a call: the conversation (channel ``voice``) and its call intent, in the
    caller's transaction; the call is placed by a job once this commits. Raises ConversationBusy."""
    conversation, said = start_and_say(
        session, rt, patient, flow_id, now, send_key=send_key, variables=variables, channel="voice"
    )
    if conversation.status == "active":
        queue_call(session, rt, patient, conversation, said, now, key=f"call:{send_key}" if send_key else None)
    return conversation


def queue_call(
    session: Session,
    rt: Runtime,
    patient: Patient,
    conversation: Conversation,
    opening: Sequence[engine.Say],
    now: dt.datetime,
    *,
    key: str | None = None,
) -> Call:
    """Write the call intent (``queued``, due now) and enqueue its placing once the transaction commits."""
    call = Call(
        patient_id=patient.id,
        conversation_id=conversation.id,
        purpose="checkin",
        direction="outbound",
        status=CallStatus.QUEUED,
        call_key=key or f"call:{uuid.uuid4().hex}",
        to_number=patient.phone,
        from_number=rt.settings.twilio_from_number or None,
        next_try_at=now,
        opening=[{"text": s.text, "purpose": s.purpose} for s in opening],
        turns={},
        pending={},
        language=engine.State.from_dict(conversation.state).language,
        created_at=now,
        updated_at=now,
    )
    session.add(call)
    session.flush()
    call_id = call.id
    after_commit(session, lambda: rt.jobs.enqueue(PLACE_JOB, call_id, job_id=f"call-{call_id}-0"))
    return call


def fall_back_to_voice(rt: Runtime, message_id: int) -> bool:
    """The job ``app.tasks.fall_back_to_voice``: see :func:`switch_to_voice`; once per message."""
    with rt.sessions() as session, session.begin():
        message = session.get(Message, message_id)
        if message is None or message.patient_id is None:
            return False
        patient = session.get(Patient, message.patient_id, with_for_update=True)
        assert patient is not None
        return switch_to_voice(session, rt, patient, message, rt.now())


def switch_to_voice(session: Session, rt: Runtime, patient: Patient, message: Message, now: dt.datetime) -> bool:
    """A check-in text refused because the number takes no texts (21614): go on by phone, asking the
    pending question again (issue 9, item 9). Returns whether a call was queued."""
    patient.sms_capable = False
    if message.conversation_id is None or not can_call(patient):
        return False
    if session.scalar(select(Call.id).where(Call.call_key == f"fallback:{message.id}")) is not None:
        return False
    conversation = session.get(Conversation, message.conversation_id, with_for_update=True)
    if conversation is None or conversation.status != "active" or conversation.channel != "sms":
        return False
    flow = rt.content.flows.get(conversation.flow_id)
    conversation.channel = "voice"
    state = engine.State.from_dict(conversation.state)
    program = session.get(Program, patient.program_id)
    assert program is not None
    ctx = engine.PatientContext(
        first_name=patient.given_name,
        language=state.language,
        program_name=program.name,
        program_phone=program.phone_display,
    )
    prompt = engine.pending_prompt(flow, state, ctx) if flow and flow.version == state.flow_version else None
    opening = [engine.Say(message.body, "prompt")] if prompt is None else [prompt]
    queue_call(session, rt, patient, conversation, opening, now, key=f"fallback:{message.id}")
    log.info("texts refused (21614): conversation id=%s goes on by phone", conversation.id)
    return True


# ----------------------------------------------------------------------------------------- placing
def _outbound(rt: Runtime, call: Call) -> OutboundCall:
    return OutboundCall(
        call_id=call.id,
        to=call.to_number or "",
        answer_url=answer_url(rt, call.id),
        status_callback=status_url(rt, call.id),
        attempt_started_at=call.updated_at,
    )


def _already_placed(session: Session, rt: Runtime, call: Call) -> bool:
    """Did Twilio take this try on an attempt we never heard back from? Adopts the call if so."""
    assert rt.voice is not None
    candidates = rt.voice.find_placed(_outbound(rt, call))
    if not candidates:
        return False
    taken = set(
        session.scalars(
            select(Call.call_sid).where(Call.call_sid.in_([c.provider_sid for c in candidates]), Call.id != call.id)
        ).all()
    )
    found = next((c for c in reversed(candidates) if c.provider_sid not in taken), None)
    if found is None:
        return False
    _mark_placed(call, found.provider_sid)
    log.info("reconciled call id=%s sid=%s", call.id, found.provider_sid)
    return True


def _mark_placed(call: Call, sid: str) -> None:
    if call.call_sid != sid:
        call.call_sid = sid
        call.tries += 1
    call.status = CallStatus.RINGING
    call.error_code = None
    call.next_try_at = None


def place_call(rt: Runtime, call_id: int) -> str:
    """One placing attempt (the job ``app.tasks.place_call``); safe to run twice at once. Returns what
    happened: placed, reconciled, in-flight, not-yet, deferred (quiet hours), cancelled, retry, failed …"""
    assert rt.voice is not None and rt.call_limiter is not None
    now = rt.now()
    with rt.sessions() as session, session.begin():
        call = session.get(Call, call_id, with_for_update=True)
        if call is None or call.direction != "outbound":
            return "missing"
        if call.status == CallStatus.DIALING:
            if now - call.updated_at < DIALING_STUCK_AFTER:
                return "in-flight"
            if _already_placed(session, rt, call):
                return "reconciled"
            call.status = CallStatus.QUEUED
        if call.status != CallStatus.QUEUED:
            return "already-" + call.status
        if call.next_try_at and call.next_try_at > now:
            return "not-yet"
        if (call.error_code or "").startswith(UNCONFIRMED) and _already_placed(session, rt, call):
            return "reconciled"
        patient = session.get(Patient, call.patient_id) if call.patient_id else None
        conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
        if patient is None or not can_call(patient):
            call.status = CallStatus.CANCELLED
            call.error_code = "opted_out" if patient is not None and patient.opted_out else "cannot_call"
            call.ended_at = now
            if conversation is not None and conversation.status == "active" and conversation.channel == "voice":
                _end_conversation(conversation, "stopped", "call_cancelled", now)
            return "cancelled"
        if conversation is None or conversation.status != "active" or conversation.channel != "voice":
            call.status = CallStatus.CANCELLED
            call.error_code = "conversation_ended"
            call.ended_at = now
            return "cancelled"
        program = session.get(Program, patient.program_id)
        assert program is not None
        start, end = window(program)
        if not within_quiet_window(now, patient.timezone, start, end):
            call.next_try_at = next_allowed(now, patient.timezone, start, end)
            _enqueue_later(session, rt, call, "window")
            return "deferred"
        slot = rt.call_limiter.reserve(call_key(rt.settings), 1)
        if not slot.reserved:
            call.next_try_at = now + dt.timedelta(seconds=slot.wait_seconds)
            _enqueue_later(session, rt, call, "throttled")
            return "throttled"
        call.status = CallStatus.DIALING
        call.attempts += 1
        call.updated_at = now  # the lease: a dead worker shows as stuck from here
        attempt = call.attempts
        outbound = _outbound(rt, call)
    if slot.wait_seconds > 0:
        time.sleep(slot.wait_seconds)
    try:
        placed = rt.voice.place(outbound)
    except SendError as exc:
        return _record_place_failure(rt, call_id, exc, attempt)
    with rt.sessions() as session, session.begin():
        call = session.get(Call, call_id, with_for_update=True)
        assert call is not None
        if call.attempts != attempt or call.status not in {CallStatus.DIALING, CallStatus.QUEUED}:
            # A status callback got here first (it adopted the SID), or another worker took over.
            if call.call_sid is None:
                call.call_sid = placed.provider_sid
            return "placed"
        _mark_placed(call, placed.provider_sid)
    log.info("placed call id=%s sid=%s", call_id, placed.provider_sid)
    return "placed"


def _enqueue_later(session: Session, rt: Runtime, call: Call, tag: str) -> None:
    when, call_id, attempt = call.next_try_at or rt.now(), call.id, call.attempts
    after_commit(
        session,
        lambda: rt.jobs.enqueue_at(when, PLACE_JOB, call_id, job_id=f"call-{call_id}-{tag}-{attempt}-{when:%s}"),
    )


def _record_place_failure(rt: Runtime, call_id: int, exc: SendError, attempt: int) -> str:
    now = rt.now()
    with rt.sessions() as session, session.begin():
        call = session.get(Call, call_id, with_for_update=True)
        assert call is not None
        if call.attempts != attempt or call.status != CallStatus.DIALING:
            return "taken-over"
        code = str(exc.code or exc.http_status or "network")
        call.error_code = f"{UNCONFIRMED}{code}" if exc.ambiguous else code
        patient = session.get(Patient, call.patient_id) if call.patient_id else None
        if exc.code in CALL_BAD_NUMBER_CODES and not exc.ambiguous:
            if patient is not None:
                patient.phone_invalid = True
            log.warning("call refused: bad number call id=%s code=%s", call_id, exc.code)
            _give_up(session, rt, call, now, CallStatus.FAILED)
            return "bad-number"
        if exc.retryable and call.attempts < MAX_ATTEMPTS:
            call.status = CallStatus.QUEUED
            call.next_try_at = now + backoff(call.attempts)
            _enqueue_later(session, rt, call, "retry")
            log.warning("call failed, will retry call id=%s attempt=%s code=%s", call_id, attempt, call.error_code)
            return "retry"
        log.error("call failed for good call id=%s code=%s", call_id, call.error_code)
        _give_up(session, rt, call, now, CallStatus.FAILED)
        return "failed"


def due_calls(session: Session, now: dt.datetime, limit: int = 500) -> list[int]:
    """Calls whose try is due (a lost job, a deferred try) and calls stuck ``dialing`` (a dead worker)."""
    queued = session.scalars(
        select(Call.id)
        .where(Call.status == CallStatus.QUEUED, Call.next_try_at <= now)
        .order_by(Call.next_try_at)
        .limit(limit)
    ).all()
    stuck = session.scalars(
        select(Call.id)
        .where(Call.status == CallStatus.DIALING, Call.updated_at <= now - DIALING_STUCK_AFTER)
        .limit(limit)
    ).all()
    return [*queued, *stuck]


def enqueue_placing(rt: Runtime, call_ids: Sequence[int], tag: str) -> None:
    for call_id in call_ids:
        rt.jobs.enqueue(PLACE_JOB, call_id, job_id=f"call-{call_id}-{tag}")


# ------------------------------------------------------------------------------------------ status
def handle_status(
    session: Session,
    rt: Runtime,
    *,
    call_id: int,
    call_sid: str,
    call_status: str,
    answered_by: str | None,
    now: dt.datetime,
) -> str:
    """A status callback (``CallStatus``, ``AnsweredBy``) for our call ``call_id``. Idempotent: callbacks
    repeat and arrive out of order; one for an earlier try's SID is ignored. Returns what it did."""
    call = session.get(Call, call_id, with_for_update=True)
    if call is None:
        return "unknown"
    if call.call_sid is None and call.status == CallStatus.DIALING:
        _mark_placed(call, call_sid)  # the callback beat the create call's answer
    if call.call_sid != call_sid:
        return "other-try"
    call.last_call_status = call_status[:20]
    if answered_by:
        call.answered_by = answered_by[:32]
    if call.status in FINAL:
        return "already-" + call.status
    if call_status in NOT_ANSWERED:
        return _not_answered(session, rt, call, now)
    if call_status != "completed":
        return "noted"
    call.ended_at = now
    if call.status == CallStatus.IN_PROGRESS:
        conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
        call.status = CallStatus.COMPLETED
        if (
            conversation is not None
            and conversation.status == "active"
            and conversation.channel == "voice"
            and not waiting(session, rt, conversation)
        ):
            hung_up(session, rt, call, conversation, now)
            return "hung-up"
        return "completed"
    if call.status == CallStatus.RINGING:
        # Completed without our answer webhook having run (the caller hung up at once): nobody talked.
        return _not_answered(session, rt, call, now)
    return "noted"


def _not_answered(session: Session, rt: Runtime, call: Call, now: dt.datetime) -> str:
    patient = session.get(Patient, call.patient_id) if call.patient_id else None
    if call.direction != "outbound" or patient is None:
        call.status = CallStatus.COMPLETED
        call.ended_at = now
        return "ended"
    if call.tries < MAX_TRIES and can_call(patient):
        program = session.get(Program, patient.program_id)
        assert program is not None
        start, end = window(program)
        call.status = CallStatus.QUEUED
        call.next_try_at = next_allowed(now + RETRY_AFTER, patient.timezone, start, end)
        _enqueue_later(session, rt, call, f"try{call.tries + 1}")
        log.info("call id=%s not answered (try %s of %s): again later", call.id, call.tries, MAX_TRIES)
        return "retry"
    _give_up(session, rt, call, now, CallStatus.MISSED)
    return "missed"


def _give_up(session: Session, rt: Runtime, call: Call, now: dt.datetime, status: str) -> None:
    """No more tries: the check-in is a missed one (the engine's no-response path and its rules)."""
    call.status = status
    call.ended_at = now
    call.next_try_at = None
    conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
    patient = session.get(Patient, call.patient_id) if call.patient_id else None
    if conversation is not None and patient is not None:
        expire_missed(session, rt, patient, conversation, now)


def expire_missed(
    session: Session, rt: Runtime, patient: Patient, conversation: Conversation, now: dt.datetime
) -> None:
    """End a voice conversation nobody answered as ``no_response`` through the engine (its reminder, then
    its expiry: the missed question saved ``unanswered``, two missed check-ins → "unreachable")."""
    for _ in range(3):
        if conversation.status != "active" or conversation.channel != "voice":
            return
        resume_and_say(session, rt, patient, conversation, engine.Timeout(), now, inbound=None)


def waiting(session: Session, rt: Runtime, conversation: Conversation) -> bool:
    """Whether the conversation waits at a ``wait`` node (see :func:`app.flows.voice.waits`)."""
    if conversation.status != "active":
        return False
    flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
    return v.waits(flow, engine.State.from_dict(conversation.state))


#: ``conversations.result`` of a wait that could not reach the patient (see :func:`wait_by_phone`).
NOT_CONFIRMED = "not_confirmed"


def wait_by_phone(
    session: Session,
    rt: Runtime,
    patient: Patient,
    conversation: Conversation,
    said: Sequence[engine.Say],
    now: dt.datetime,
) -> list[engine.Say]:
    """A wait (med-reminder's "2 = remind me in 30 minutes") reached on a call: what the call says before
    goodbye. Ending inside the patient's calling hours, unchanged: the sweeper calls back after it.

    Ending outside them (a snooze at 20:45 to 21:15; 47 CFR 64.1200(c)(1), DESIGN §4.2) a call would be
    held to the morning, when a medication reminder is stale (more than 2 h late) and the call would
    carry nothing. So the patient is told now, instead of the wait's "I will remind you in 30 minutes":
    - where the patient takes texts, the reminder comes as a text at the wait's end (a reminder the patient
      asked for is a reply to them, not outreach: DESIGN §4.2) and the conversation goes on by text;
    - else the call says so and what to do (the wait's ``after_hours`` text: "take your medicine the way
      your doctor told you"), the question the wait leads to is saved unanswered — the dose is not
      confirmed, never assumed taken — the conversation ends ``not_confirmed`` and the patient's timeline
      shows it (``dose_not_confirmed``); nobody is called later.
    """
    lines = list(said)
    state = engine.State.from_dict(conversation.state)
    wake = state.wake_time
    program = session.get(Program, patient.program_id)
    assert program is not None
    start, end = window(program)
    if wake is None or within_quiet_window(wake, patient.timezone, start, end):
        return lines
    flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
    assert state.node is not None
    wait = flow.node(state.node)
    if wait.text and lines and lines[-1].purpose == "info":
        lines.pop()  # the wait's own "I will remind you in 30 minutes": replaced by what really happens
    language = state.language
    opens, closes = dt.time(start), dt.time(end)
    local = wake.astimezone(ZoneInfo(patient.timezone)).time()
    if can_text(patient):
        conversation.channel = "sms"  # the sweeper texts the question at the wait's end, worded for texts
        log.info("conversation id=%s: wait ends outside calling hours, texted instead", conversation.id)
        return [*lines, engine.Say(v.wait_texted_text(language, opens, closes, local), "info")]
    ctx = patient_context(
        session, rt, patient, now, exclude_conversation=conversation.id, variables=conversation.variables,
        channel=conversation.channel,
    )  # fmt: skip
    step = engine.end_at_wait(flow, state, ctx, now, NOT_CONFIRMED)
    spoken = apply_step(session, rt, patient, conversation, step, now, inbound=None)
    session.add(
        TimelineEvent(
            patient_id=patient.id,
            kind="dose_not_confirmed",
            code="wait_after_calling_hours",
            detail={"conversation_id": conversation.id, "flow_id": conversation.flow_id, "wait_end": wake.isoformat()},
            at=now,
        )
    )
    advice = render_text(wait.after_hours, language, ctx) if wait.after_hours else v.wait_unreached_advice(language)
    log.info("conversation id=%s: wait ends outside calling hours, no texts: not confirmed", conversation.id)
    return [
        *lines,
        *spoken,
        engine.Say(v.wait_unreached_text(language, opens, closes), "info"),
        engine.Say(advice, "info"),
    ]


def wake_after_wait(
    session: Session, rt: Runtime, patient: Patient, conversation: Conversation, now: dt.datetime
) -> str:
    """A voice conversation's wait is over (the sweeper found it due): contact the patient again, once.

    By phone while the patient can be called (a new call whose opening is the question the wait leads to,
    its ``call_key`` ``wake:<conversation>:<wake time>`` so the same wake never places two calls); else by
    text where the patient takes texts (the conversation goes on as SMS, worded for texts); else the
    conversation moves on unheard and expires as unanswered. Returns ``"call"``, ``"sms"`` or ``"none"``.
    """
    state = engine.State.from_dict(conversation.state)
    key = f"wake:{conversation.id}:{state.wake_at}"
    by_phone = can_call(patient)
    if not by_phone and can_text(patient):
        conversation.channel = "sms"  # apply_step texts the next question, worded for texts
    _, said = resume_and_say(session, rt, patient, conversation, engine.Timeout(), now, inbound=None)
    if conversation.channel == "sms":
        return "sms"
    if by_phone and conversation.status == "active" and said:
        if session.scalar(select(Call.id).where(Call.call_key == key)) is None:
            queue_call(session, rt, patient, conversation, said, now, key=key)
        return "call"
    return "none"


def _end_conversation(conversation: Conversation, status: str, result: str, now: dt.datetime) -> None:
    conversation.status = status
    conversation.result = result
    conversation.ended_at = now
    conversation.wake_at = None


def hung_up(session: Session, rt: Runtime, call: Call, conversation: Conversation, now: dt.datetime) -> None:
    """The caller hung up with a question open: answers kept, the conversation ``incomplete``, a text
    where the patient takes texts."""
    _end_conversation(conversation, "incomplete", "incomplete", now)
    patient = session.get(Patient, conversation.patient_id)
    assert patient is not None
    program = session.get(Program, patient.program_id)
    assert program is not None
    if can_text(patient):
        language = call.language or patient.language
        queue_text(
            session,
            rt,
            to=patient.phone,
            body=v.unfinished_call_sms(language, program.name, program.phone_display),
            kind="system",
            patient=patient,
            conversation_id=conversation.id,
            flow_id=conversation.flow_id,
            send_key=f"call:{call.id}:unfinished",
            now=now,
        )
    log.info("call id=%s hung up mid-flow: conversation id=%s incomplete", call.id, conversation.id)


def voicemail(session: Session, rt: Runtime, call: Call, patient: Patient, now: dt.datetime) -> v.Turn:
    """An answering machine: a voicemail with no PHI, a text where the patient takes texts, and the
    check-in counts as missed (it was not done)."""
    program = session.get(Program, patient.program_id)
    assert program is not None
    language = call.language or patient.language
    call.status = CallStatus.VOICEMAIL
    call.ended_at = now
    conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
    if conversation is not None:
        expire_missed(session, rt, patient, conversation, now)
    if can_text(patient):
        queue_text(
            session,
            rt,
            to=patient.phone,
            body=v.missed_call_sms(language, program.name, program.phone_display),
            kind="system",
            patient=patient,
            send_key=f"call:{call.id}:voicemail",
            now=now,
        )
    text = v.voicemail_text(language, program.name, patient.given_name, program.phone_display)
    return v.simple_turn([text], language, voices(rt)(language))
