"""The scheduler's one step (``outreach tick``): turn everything due in SQL into work.

Safe to run on many machines at once and as often as you like: rows are claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and every piece of work is keyed so it happens once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.conversations.service import ConversationBusy, active_conversation, resume_conversation, start_conversation
from app.escalation.paging import repage_due
from app.flows import engine
from app.messaging.calls import due_calls, enqueue_placing, start_voice_checkin, wants_voice
from app.messaging.inbound import due_inbound, enqueue_processing
from app.messaging.outbound import due_for_retry, enqueue_sends
from app.models import Conversation, Enrollment, Patient, Program, ScheduledTouch, TouchStatus
from app.runtime import Runtime
from app.scheduling.calendar import next_allowed, within_quiet_window
from app.scheduling.caps import cap_reached
from app.scheduling.enrollments import refresh_next_due
from app.scheduling.occurrences import still_worth_sending

log = logging.getLogger(__name__)

BATCH = 200
#: A touch that falls due during another conversation waits this long and tries again.
BUSY_RETRY = dt.timedelta(minutes=15)
T = TypeVar("T")


def _claim(session: Session, query: Select[T]) -> Select[T]:
    """Lock the rows this worker takes; other workers skip them instead of waiting (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def tick(rt: Runtime, now: dt.datetime) -> dict[str, int]:
    counts = {
        "woken": 0, "started": 0, "deferred": 0, "skipped": 0, "paged": 0, "requeued": 0, "inbound": 0, "calls": 0,
    }  # fmt: skip
    # Stored texts first (store first, then process): a job lost with Redis, or a retry that is due.
    with rt.sessions() as session:
        inbound = due_inbound(session, now)
    enqueue_processing(rt, inbound, f"tick-{now:%s}")
    counts["inbound"] = len(inbound)
    while _wake_conversations(rt, now, counts):
        pass
    while _start_due_touches(rt, now, counts):
        pass
    with rt.sessions() as session, session.begin():
        counts["paged"] = repage_due(session, rt, now)
    with rt.sessions() as session:
        ids = due_for_retry(session, now)
    enqueue_sends(rt, ids, f"send-batch-{now:%s}")
    counts["requeued"] = len(ids)
    with rt.sessions() as session:
        calls = due_calls(session, now)
    enqueue_placing(rt, calls, f"tick-{now:%s}")
    counts["calls"] = len(calls)
    log.info("tick done %s", counts)
    return counts


def _window(program: Program) -> tuple[int, int]:
    return max(8, program.quiet_start_hour), min(21, program.quiet_end_hour)


def _wake_conversations(rt: Runtime, now: dt.datetime, counts: dict[str, int]) -> bool:
    with rt.sessions() as session, session.begin():
        query = (
            select(Conversation)
            .where(Conversation.status == "active", Conversation.wake_at <= now)
            .order_by(Conversation.wake_at)
            .limit(BATCH)
        )
        conversations = session.scalars(_claim(session, query)).all()
        for conversation in conversations:
            patient = session.get(Patient, conversation.patient_id)
            assert patient is not None
            program = session.get(Program, patient.program_id)
            assert program is not None
            state = engine.State.from_dict(conversation.state)
            start, end = _window(program)
            if not state.reminded and not within_quiet_window(now, patient.timezone, start, end):
                # A reminder is outreach: it waits for the patient's morning.
                conversation.wake_at = next_allowed(now, patient.timezone, start, end)
                counts["deferred"] += 1
                continue
            resume_conversation(session, rt, patient, conversation, engine.Timeout(), now, inbound=None)
            counts["woken"] += 1
        return len(conversations) == BATCH


def _start_due_touches(rt: Runtime, now: dt.datetime, counts: dict[str, int]) -> bool:
    with rt.sessions() as session, session.begin():
        query = (
            select(ScheduledTouch)
            .where(ScheduledTouch.status == TouchStatus.PENDING, ScheduledTouch.due_at <= now)
            .order_by(ScheduledTouch.due_at)
            .limit(BATCH)
        )
        touches = session.scalars(_claim(session, query)).all()
        for touch in touches:
            _process_touch(session, rt, touch, now, counts)
        return len(touches) == BATCH


def _process_touch(
    session: Session, rt: Runtime, touch: ScheduledTouch, now: dt.datetime, counts: dict[str, int]
) -> None:
    enrollment = session.get(Enrollment, touch.enrollment_id)
    assert enrollment is not None
    patient = session.get(Patient, enrollment.patient_id)
    assert patient is not None
    program = session.get(Program, patient.program_id)
    assert program is not None

    def finish(status: str, outcome: str) -> None:
        touch.status = status
        touch.outcome = outcome
        touch.processed_at = now
        counts["skipped" if status != TouchStatus.DONE else "started"] += 1
        refresh_next_due(session, enrollment)

    if not patient.reachable or enrollment.status != "active":
        return finish(TouchStatus.CANCELLED, "opted_out" if patient.opted_out else "unreachable")
    if not still_worth_sending(touch.scheduled_for, now, touch.stale_after_minutes):
        return finish(TouchStatus.SKIPPED, "stale")
    start, end = _window(program)
    if not within_quiet_window(now, patient.timezone, start, end):
        touch.due_at = next_allowed(now, patient.timezone, start, end)
        counts["deferred"] += 1
        refresh_next_due(session, enrollment)
        return None
    if program.uses_healthcare_exemption:
        capped = cap_reached(_initiated_since(session, patient.id, now - dt.timedelta(days=8)), now, patient.timezone)
        if capped:
            return finish(TouchStatus.SKIPPED, capped)
    if active_conversation(session, patient.id) is not None:
        # One conversation at a time: try again shortly; the stale rule still bounds how late it may go.
        touch.due_at = now + BUSY_RETRY
        counts["deferred"] += 1
        refresh_next_due(session, enrollment)
        return None
    # The preferred channel decides (issue 9, item 9): a call, or a text.
    begin = start_voice_checkin if wants_voice(patient) else start_conversation
    try:
        with session.begin_nested():
            conversation = begin(
                session,
                rt,
                patient,
                touch.flow_id,
                now,
                send_key=f"touch:{touch.occurrence_key}",
                variables=enrollment.variables,
            )
    except ConversationBusy:
        return finish(TouchStatus.SKIPPED, "busy")
    touch.conversation_id = conversation.id
    return finish(TouchStatus.DONE, "started")


def _initiated_since(session: Session, patient_id: int, since: dt.datetime) -> list[dt.datetime]:
    """When scheduled outreach to this patient started (replies to the patient are not counted)."""
    started = session.scalars(
        select(ScheduledTouch.processed_at)
        .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
        .where(
            Enrollment.patient_id == patient_id,
            ScheduledTouch.status == TouchStatus.DONE,
            ScheduledTouch.processed_at >= since,
        )
    ).all()
    return [moment for moment in started if moment is not None]
