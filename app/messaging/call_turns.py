"""A call, turn by turn: the answer webhook and each Gather result become the next voice turn.

Every request is applied once: the call row is locked, each turn is stored under its step
(``calls.turns``) and the Gather action carries ``step``; a request for a step already applied (Twilio
retried, or a replay) gets the stored turn back and changes nothing. Every key and phrase heard is an
inbound ``messages`` row (channel ``voice``, ``provider_sid`` ``<CallSid>:<step>``) and every turn an
outbound one, so the timeline and ``GET /patients/<id>/messages`` show the call.

Triage runs on every phrase: inside a flow the engine does it (EMERGENCY → 911 / 988 said at once, the
escalation opened and paged, and where the program has a nurse line "to talk to a nurse now, press 0"
dials it); in the menu and at a read-back it is checked here first.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.service import active_conversation, pinned_flow, resume_and_say, start_and_say
from app.escalation.service import escalate_event, open_or_join
from app.flows import engine
from app.flows import voice as v
from app.flows.model import Node
from app.flows.routing import Route, outside_plan
from app.messaging.calls import can_call, voicemail, voices, wait_by_phone, waiting
from app.messaging.inbound import find_patient
from app.models import (
    AuditEvent,
    Call,
    CallStatus,
    Conversation,
    Enrollment,
    Message,
    Patient,
    Program,
    ScheduledTouch,
    TouchStatus,
)
from app.patients.phones import InvalidPhone, to_e164
from app.runtime import Runtime

log = logging.getLogger(__name__)

#: Once the check-in is done the call says goodbye; a Gather result after that hangs up.
ENDED = v.ENDED


@dataclass(frozen=True)
class VoiceAnswer:
    """What the webhook renders: ``turn`` with its Gather action at ``(call_id, step)``."""

    turn: v.Turn
    call_id: int
    step: int


@dataclass(frozen=True)
class GatherResult:
    """A Gather (or Dial) action's form: ``Digits``, ``SpeechResult`` + ``Confidence``, ``DialCallStatus``."""

    digits: str | None
    speech: str | None
    confidence: str | None
    dial_status: str | None = None


def _said(lines: list[dict[str, Any]]) -> list[engine.Say]:
    return [engine.Say(str(d.get("text", "")), str(d.get("purpose", "prompt"))) for d in lines]


def _language(call: Call, conversation: Conversation | None, patient: Patient | None) -> str:
    if conversation is not None:
        return str(conversation.state.get("language") or call.language)
    return call.language or (patient.language if patient else "en")


def _record_turn(session: Session, call: Call, turn: v.Turn, now: dt.datetime) -> None:
    lines = turn.lines()
    if not lines:
        return
    session.add(
        Message(
            patient_id=call.patient_id,
            conversation_id=call.conversation_id,
            direction="outbound",
            channel="voice",
            kind="prompt",
            body="\n\n".join(lines)[:1600],
            status="said",
            to_number=call.to_number if call.direction == "outbound" else call.from_number,
            created_at=now,
            updated_at=now,
            sent_at=now,
        )
    )


def _record_heard(session: Session, call: Call, step: int, heard: GatherResult, now: dt.datetime) -> Message | None:
    body = (heard.digits or "").strip() or (heard.speech or "").strip()
    if not body:
        return None
    conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
    message = Message(
        patient_id=call.patient_id,
        conversation_id=call.conversation_id,
        direction="inbound",
        channel="voice",
        kind="reply",
        body=body[:1600],
        status="received",
        provider_sid=f"{call.call_sid}:{step}"[:64] if call.call_sid else None,
        from_number=call.to_number if call.direction == "outbound" else call.from_number,
        flow_id=conversation.flow_id if conversation else None,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    return message


def _store(session: Session, call: Call, step: int, turn: v.Turn, now: dt.datetime) -> VoiceAnswer:
    call.turns = {**(call.turns or {}), str(step): turn.to_dict()}
    call.step = step + 1
    call.updated_at = now
    _record_turn(session, call, turn, now)
    if turn.ends and call.status == CallStatus.IN_PROGRESS:
        call.pending = {**(call.pending or {}), "after": ENDED}
    return VoiceAnswer(turn, call.id, step + 1)


def _replay(call: Call, step: int) -> VoiceAnswer | None:
    stored = (call.turns or {}).get(str(step))
    return VoiceAnswer(v.Turn.from_dict(stored), call.id, step + 1) if stored else None


def _goodbye(rt: Runtime, language: str) -> v.Turn:
    return v.simple_turn([v.goodbye_text(language)], language, voices(rt)(language))


# ------------------------------------------------------------------------------------ answering
def answer_outbound(
    session: Session, rt: Runtime, *, call_id: int, call_sid: str, answered_by: str | None, now: dt.datetime
) -> VoiceAnswer | None:
    """Our call was answered (``POST /twilio/voice?call=<id>``). None: no such call or another call's SID."""
    call = session.get(Call, call_id, with_for_update=True)
    if call is None or call.direction != "outbound" or (call.call_sid not in (None, call_sid)):
        return None
    replay = _replay(call, 0)
    if replay is not None:
        return replay
    if call.call_sid is None:
        call.call_sid = call_sid
        call.tries += 1
    if answered_by:
        call.answered_by = answered_by[:32]
    patient = session.get(Patient, call.patient_id) if call.patient_id else None
    conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
    language = _language(call, conversation, patient)
    if patient is None:
        return _store(session, call, 0, _goodbye(rt, language), now)
    if answered_by and (answered_by.startswith("machine") or answered_by == "fax"):
        return _store(session, call, 0, voicemail(session, rt, call, patient, now), now)
    call.status = CallStatus.IN_PROGRESS
    if conversation is None or conversation.status != "active" or conversation.channel != "voice":
        return _store(session, call, 0, _goodbye(rt, language), now)
    node = _pending_node(session, rt, conversation)
    said = _said(call.opening or [])
    turn = v.question_turn(said, node, language, voices(rt)(language), asking=True)
    turn = _with_opt_out_offer(turn, language)
    return _store(session, call, 0, turn, now)


def _with_opt_out_offer(turn: v.Turn, language: str) -> v.Turn:
    """Every automated call offers "to stop these calls, press 9" once, before its first question."""
    return v.with_opt_out_offer(turn, language)


def _pending_node(session: Session, rt: Runtime, conversation: Conversation) -> Node | None:
    """The question the conversation waits on (None while "right now?" is asked, or none)."""
    state = engine.State.from_dict(conversation.state)
    if state.confirming or state.node is None or state.status != "active":
        return None
    flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
    node = flow.node(state.node)
    if node.type == "wait" and node.next:
        node = flow.node(node.next[0].goto)
    return node if node.type == "question" else None


def answer_inbound(
    session: Session, rt: Runtime, *, call_sid: str, from_number: str, to_number: str, now: dt.datetime
) -> VoiceAnswer:
    """An incoming call (``POST /twilio/voice`` with no ``call``): a known number gets its pending check-in
    or a short menu; an unknown one the generic message with the 911 advice (no PHI)."""
    existing = session.scalars(select(Call).where(Call.call_sid == call_sid).with_for_update()).first()
    if existing is not None:
        replay = _replay(existing, 0)
        if replay is not None:
            return replay
    try:
        caller = to_e164(from_number)
    except InvalidPhone:
        caller = from_number[:20]
    patient = find_patient(session, caller, lock=True)
    call = existing or Call(
        patient_id=patient.id if patient else None,
        purpose="inbound",
        direction="inbound",
        status=CallStatus.IN_PROGRESS,
        call_key=f"inbound:{call_sid}",
        call_sid=call_sid,
        from_number=caller,
        to_number=to_number[:20],
        turns={},
        pending={},
        opening=[],
        language=patient.language if patient else "en",
        created_at=now,
        updated_at=now,
    )
    if existing is None:
        session.add(call)
        session.flush()
    if patient is None:
        call.status = CallStatus.COMPLETED
        call.ended_at = now
        english = v.simple_turn([v.unknown_caller_text("en")], "en", voices(rt)("en"))
        return _store(session, call, 0, english, now)
    language = patient.language
    voice = voices(rt)(language)
    if patient.opted_out:
        return _store(session, call, 0, v.simple_turn([v.no_checkin_text(language)], language, voice), now)
    conversation = active_conversation(session, patient.id, lock=True)
    if conversation is not None:
        return _store(session, call, 0, _pick_up(session, rt, call, patient, conversation), now)
    program = session.get(Program, patient.program_id)
    assert program is not None
    call.pending = {"after": "menu"}
    return _store(session, call, 0, v.key_turn([], [v.menu_text(language, program.name)], language, voice), now)


def _pick_up(session: Session, rt: Runtime, call: Call, patient: Patient, conversation: Conversation) -> v.Turn:
    """Go on with the patient's open check-in on this call, asking the pending question again."""
    conversation.channel = "voice"
    call.conversation_id = conversation.id
    flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
    state = engine.State.from_dict(conversation.state)
    program = session.get(Program, patient.program_id)
    assert program is not None
    ctx = engine.PatientContext(
        first_name=patient.given_name,
        language=state.language,
        program_name=program.name,
        program_phone=program.phone_display,
    )
    prompt = engine.pending_prompt(flow, state, ctx)
    said = [prompt] if prompt is not None else []
    node = _pending_node(session, rt, conversation)
    return v.question_turn(said, node, state.language, voices(rt)(state.language), asking=prompt is not None)


# ---------------------------------------------------------------------------------------- gather
def gather(
    session: Session, rt: Runtime, *, call_id: int, step: int, call_sid: str, heard: GatherResult, now: dt.datetime
) -> VoiceAnswer | None:
    """A Gather result for ``step`` of call ``call_id``. A step already applied gets its stored turn back;
    None for an unknown call, another call's SID or a step not asked yet (the webhook answers 404)."""
    loaded = _load_call(session, call_id)  # kept alive to the end: see _load_call
    call: Call | None = loaded[0] if loaded is not None else None
    if call is None or call.call_sid != call_sid:
        return None
    if step < call.step:
        return _replay(call, step)
    if step > call.step:
        return None
    patient = session.get(Patient, call.patient_id) if call.patient_id else None
    conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
    language = _language(call, conversation, patient)
    voice = voices(rt)(language)
    message = _record_heard(session, call, step, heard, now)
    pending = dict(call.pending or {})
    after = pending.get("after")
    if patient is None or after == ENDED or call.status in {CallStatus.COMPLETED, CallStatus.VOICEMAIL}:
        return _store(session, call, step, _goodbye(rt, language), now)
    if after in (v.EMERGENCY, v.EMERGENCY_AGAIN):
        return _store(session, call, step, _after_emergency(session, call, patient, heard, language, voice), now)
    if after == v.DIALED:
        call.pending = {"after": ENDED}
        if (heard.dial_status or "").lower() in v.NURSE_NOT_REACHED:
            log.warning("nurse line not reached call id=%s status=%s", call.id, heard.dial_status)
        return _store(session, call, step, v.after_dial(heard.dial_status, language, voice), now)
    if after == "menu":
        return _store(session, call, step, _menu(session, rt, call, patient, heard, message, now), now)
    if conversation is None or conversation.status != "active":
        return _store(session, call, step, _goodbye(rt, language), now)
    return _store(session, call, step, _in_flow(session, rt, call, patient, conversation, heard, message, now), now)


def _load_call(session: Session, call_id: int) -> tuple[Any, ...] | None:
    """``(call, patient, conversation, program)``: the call row locked (``FOR UPDATE OF calls``) with its
    patient, conversation and program read in the same statement, one round trip instead of four on the
    path a caller waits on. The caller keeps the tuple while it works: the session's identity map holds
    rows weakly, and the ``session.get`` calls that follow find them there with no SQL."""
    row = session.execute(
        select(Call, Patient, Conversation, Program)
        .outerjoin(Patient, Patient.id == Call.patient_id)
        .outerjoin(Conversation, Conversation.id == Call.conversation_id)
        .outerjoin(Program, Program.id == Patient.program_id)
        .where(Call.id == call_id)
        .with_for_update(of=Call)
    ).first()
    return tuple(row) if row is not None else None


def _in_flow(
    session: Session,
    rt: Runtime,
    call: Call,
    patient: Patient,
    conversation: Conversation,
    heard: GatherResult,
    message: Message | None,
    now: dt.datetime,
) -> v.Turn:
    state = engine.State.from_dict(conversation.state)
    language = state.language
    voice = voices(rt)(language)
    node = _pending_node(session, rt, conversation)
    pending = dict(call.pending or {})
    confirm = pending.pop("confirm", None)
    if confirm is not None:
        call.pending = pending
        return _confirmed(session, rt, call, patient, conversation, heard, message, confirm, node, now)
    got = v.read_input(
        node,
        language,
        digits=heard.digits,
        speech=heard.speech,
        confidence=heard.confidence,
        threshold=rt.settings.speech_confidence_min,
        intents=rt.content.intents,
        guarded=v.guards_opt_out(pinned_flow(session, rt, conversation.flow_id, conversation.flow_version), node),
    )
    if got.kind == "opt_out":
        return _opt_out_of_calls(session, call, patient, conversation, language, voice, now)
    if got.kind == "silence":
        if not pending.get("reprompted"):
            call.pending = {**pending, "reprompted": True}
            return _reprompt(call, language, voice, [v.silence_text(language)])
        call.pending = {}
        return _step(session, rt, call, patient, conversation, engine.Silence(), None, now)
    if got.kind == "confirm":
        call.pending = {"confirm": {"text": got.text, "display": got.display}}
        return v.key_turn([], [v.confirm_text(got.display, language)], language, voice)
    call.pending = {}
    return _step(session, rt, call, patient, conversation, engine.Reply(got.text, got.mode), message, now)


def _reprompt(call: Call, language: str, voice: str, lead: list[str]) -> v.Turn:
    """Ask the last question again (its prompt and Gather as stored), after ``lead``."""
    last = (call.turns or {}).get(str(call.step - 1))
    if last is None:
        return v.simple_turn(lead, language, voice)
    previous = v.Turn.from_dict(last)
    return v.Turn(
        say=tuple(lead), voice=previous.voice, language=previous.language, gather=previous.gather,
        prompt=v.without_apology(previous.prompt, language),
    )  # fmt: skip


def _confirmed(
    session: Session,
    rt: Runtime,
    call: Call,
    patient: Patient,
    conversation: Conversation,
    heard: GatherResult,
    message: Message | None,
    confirm: dict[str, Any],
    node: Node | None,
    now: dt.datetime,
) -> v.Turn:
    """The reply to "I heard …, press 1 if that is right": 1 applies what was heard, anything else asks the
    question again. Words spoken here are triaged first (an emergency goes to the engine at once)."""
    language = str(conversation.state.get("language") or patient.language)
    if heard.speech and not heard.digits:
        verdict = rt.content.intents.assess(heard.speech, language)
        if verdict.emergency or verdict.confirm:
            return _step(session, rt, call, patient, conversation, engine.Reply(heard.speech, "speech"), message, now)
    if v.read_confirm(heard.digits, heard.speech):
        text = str(confirm.get("text", ""))
        return _step(session, rt, call, patient, conversation, engine.Reply(text, "speech"), message, now)
    voice = voices(rt)(language)
    # Back to the question: the turn before the read-back holds its prompt.
    before = (call.turns or {}).get(str(call.step - 2))
    if before is None:
        return v.question_turn([], node, language, voice, asking=True)
    previous = v.Turn.from_dict(before)
    return v.Turn(
        say=(), voice=previous.voice, language=previous.language, gather=previous.gather, prompt=previous.prompt
    )


def _step(
    session: Session,
    rt: Runtime,
    call: Call,
    patient: Patient,
    conversation: Conversation,
    given: engine.Input,
    message: Message | None,
    now: dt.datetime,
) -> v.Turn:
    """One engine step on the call; its lines become the next turn (emergency → 911 first, then the nurse)."""
    if message is not None:
        message.conversation_id = conversation.id
        message.flow_id = conversation.flow_id
    _, said = resume_and_say(session, rt, patient, conversation, given, now, inbound=message)
    state = engine.State.from_dict(conversation.state)
    language = state.language
    voice = voices(rt)(language)
    if any(s.purpose == "emergency" for s in said):
        program = session.get(Program, patient.program_id)
        assert program is not None
        if program.nurse_line:
            call.pending = {"after": v.EMERGENCY, "advice": [s.text for s in said if s.purpose == "emergency"]}
        return v.emergency_turn([s.text for s in said], language, voice, program.nurse_line)
    if conversation.status != "active":
        # The chained flow (PHQ-2 → PHQ-9) goes on in this call.
        follow = active_conversation(session, patient.id)
        if follow is not None and follow.channel == "voice":
            call.conversation_id = follow.id
            conversation = follow
    # A wait (a snooze) asks nothing until it is over: the call says its line and goodbye; the patient is
    # called (or texted) again after it (app/messaging/calls.wake_after_wait).
    # A wait ending outside calling hours is texted, or the question it leads to not confirmed (wait_by_phone).
    waits = conversation.status == "active" and waiting(session, rt, conversation)
    if waits:
        said = wait_by_phone(session, rt, patient, conversation, said, now)
    asking = conversation.status == "active" and not waits
    node = _pending_node(session, rt, conversation) if asking else None
    return v.question_turn(said, node, language, voice, asking=asking)


def _after_emergency(
    session: Session, call: Call, patient: Patient, heard: GatherResult, language: str, voice: str
) -> v.Turn:
    """The reply to the nurse offer after an emergency (see :func:`app.flows.voice.after_emergency`)."""
    program = session.get(Program, patient.program_id)
    assert program is not None
    pending = dict(call.pending or {})
    advice = [str(line) for line in pending.get("advice") or []]
    if not program.nurse_line:
        call.pending = {"after": ENDED}
        return v.simple_turn([*advice, v.goodbye_text(language)], language, voice)
    turn, after = v.after_emergency(
        heard.digits, heard.speech, advice=advice, asked_again=pending.get("after") == v.EMERGENCY_AGAIN,
        nurse_line=program.nurse_line, language=language, voice=voice,
    )  # fmt: skip
    call.pending = {**pending, "after": after}
    return turn


def _opt_out_of_calls(
    session: Session,
    call: Call,
    patient: Patient,
    conversation: Conversation,
    language: str,
    voice: str,
    now: dt.datetime,
) -> v.Turn:
    """9 at a question: no more calls (texts go on, as the patient did not say STOP), confirmed, on the
    timeline (an audit event and the said/heard rows)."""
    opt_out_of_calls(session, patient, now)
    if conversation.status == "active":
        conversation.status = "stopped"
        conversation.result = "opted_out_of_calls"
        conversation.ended_at = now
        conversation.wake_at = None
    call.pending = {"after": ENDED}
    return v.simple_turn([v.opted_out_text(language)], language, voice)


def opt_out_of_calls(session: Session, patient: Patient, now: dt.datetime) -> bool:
    """The patient asked for no more calls. Returns whether this changed anything."""
    if patient.voice_opted_out:
        return False
    patient.voice_opted_out = True
    patient.voice_opted_out_at = now
    session.add(AuditEvent(action="patient.voice_opted_out", subject_type="patient", subject_id=patient.id, at=now))
    # Calls still to be tried are cancelled now.
    for queued in session.scalars(
        select(Call).where(Call.patient_id == patient.id, Call.status == CallStatus.QUEUED)
    ).all():
        queued.status = CallStatus.CANCELLED
        queued.error_code = "voice_opted_out"
        queued.ended_at = now
    log.info("patient opted out of calls id=%s", patient.id)
    return True


# ------------------------------------------------------------------------------------------ menu
def _menu(
    session: Session,
    rt: Runtime,
    call: Call,
    patient: Patient,
    heard: GatherResult,
    message: Message | None,
    now: dt.datetime,
) -> v.Turn:
    """1: today's check-in now; 2: the care team calls back (a ROUTINE item). Spoken words are triaged."""
    language = patient.language
    voice = voices(rt)(language)
    program = session.get(Program, patient.program_id)
    assert program is not None
    if heard.speech:
        verdict = rt.content.intents.assess(heard.speech, language)
        if verdict.emergency:
            return _outside_emergency(session, rt, call, patient, program, verdict, language, voice, now)
    choice = (heard.digits or "").strip() or ("1" if heard.speech and "check" in heard.speech.lower() else "")
    if choice == "1" and can_call(patient):
        touch = _todays_touch(session, patient, now)
        if touch is not None:
            conversation, said = start_and_say(
                session, rt, patient, touch.flow_id, now, send_key=f"touch:{touch.occurrence_key}", channel="voice"
            )
            touch.status = TouchStatus.DONE
            touch.outcome = "started_by_call"
            touch.processed_at = now
            touch.conversation_id = conversation.id
            call.conversation_id = conversation.id
            call.pending = {}
            asking = conversation.status == "active"
            node = _pending_node(session, rt, conversation) if asking else None
            return v.question_turn(said, node, language, voice, asking=asking)
        call.pending = {"after": ENDED}
        return v.simple_turn([v.no_checkin_text(language), v.goodbye_text(language)], language, voice)
    if choice == "2":
        open_or_join(
            session, patient, level="ROUTINE", reason="callback_requested", rule_id="voice-menu-callback",
            detail={"by": "inbound_call"}, conversation_id=None, now=now,
        )  # fmt: skip
        call.pending = {"after": ENDED}
        return v.simple_turn([v.callback_text(language)], language, voice)
    if not call.pending.get("reprompted"):
        call.pending = {"after": "menu", "reprompted": True}
        return v.key_turn([v.silence_text(language)], [v.menu_text(language, program.name)], language, voice)
    call.pending = {"after": ENDED}
    return v.simple_turn([v.goodbye_text(language)], language, voice)


def _outside_emergency(
    session: Session,
    rt: Runtime,
    call: Call,
    patient: Patient,
    program: Program,
    verdict: Any,
    language: str,
    voice: str,
    now: dt.datetime,
) -> v.Turn:
    ctx = engine.PatientContext(
        first_name=patient.given_name, language=language, program_name=program.name,
        program_phone=program.phone_display,
    )  # fmt: skip
    plan = outside_plan(Route("outside", verdict=verdict), ctx, reachable=True, notice_due=False)
    for event in plan.events:
        if isinstance(event, engine.Escalate):
            escalate_event(session, rt, patient, event, conversation_id=None, now=now, extra={"by": "inbound_call"})
    lines = [e.text for e in plan.events if isinstance(e, engine.Say) and e.purpose == "emergency"]
    call.pending = {"after": v.EMERGENCY, "advice": lines} if program.nurse_line else {"after": ENDED}
    return v.emergency_turn(lines, language, voice, program.nurse_line)


def _todays_touch(session: Session, patient: Patient, now: dt.datetime) -> ScheduledTouch | None:
    """The patient's next pending check-in due within the next 24 hours (or already due)."""
    return session.scalars(
        select(ScheduledTouch)
        .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
        .where(
            Enrollment.patient_id == patient.id,
            ScheduledTouch.status == TouchStatus.PENDING,
            ScheduledTouch.due_at <= now + dt.timedelta(hours=24),
        )
        .order_by(ScheduledTouch.due_at)
        .limit(1)
        .with_for_update(of=ScheduledTouch)
    ).first()


def gather_safely(
    rt: Runtime, *, call_id: int, step: int, call_sid: str, heard: GatherResult, now: dt.datetime
) -> VoiceAnswer | None:
    """:func:`gather` in its own transaction; if the step raises, a new transaction keeps what was heard
    (marked for review), triages it (an emergency is escalated and 911 / 988 said whatever broke) and
    ends the call politely: the caller never hears an application error for our failure."""
    from app.db import run_in_transaction

    try:
        return run_in_transaction(
            rt.sessions,
            lambda session: gather(session, rt, call_id=call_id, step=step, call_sid=call_sid, heard=heard, now=now),
        )
    except Exception as exc:
        failure = type(exc).__name__  # the class only: an exception's text may quote the patient
    log.error("voice step failed call id=%s step=%s error=%s", call_id, step, failure)
    return run_in_transaction(
        rt.sessions,
        lambda session: _step_failed(session, rt, call_id, step, call_sid, heard, failure, now),
    )


def _step_failed(
    session: Session,
    rt: Runtime,
    call_id: int,
    step: int,
    call_sid: str,
    heard: GatherResult,
    failure: str,
    now: dt.datetime,
) -> VoiceAnswer | None:
    call = session.get(Call, call_id, with_for_update=True)
    if call is None or call.call_sid != call_sid:
        return None
    if step < call.step:
        return _replay(call, step)
    patient = session.get(Patient, call.patient_id) if call.patient_id else None
    conversation = session.get(Conversation, call.conversation_id) if call.conversation_id else None
    language = _language(call, conversation, patient)
    voice = voices(rt)(language)
    message = _record_heard(session, call, step, heard, now)
    if message is not None:
        message.needs_review = True
        message.error_code = failure[:64]
    call.pending = {"after": ENDED}
    if patient is not None and heard.speech:
        verdict = rt.content.intents.assess(heard.speech, language)
        if verdict.emergency:
            program = session.get(Program, patient.program_id)
            assert program is not None
            turn = _outside_emergency(session, rt, call, patient, program, verdict, language, voice, now)
            return _store(session, call, step, turn, now)
    return _store(session, call, step, v.simple_turn([v.failed_text(language)], language, voice), now)


# ------------------------------------------------------------------------------------- simulator
#: ``calls.purpose`` of a call played in the simulator's phone mode (never placed through Twilio).
SIMULATED = "simulator"


def start_simulated_call(session: Session, rt: Runtime, patient: Patient, flow_id: str, now: dt.datetime) -> int:
    """The simulator's phone mode: ``flow_id`` started on the voice channel and its call answered at once,
    through :func:`answer_outbound` as a real answered call (no Twilio: the CallSid is ``SIM…``). Returns
    the call's id. Raises ``ConversationBusy`` when the patient already has an open conversation."""
    conversation, said = start_and_say(
        session, rt, patient, flow_id, now, send_key=f"sim:{uuid.uuid4().hex}", channel="voice"
    )
    call = Call(
        patient_id=patient.id,
        conversation_id=conversation.id,
        purpose=SIMULATED,
        direction="outbound",
        status=CallStatus.QUEUED,
        call_key=f"sim:{uuid.uuid4().hex}",
        to_number=patient.phone,
        opening=[{"text": s.text, "purpose": s.purpose} for s in said],
        turns={},
        pending={},
        language=engine.State.from_dict(conversation.state).language,
        created_at=now,
        updated_at=now,
    )
    session.add(call)
    session.flush()
    answer_outbound(session, rt, call_id=call.id, call_sid=f"SIM{uuid.uuid4().hex}", answered_by=None, now=now)
    return call.id


def simulated_gather(rt: Runtime, patient_id: int, call_id: int, heard: GatherResult, now: dt.datetime) -> bool:
    """A keypress, a phrase or silence on the simulator's call ``call_id`` of ``patient_id``, applied at the
    call's current step by :func:`gather_safely` (the Gather webhook's path). False: no such simulated call."""
    with rt.sessions() as session:
        call = session.get(Call, call_id)
        if call is None or call.patient_id != patient_id or call.purpose != SIMULATED or not call.call_sid:
            return False
        step, call_sid = call.step, call.call_sid
    return gather_safely(rt, call_id=call_id, step=step, call_sid=call_sid, heard=heard, now=now) is not None
