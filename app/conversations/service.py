"""Running flows for patients: build the patient's context, call the pure engine, apply its events.

Why events: the engine decides (what to say, what to save, whom to alert); this module only records
those decisions in SQL and queues the texts, in one transaction with the state change.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.conversations.addressing import ADDRESSED_TO, addressed_caregiver
from app.conversations.goal_answers import CONFIDENCE_QUESTION, GOAL_FLOW, record_goal_confidence
from app.conversations.record_updates import apply_record_update
from app.conversations.variables import render_variables
from app.escalation.service import escalate_event, open_or_join
from app.flows import engine
from app.flows.compose import compile_composed, is_composed_source
from app.flows.loader import compile_flow
from app.flows.model import Flow
from app.messaging.caregivers import copy_emergency, copy_reminder
from app.messaging.consent import decline_outreach
from app.messaging.lessons import lessons_after_check_in
from app.messaging.outbound import queue_text
from app.models import Answer, CarePlan, Conversation, FlowVersion, Message, Patient, Program, ScheduledTouch
from app.runtime import Runtime
from app.triage.verdict import Finding

log = logging.getLogger(__name__)

HISTORY_DAYS = 8

# Statements built once (values as bound parameters): building an ORM statement and its cache key on every
# call costs more CPU than the round trip itself.
_ACTIVE = select(Conversation).where(
    Conversation.patient_id == bindparam("patient_id"), Conversation.status == "active"
)
_ACTIVE_LOCKED = _ACTIVE.with_for_update()
#: The last HISTORY_DAYS of answers, only the columns the engine needs (no Answer entities to load).
_HISTORY = (
    select(Answer.question_id, Answer.kind, Answer.value_number, Answer.value_text, Answer.answered_at)
    .where(Answer.patient_id == bindparam("patient_id"), Answer.answered_at >= bindparam("since"))
    .order_by(Answer.answered_at)
)
_HISTORY_EXCLUDING = _HISTORY.where(Answer.conversation_id != bindparam("exclude"))


#: One answer as ``patient_context`` reads it: (conversation id, question id, kind, number, text, answered at).
HistoryRow = tuple[int | None, str, str, float | None, str | None, dt.datetime]
_HISTORY_MANY = (
    select(
        Answer.patient_id,
        Answer.conversation_id,
        Answer.question_id,
        Answer.kind,
        Answer.value_number,
        Answer.value_text,
        Answer.answered_at,
    )
    .where(Answer.patient_id.in_(bindparam("patient_ids", expanding=True)), Answer.answered_at >= bindparam("since"))
    .order_by(Answer.answered_at, Answer.id)
)


def history_rows(session: Session, patient_ids: Sequence[int], now: dt.datetime) -> dict[int, list[HistoryRow]]:
    """The last ``HISTORY_DAYS`` of answers of many patients in one query, oldest first, by patient id
    (every id present): ``patient_context(history=...)`` then reads no answers itself."""
    found: dict[int, list[HistoryRow]] = {patient_id: [] for patient_id in patient_ids}
    if patient_ids:
        since = now - dt.timedelta(days=HISTORY_DAYS)
        for patient_id, *row in session.execute(_HISTORY_MANY, {"patient_ids": list(patient_ids), "since": since}):
            found[patient_id].append(tuple(row))  # type: ignore[arg-type]
    return found


@dataclass(frozen=True)
class StartBatch:
    """See :func:`start_and_say`: ``history`` = ``history_rows(...)[patient.id]``; ``conversation_id`` =
    a fresh id from ``conversations_id_seq`` (None: the INSERT is flushed here to get one)."""

    history: Sequence[HistoryRow]
    conversation_id: int | None = None


class ConversationBusy(Exception):
    """The patient already has an active conversation."""


def pinned_flow(session: Session, rt: Runtime, flow_id: str, version: str) -> Flow:
    current = rt.content.flows.get(flow_id)
    if current is not None and current.version == version:
        return current
    row = session.scalars(
        select(FlowVersion).where(FlowVersion.flow_id == flow_id, FlowVersion.version == version)
    ).one()
    return _compile_cached(flow_id, version, row.source)


@functools.lru_cache(maxsize=128)
def _compile_cached(flow_id: str, version: str, source: str) -> Flow:
    # The stored source of an older version: compiled under its own file name, as it was loaded then.
    if is_composed_source(source):
        return compile_composed(source)
    return compile_flow(source, f"{flow_id}.yaml")


class NothingToMonitor(LookupError):
    """A combined check-in for a patient whose care plan (or conditions) names none of its modules."""


def resolve_flow_id(session: Session, rt: Runtime, patient: Patient, flow_id: str) -> str:
    """The flow to start for ``flow_id``: itself, or for a composition (chronic-care-check) the combined
    check-in of the patient's care-plan monitoring modules (with no plan, of the patient's conditions).
    Raises NothingToMonitor when none of the composition's modules applies."""
    if flow_id not in rt.content.compositions:
        return flow_id
    monitoring = session.scalar(select(CarePlan.monitoring).where(CarePlan.patient_id == patient.id))
    wanted = monitoring if monitoring is not None else list(patient.conditions or [])
    found = rt.content.combined_flow_id(flow_id, wanted)
    if found is None:
        raise NothingToMonitor(flow_id)
    return found


#: ``session.info`` key: (flow id, version) pairs this transaction already knows are stored.
_VERSIONS_KNOWN = "conversations.flow_versions_known"


def _remember_version(session: Session, rt: Runtime, flow: Flow) -> None:
    """Store the flow's source for this version once (conversations are pinned to it); asked once per
    flow and version in a transaction (a tick starting 200 check-ins asks once, not 200 times)."""
    transaction = session.get_transaction()
    cached = session.info.get(_VERSIONS_KNOWN)
    if cached is None or cached[0] is not transaction:
        # Per transaction: after a rollback the row may be gone again.
        cached = session.info[_VERSIONS_KNOWN] = (transaction, set())
    known: set[tuple[str, str]] = cached[1]
    if (flow.id, flow.version) in known:
        return
    exists = session.scalar(
        select(FlowVersion.id).where(FlowVersion.flow_id == flow.id, FlowVersion.version == flow.version)
    )
    if exists is None:
        with session.begin_nested():
            session.add(FlowVersion(flow_id=flow.id, version=flow.version, source=rt.content.flow_sources[flow.id]))
    known.add((flow.id, flow.version))


def patient_context(
    session: Session,
    rt: Runtime,
    patient: Patient,
    now: dt.datetime,
    *,
    exclude_conversation: int | None = None,
    variables: Mapping[str, str] | None = None,
    channel: str | None = None,
    history: Sequence[HistoryRow] | None = None,
) -> engine.PatientContext:
    """``history``: the patient's answers of the last ``HISTORY_DAYS`` already read (``history_rows``, for
    many patients in one query); ``None`` reads them here."""
    program = session.get(Program, patient.program_id)
    assert program is not None
    # Only the columns the engine needs (no Answer entities in the identity map): the value as
    # ``Answer.value`` reads it.
    rows: Sequence[Any]
    if history is not None:
        rows = [row[1:] for row in history if exclude_conversation is None or row[0] != exclude_conversation]
    else:
        params: dict[str, Any] = {"patient_id": patient.id, "since": now - dt.timedelta(days=HISTORY_DAYS)}
        if exclude_conversation is None:
            rows = session.execute(_HISTORY, params).all()
        else:
            rows = session.execute(_HISTORY_EXCLUDING, {**params, "exclude": exclude_conversation}).all()
    past = [
        engine.PastAnswer(question_id, _answer_value(kind, number, text), answered_at)
        for question_id, kind, number, text, answered_at in rows
    ]
    thresholds = {**(program.thresholds or {}), **(patient.thresholds or {})}
    return engine.PatientContext(
        channel=channel or "sms",
        first_name=patient.given_name,
        language=patient.language,
        program_name=program.name,
        program_phone=program.phone_display,
        history=past,
        thresholds=thresholds,
        variables={
            # The program's resource lists for this patient's ZIP code ({resources_food}...), then the
            # enrollment's own variables.
            **rt.content.resources.variables(patient.language, program=program.slug, zip_code=patient.zip_code),
            **render_variables(variables or {}, patient.language, patient.timezone),
        },
        education=rt.content.education_for(patient.language),
        timezone=patient.timezone,
    )


def _answer_value(kind: str, number: float | None, text: str | None) -> Any:
    """``Answer.value`` from the row's columns."""
    if kind == "yes_no":
        return text == "yes" if text is not None else None
    if kind in {"number", "scale"}:
        return number
    return text


def active_conversation(session: Session, patient_id: int, *, lock: bool = False) -> Conversation | None:
    return session.scalars(_ACTIVE_LOCKED if lock else _ACTIVE, {"patient_id": patient_id}).first()


def start_conversation(
    session: Session,
    rt: Runtime,
    patient: Patient,
    flow_id: str,
    now: dt.datetime,
    *,
    send_key: str | None = None,
    lead_in: Sequence[str] = (),
    variables: Mapping[str, str] | None = None,
    confirm: tuple[Finding, ...] = (),
    channel: str = "sms",
    batch: StartBatch | None = None,
) -> Conversation:
    """Start ``flow_id`` for the patient now; ``confirm``: begin with "right now?" about these red flags
    (app/flows/routing.py RIGHT_NOW_FLOW). Raises ConversationBusy when one is active.

    ``channel="voice"``: the conversation runs on a call and nothing is texted; use
    :func:`start_and_say` to get what the engine said, for the call to speak."""
    return start_and_say(
        session, rt, patient, flow_id, now, send_key=send_key, lead_in=lead_in, variables=variables,
        confirm=confirm, channel=channel, batch=batch,
    )[0]  # fmt: skip


def start_and_say(
    session: Session,
    rt: Runtime,
    patient: Patient,
    flow_id: str,
    now: dt.datetime,
    *,
    send_key: str | None = None,
    lead_in: Sequence[str] = (),
    variables: Mapping[str, str] | None = None,
    confirm: tuple[Finding, ...] = (),
    channel: str = "sms",
    batch: StartBatch | None = None,
) -> tuple[Conversation, list[engine.Say]]:
    """:func:`start_conversation`, also returning the lines the engine said (``engine.Say``).

    ``batch``: what a caller starting many conversations in one transaction already read (the tick):
    the patient has no active conversation (checked with the patient's row locked), the patient's answer
    history, and a conversation id taken from the sequence, so nothing here waits for the database; the
    rows go in with the transaction's one flush. A patient who got an active conversation meanwhile
    makes that flush fail (the unique index), and the caller redoes its batch one at a time."""
    if batch is None and active_conversation(session, patient.id) is not None:
        raise ConversationBusy(patient.id)
    flow = rt.content.flow(resolve_flow_id(session, rt, patient, flow_id))
    _remember_version(session, rt, flow)
    ctx = patient_context(
        session, rt, patient, now, variables=variables, channel=channel, history=batch.history if batch else None
    )
    step = engine.start(flow, ctx, now, rt.content.intents, confirm=confirm)
    conversation = Conversation(
        patient_id=patient.id,
        channel=channel,
        flow_id=flow.id,
        flow_version=flow.version,
        status=step.state.status,
        state=step.state.to_dict(),
        wake_at=step.state.wake_time,
        started_at=now,
        variables=dict(variables or {}),
    )
    if batch is not None and batch.conversation_id is not None:
        conversation.id = batch.conversation_id
        session.add(conversation)
    else:
        session.add(conversation)
        session.flush()
    said = apply_step(session, rt, patient, conversation, step, now, inbound=None, send_key=send_key, lead_in=lead_in)
    if patient.reachable:
        # A caregiver the patient allowed copies of reminders to hears that one went out (no more than that).
        copy_reminder(session, rt, patient, flow.id, str(conversation.id), now)
    log.info("conversation started id=%s flow=%s@%s", conversation.id, flow.id, flow.version)
    return conversation, said


def resume_conversation(
    session: Session,
    rt: Runtime,
    patient: Patient,
    conversation: Conversation,
    given: engine.Input,
    now: dt.datetime,
    *,
    inbound: Message | None,
    history: Sequence[HistoryRow] | None = None,
) -> engine.Step:
    return resume_and_say(session, rt, patient, conversation, given, now, inbound=inbound, history=history)[0]


def resume_and_say(
    session: Session,
    rt: Runtime,
    patient: Patient,
    conversation: Conversation,
    given: engine.Input,
    now: dt.datetime,
    *,
    inbound: Message | None,
    history: Sequence[HistoryRow] | None = None,
) -> tuple[engine.Step, list[engine.Say]]:
    """:func:`resume_conversation`, also returning the lines said (a chained flow's opening included).
    ``history``: see ``patient_context``."""
    flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
    ctx = patient_context(
        session,
        rt,
        patient,
        now,
        exclude_conversation=conversation.id,
        variables=conversation.variables,
        channel=conversation.channel,
        history=history,
    )
    state = engine.State.from_dict(conversation.state)
    step = engine.resume(flow, state, ctx, given, now, rt.content.intents)
    return step, apply_step(session, rt, patient, conversation, step, now, inbound=inbound)


def apply_step(
    session: Session,
    rt: Runtime,
    patient: Patient,
    conversation: Conversation,
    step: engine.Step,
    now: dt.datetime,
    *,
    inbound: Message | None,
    send_key: str | None = None,
    lead_in: Sequence[str] = (),
) -> list[engine.Say]:
    """Record one engine step: answers, escalations, the conversation's state; queue its one text (SMS).

    Returns what was said (``engine.Say``, lead-in first). On a voice conversation nothing is texted: the
    call speaks the returned lines (a chained flow's conversation, started on the same channel, included).
    """
    conversation.state = step.state.to_dict()
    conversation.status = step.state.status
    conversation.wake_at = step.state.wake_time
    said: list[str] = list(lead_in)
    spoken: list[engine.Say] = [engine.Say(line, "info") for line in lead_in]
    purposes: list[str] = []
    chained: str | None = None
    declined = False  # the welcome's "no to messages and calls" (stops automated outreach after this step)
    for event in step.events:
        if isinstance(event, engine.SaveAnswer):
            number = (
                float(event.value)
                if isinstance(event.value, int | float) and not isinstance(event.value, bool)
                else None
            )
            text: str | None
            if isinstance(event.value, bool):
                text = "yes" if event.value else "no"
            elif isinstance(event.value, str):
                text = event.value
            else:
                text = None
            session.add(
                Answer(
                    patient_id=patient.id,
                    conversation_id=conversation.id,
                    message_id=inbound.id if inbound else None,
                    flow_id=conversation.flow_id,
                    question_id=event.question_id,
                    kind=event.kind,
                    value_number=number,
                    value_text=text,
                    unit=event.unit,
                    raw=event.raw[:1600],
                    channel=inbound.channel if inbound else _channel_name(rt, conversation),
                    answered_at=now,
                    # Who gave it: NULL = the patient; a caregiver answering on the patient's behalf.
                    given_by_caregiver_id=inbound.caregiver_id if inbound else None,
                )
            )
            if conversation.flow_id == GOAL_FLOW and event.question_id == CONFIDENCE_QUESTION and number is not None:
                # The weekly goal check: the 0-10 answer goes back to the care-plan goal, with when.
                record_goal_confidence(session, patient, conversation.variables, number, now)
        elif isinstance(event, engine.Escalate):
            if inbound is not None and event.rule_id.startswith(("red-flag:", "confirm:")):
                _flag(inbound, event.rule_id.replace("red-flag:", "red_flag:"))
            escalate_event(session, rt, patient, event, conversation_id=conversation.id, now=now)
        elif isinstance(event, engine.Say):
            said.append(event.text)
            spoken.append(event)
            purposes.append(event.purpose)
        elif isinstance(event, engine.NotUnderstood | engine.NeedsReview):
            # Not understood, or understood with more to read ("no but my ankles are huge", "no sé").
            if inbound is not None:
                inbound.needs_review = True
        elif isinstance(event, engine.Completed):
            conversation.result = event.result
            conversation.ended_at = now
            chained = event.start_flow
            if event.result == "no_response" and ADDRESSED_TO not in (conversation.variables or {}):
                # (A caregiver's silence says nothing about whether the patient can be reached.)
                _check_unreachable(session, patient, conversation, now)
        elif isinstance(event, engine.LanguageChanged):
            patient.language = event.language
        elif isinstance(event, engine.UpdateRecord):
            apply_record_update(
                session, rt, patient, event, channel=conversation.channel, conversation_id=conversation.id, now=now
            )
            declined = declined or event.changes.get("consent") == "declined"
        elif isinstance(event, engine.OptOutRequested) and inbound is not None:
            # "Please stop texting me": not an opt-out (only the keyword is); staff follow up.
            inbound.needs_review = True
            _flag(inbound, "opt_out_request")
    if chained and patient.reachable and not declined and chained in rt.content.flows:
        # The next flow's opening goes in the same text as this one's closing, so they arrive in order.
        session.flush()
        if conversation.channel == "voice":
            _, follow = start_and_say(
                session, rt, patient, chained, now, variables=conversation.variables, channel="voice"
            )
            return [*spoken, *follow]
        start_conversation(session, rt, patient, chained, now, lead_in=said, variables=conversation.variables)
        return spoken
    if conversation.channel == "voice":
        if declined:
            decline_outreach(session, patient, conversation_id=conversation.id, now=now)
        return spoken
    if said and patient.reachable:
        # One text per step: separate texts can arrive out of order, and the 911 advice must come first.
        to = patient.phone
        if inbound is not None and inbound.caregiver_id is not None and inbound.from_number:
            to = inbound.from_number  # a caregiver answered: the reply (and next question) goes back to them
        addressed = addressed_caregiver(session, conversation)
        if conversation.variables and ADDRESSED_TO in conversation.variables:
            if addressed is None:
                return spoken  # the caregiver opted out or the permission was withdrawn: nothing is sent
            to = addressed.phone
        if conversation.status != "active":
            # A lesson the check-in's answers call for (a low sugar → the rule of 15) closes its last text.
            said.extend(lessons_after_check_in(session, rt, patient, conversation, now))
        kind = "prompt" if inbound is None else "reply"
        if "emergency" in purposes:
            kind = "emergency"
        elif declined:
            kind = "consent"  # the closing text ("no more messages; reply START") goes out after the opt-out
        reply = queue_text(
            session,
            rt,
            to=to,
            body="\n\n".join(said)[:1600],
            kind=kind,
            patient=patient,
            conversation_id=conversation.id,
            flow_id=conversation.flow_id,
            send_key=send_key,
            now=now,
        )
        if to != patient.phone:
            reply.caregiver_id = inbound.caregiver_id if inbound is not None else None
        if addressed is not None:
            reply.caregiver_id = addressed.id
        step_key = f"{conversation.id}:{inbound.id if inbound is not None else 'start'}"
        if "emergency" in purposes:
            copy_emergency(session, rt, patient, said, step_key, now)
    if declined:
        # "No to messages and calls" at the welcome: no further automated outreach (after its closing text).
        decline_outreach(session, patient, conversation_id=conversation.id, now=now)
    return spoken


def _channel_name(rt: Runtime, conversation: Conversation) -> str:
    return "voice" if conversation.channel == "voice" else rt.channel.name


def last_reply_at(session: Session, conversation: Conversation) -> dt.datetime | None:
    """When the patient last sent a text in this conversation (None: never answered)."""
    return session.scalar(
        select(func.max(Message.created_at)).where(
            Message.conversation_id == conversation.id, Message.direction == "inbound"
        )
    )


def close_unanswered(session: Session, patient: Patient, conversation: Conversation, now: dt.datetime) -> None:
    """End a conversation the patient has left unanswered, as its expiry would ("no_response"), so the
    next scheduled check-in goes out on time instead of waiting for it (issue 10 item 2)."""
    state = engine.State.from_dict(conversation.state)
    state = replace(state, status="expired", result="no_response", wake_at=None)
    conversation.state = state.to_dict()
    conversation.status = "expired"
    conversation.result = "no_response"
    conversation.wake_at = None
    conversation.ended_at = now
    session.flush()
    _check_unreachable(session, patient, conversation, now)


def _flag(message: Message, flag: str) -> None:
    """Add a flag for staff to a stored inbound message (a new list, so the JSON column sees the change)."""
    message.flags = list(dict.fromkeys([*(message.flags or []), flag]))


def _check_unreachable(session: Session, patient: Patient, conversation: Conversation, now: dt.datetime) -> None:
    """Two scheduled check-ins in a row with no response → ROUTINE "unreachable" (DESIGN §4.3)."""
    if session.scalar(select(ScheduledTouch.id).where(ScheduledTouch.conversation_id == conversation.id)) is None:
        return  # a conversation staff started by hand is not a missed check-in
    scheduled = select(ScheduledTouch.conversation_id).where(ScheduledTouch.conversation_id.is_not(None))
    previous = session.scalars(
        select(Conversation)
        .where(
            Conversation.patient_id == patient.id,
            Conversation.id.in_(scheduled),
            Conversation.id != conversation.id,
            Conversation.ended_at.is_not(None),
        )
        .order_by(Conversation.started_at.desc(), Conversation.id.desc())
        .limit(1)
    ).first()
    if previous is not None and previous.result == "no_response":
        open_or_join(
            session,
            patient,
            level="ROUTINE",
            reason="unreachable",
            rule_id="two-missed-check-ins",
            detail={"missed_in_a_row": 2, "flows": [previous.flow_id, conversation.flow_id]},
            conversation_id=conversation.id,
            now=now,
        )
