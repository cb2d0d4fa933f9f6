"""Running flows for patients: build the patient's context, call the pure engine, apply its events.

Why events: the engine decides (what to say, what to save, whom to alert); this module only records
those decisions in SQL and queues the texts, in one transaction with the state change.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.conversations.variables import render_variables
from app.escalation.service import escalate_event, open_or_join
from app.flows import engine
from app.flows.loader import compile_flow
from app.flows.model import Flow
from app.messaging.outbound import queue_text
from app.models import Answer, Conversation, FlowVersion, Message, Patient, Program, ScheduledTouch
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
    return compile_flow(source, f"{flow_id}.yaml")


def _remember_version(session: Session, rt: Runtime, flow: Flow) -> None:
    exists = session.scalar(
        select(FlowVersion.id).where(FlowVersion.flow_id == flow.id, FlowVersion.version == flow.version)
    )
    if exists is None:
        with session.begin_nested():
            session.add(FlowVersion(flow_id=flow.id, version=flow.version, source=rt.content.flow_sources[flow.id]))


def patient_context(
    session: Session,
    rt: Runtime,
    patient: Patient,
    now: dt.datetime,
    *,
    exclude_conversation: int | None = None,
    variables: Mapping[str, str] | None = None,
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
        first_name=patient.given_name,
        language=patient.language,
        program_name=program.name,
        program_phone=program.phone_display,
        history=past,
        thresholds=thresholds,
        variables=render_variables(variables or {}, patient.language, patient.timezone),
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
) -> Conversation:
    """Start ``flow_id`` for the patient now; ``confirm``: begin with "right now?" about these red flags
    (app/flows/routing.py RIGHT_NOW_FLOW). Raises ConversationBusy when one is active."""
    if active_conversation(session, patient.id) is not None:
        raise ConversationBusy(patient.id)
    flow = rt.content.flow(flow_id)
    _remember_version(session, rt, flow)
    ctx = patient_context(session, rt, patient, now, variables=variables)
    step = engine.start(flow, ctx, now, rt.content.intents, confirm=confirm)
    conversation = Conversation(
        patient_id=patient.id,
        flow_id=flow.id,
        flow_version=flow.version,
        status=step.state.status,
        state=step.state.to_dict(),
        wake_at=step.state.wake_time,
        started_at=now,
        variables=dict(variables or {}),
    )
    session.add(conversation)
    session.flush()
    apply_step(session, rt, patient, conversation, step, now, inbound=None, send_key=send_key, lead_in=lead_in)
    log.info("conversation started id=%s flow=%s@%s", conversation.id, flow.id, flow.version)
    return conversation


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
    """One engine step for ``given`` in ``conversation``, applied. ``history``: see ``patient_context``."""
    flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
    ctx = patient_context(
        session,
        rt,
        patient,
        now,
        exclude_conversation=conversation.id,
        variables=conversation.variables,
        history=history,
    )
    state = engine.State.from_dict(conversation.state)
    step = engine.resume(flow, state, ctx, given, now, rt.content.intents)
    apply_step(session, rt, patient, conversation, step, now, inbound=inbound)
    return step


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
) -> None:
    conversation.state = step.state.to_dict()
    conversation.status = step.state.status
    conversation.wake_at = step.state.wake_time
    said: list[str] = list(lead_in)
    purposes: list[str] = []
    chained: str | None = None
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
                    channel=inbound.channel if inbound else rt.channel.name,
                    answered_at=now,
                )
            )
        elif isinstance(event, engine.Escalate):
            if inbound is not None and event.rule_id.startswith(("red-flag:", "confirm:")):
                _flag(inbound, event.rule_id.replace("red-flag:", "red_flag:"))
            escalate_event(session, rt, patient, event, conversation_id=conversation.id, now=now)
        elif isinstance(event, engine.Say):
            said.append(event.text)
            purposes.append(event.purpose)
        elif isinstance(event, engine.NotUnderstood | engine.NeedsReview):
            # Not understood, or understood with more to read ("no but my ankles are huge", "no sé").
            if inbound is not None:
                inbound.needs_review = True
        elif isinstance(event, engine.Completed):
            conversation.result = event.result
            conversation.ended_at = now
            chained = event.start_flow
            if event.result == "no_response":
                _check_unreachable(session, patient, conversation, now)
        elif isinstance(event, engine.LanguageChanged):
            patient.language = event.language
        elif isinstance(event, engine.OptOutRequested) and inbound is not None:
            # "Please stop texting me": not an opt-out (only the keyword is); staff follow up.
            inbound.needs_review = True
            _flag(inbound, "opt_out_request")
    if chained and patient.reachable and chained in rt.content.flows:
        # The next flow's opening goes in the same text as this one's closing, so they arrive in order.
        session.flush()
        start_conversation(session, rt, patient, chained, now, lead_in=said, variables=conversation.variables)
        return
    if said and patient.reachable:
        # One text per step: separate texts can arrive out of order, and the 911 advice must come first.
        kind = "prompt" if inbound is None else "reply"
        if "emergency" in purposes:
            kind = "emergency"
        queue_text(
            session,
            rt,
            to=patient.phone,
            body="\n\n".join(said)[:1600],
            kind=kind,
            patient=patient,
            conversation_id=conversation.id,
            flow_id=conversation.flow_id,
            send_key=send_key,
            now=now,
        )


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
