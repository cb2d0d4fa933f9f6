"""The scheduler's one step (``outreach tick``): turn everything due in SQL into work.

Safe to run on many machines at once and as often as you like: rows are claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and every piece of work is keyed so it happens once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.conversations.service import (
    ConversationBusy,
    active_conversation,
    close_unanswered,
    last_reply_at,
    resume_conversation,
    start_conversation,
)
from app.escalation.paging import repage_due
from app.flows import engine
from app.messaging.calls import due_calls, enqueue_placing, start_voice_checkin, wants_voice
from app.messaging.inbound import due_inbound, enqueue_processing
from app.messaging.lessons import send_waiting_lessons, start_lesson
from app.messaging.outbound import due_for_retry, enqueue_sends
from app.models import Conversation, Enrollment, Patient, Program, ScheduledTouch, TouchStatus
from app.patients.consent import is_capped
from app.runtime import Runtime
from app.scheduling.calendar import next_allowed, within_quiet_window
from app.scheduling.campaigns import Campaign, Touch
from app.scheduling.caps import cap_reached
from app.scheduling.enrollments import note, record_event, refresh_next_due, reschedule_if_changed, schedule_basis
from app.scheduling.occurrences import still_worth_sending

log = logging.getLogger(__name__)

BATCH = 200
#: A touch that falls due during another conversation waits this long and tries again.
BUSY_RETRY = dt.timedelta(minutes=15)
#: A patient who replied (or was asked) within this long is answering now: the next touch waits for the
#: conversation instead of closing it; older and unanswered, the conversation ends as "no response".
ANSWERING = dt.timedelta(minutes=60)
T = TypeVar("T")


def _claim(session: Session, query: Select[T]) -> Select[T]:
    """Lock the rows this worker takes; other workers skip them instead of waiting (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def tick(rt: Runtime, now: dt.datetime) -> dict[str, int]:
    counts = {
        "woken": 0,
        "started": 0,
        "deferred": 0,
        "skipped": 0,
        "paged": 0,
        "requeued": 0,
        "inbound": 0,
        "rescheduled": 0,
        "calls": 0,
        "lessons": 0,
    }
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
        counts["lessons"] = send_waiting_lessons(session, rt, now)
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
        rescheduled: set[int] = set()
        for touch in touches:
            if touch.enrollment.patient_id in rescheduled:
                continue  # its pending rows were derived again in this batch; the next pass sees the new ones
            if _process_touch(session, rt, touch, now, counts) == "rescheduled":
                rescheduled.add(touch.enrollment.patient_id)
        return len(touches) == BATCH or bool(rescheduled)


def _process_touch(
    session: Session, rt: Runtime, touch: ScheduledTouch, now: dt.datetime, counts: dict[str, int]
) -> str | None:
    """Start one due occurrence, or skip / defer it with a reason on the patient's timeline; returns
    ``"rescheduled"`` when the patient's enrollments were derived again instead."""
    enrollment = session.get(Enrollment, touch.enrollment_id)
    assert enrollment is not None
    patient = session.get(Patient, enrollment.patient_id)
    assert patient is not None
    program = session.get(Program, patient.program_id)
    assert program is not None
    campaign = rt.content.campaign(enrollment.campaign)

    def tell(kind: str, code: str, **detail: object) -> None:
        note(
            session,
            patient.id,
            kind,
            code,
            now,
            enrollment_id=enrollment.id,
            touch_row_id=touch.id,
            detail={
                "touch": touch.touch_id,
                "flow": touch.flow_id,
                "scheduled_for": touch.scheduled_for.isoformat(),
                **detail,
            },
        )

    def finish(status: str, outcome: str) -> None:
        touch.status = status
        touch.outcome = outcome
        touch.processed_at = now
        counts["skipped" if status != TouchStatus.DONE else "started"] += 1
        if status != TouchStatus.DONE:
            tell("touch_skipped" if status == TouchStatus.SKIPPED else "touch_cancelled", outcome)
        refresh_next_due(session, enrollment)

    def defer(until: dt.datetime, code: str) -> None:
        touch.due_at = until
        counts["deferred"] += 1
        if touch.outcome != f"deferred:{code}":
            # Once per reason, not at every retry: the row says why and until when.
            touch.outcome = f"deferred:{code}"
            tell("touch_deferred", code, until=until.isoformat())
        refresh_next_due(session, enrollment)

    if not patient.reachable or enrollment.status != "active":
        if patient.opted_out:
            finish(TouchStatus.CANCELLED, "opted_out")
            return None
        finish(TouchStatus.CANCELLED, "unreachable" if not patient.reachable else "enrollment_stopped")
        return None
    if campaign is not None and enrollment.schedule_basis is None:
        enrollment.schedule_basis = schedule_basis(campaign, patient, enrollment)  # derived before bases existed
    elif campaign is not None and enrollment.schedule_basis != schedule_basis(campaign, patient, enrollment):
        # Something the schedule depends on changed by a path that did not reschedule: derive it again
        # before anything goes out in the old zone's (or the old anchor's) time.
        reschedule_if_changed(session, rt, patient, now)
        counts["rescheduled"] += 1
        return "rescheduled"
    if not still_worth_sending(touch.scheduled_for, now, touch.stale_after_minutes):
        finish(TouchStatus.SKIPPED, "stale")
        return None
    start, end = _window(program)
    if not within_quiet_window(now, patient.timezone, start, end):
        defer(next_allowed(now, patient.timezone, start, end), "quiet_hours")
        return None
    spec = campaign.touch(touch.touch_id) if campaign is not None else None
    if spec is not None and spec.unless == "reached" and _reached(session, enrollment.id):
        finish(TouchStatus.SKIPPED, "already_reached")
        return None
    if spec is not None and spec.education:
        _send_education_touch(session, rt, touch, spec.education, patient, program, now, defer, finish)
        return None
    if is_capped(patient, program):
        capped = cap_reached(_initiated_since(session, patient.id, now - dt.timedelta(days=8)), now, patient.timezone)
        if capped:
            finish(TouchStatus.SKIPPED, capped)
            return None
    busy = active_conversation(session, patient.id)
    if busy is not None:
        last_activity = last_reply_at(session, busy) or busy.started_at
        if now - last_activity < ANSWERING:
            # The patient is answering right now (or was just asked): one conversation at a time; try again
            # shortly (the stale rule still bounds how late it may go).
            defer(now + BUSY_RETRY, "conversation_active")
            return None
        # An unanswered conversation expires before the next scheduled one is due, never delays it.
        close_unanswered(session, patient, busy, now)
        note(session, patient.id, "conversation_closed", "closed_unanswered", now, enrollment_id=enrollment.id)
    # The patient's preferred channel decides (issue 9, item 9); a campaign (or a touch) that says "voice
    # first" calls a patient who has not opted out of calls, with the text as the fallback.
    order = campaign.channel_order(touch.touch_id) if campaign is not None else ("sms",)
    by_phone = wants_voice(patient) or (order[0] == "voice" and not patient.voice_opted_out)
    begin = start_voice_checkin if by_phone else start_conversation
    try:
        with session.begin_nested():
            conversation = begin(
                session,
                rt,
                patient,
                touch.flow_id,
                now,
                send_key=f"touch:{touch.occurrence_key}",
                variables=_variables(enrollment, spec, touch, patient.timezone),
            )
    except ConversationBusy:
        finish(TouchStatus.SKIPPED, "busy")
        return None
    touch.conversation_id = conversation.id
    finish(TouchStatus.DONE, "started")
    if campaign is not None and _record_screen_event(session, rt, campaign, enrollment, patient, now):
        return "rescheduled"
    return None


def _send_education_touch(
    session: Session,
    rt: Runtime,
    touch: ScheduledTouch,
    topic: str,
    patient: Patient,
    program: Program,
    now: dt.datetime,
    defer: Callable[[dt.datetime, str], None],
    finish: Callable[[str, str], None],
) -> None:
    """An education touch (issue 12 item 5): the lesson's first part by text. Education is never urgent: a
    day whose cap is used moves it to the next day's texting hours (until ``stale_after`` skips it), and a
    check-in the patient is answering now keeps it waiting (a lesson in the middle of questions confuses)."""
    start, end = _window(program)
    if is_capped(patient, program):
        capped = cap_reached(_initiated_since(session, patient.id, now - dt.timedelta(days=8)), now, patient.timezone)
        if capped is None and _check_in_later_today(session, patient, now):
            capped = "yields"  # the day's one text is kept for the check-in: the lesson waits
        if capped:
            local = now.astimezone(ZoneInfo(patient.timezone))
            tomorrow = (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            defer(next_allowed(tomorrow.astimezone(dt.UTC), patient.timezone, start, end), f"education_{capped}")
            return
    busy = active_conversation(session, patient.id)
    if busy is not None and now - (last_reply_at(session, busy) or busy.started_at) < ANSWERING:
        defer(now + BUSY_RETRY, "conversation_active")
        return
    lesson = start_lesson(
        session, rt, patient, topic, now, cause="schedule", source_key=f"touch:{touch.occurrence_key}"
    )
    if lesson is None:
        finish(TouchStatus.SKIPPED, "cannot_text")
    else:
        finish(TouchStatus.DONE, "lesson_sent")


def _check_in_later_today(session: Session, patient: Patient, now: dt.datetime) -> bool:
    """A pending touch that is not a lesson is due later on the patient's local day (a capped patient's one
    text of the day belongs to it, not to a lesson)."""
    local = now.astimezone(ZoneInfo(patient.timezone))
    midnight = (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    return (
        session.scalar(
            select(ScheduledTouch.id)
            .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
            .where(
                Enrollment.patient_id == patient.id,
                Enrollment.status == "active",
                ScheduledTouch.status == TouchStatus.PENDING,
                ScheduledTouch.due_at < midnight,
                ScheduledTouch.flow_id.not_like("education:%"),
            )
            .limit(1)
        )
        is not None
    )


def _record_screen_event(
    session: Session, rt: Runtime, campaign: Campaign, enrollment: Enrollment, patient: Patient, now: dt.datetime
) -> bool:
    """A campaign with touches anchored on ``positive_screen`` (behavioral-health's repeat PHQ-9): when one
    of the enrollment's screens ended positive (PHQ-2 >= 3: result ``screen_positive``) after the date
    recorded, record the event, which schedules those touches from its date. Checked when the enrollment's
    next touch goes out (the PHQ-9 itself follows a positive PHQ-2 at once, in the same conversation)."""
    if not any(t.anchor_event == "positive_screen" for t in campaign.touches):
        return False
    ended = session.scalar(
        select(func.max(Conversation.ended_at))
        .join(ScheduledTouch, ScheduledTouch.conversation_id == Conversation.id)
        .where(ScheduledTouch.enrollment_id == enrollment.id, Conversation.result == "screen_positive")
    )
    if ended is None:
        return False
    day = ended.astimezone(ZoneInfo(patient.timezone)).date()
    recorded = (enrollment.events or {}).get("positive_screen")
    if recorded and dt.date.fromisoformat(str(recorded)[:10]) >= day:
        return False
    record_event(session, rt, patient, "positive_screen", now, day)
    return True


def _variables(enrollment: Enrollment, spec: Touch | None, touch: ScheduledTouch, tz: str) -> dict[str, str]:
    """The enrollment's variables; a touch at the patient's own times also says which dose this is."""
    variables = dict(enrollment.variables or {})
    if spec is not None and spec.times_variable:
        variables["dose_time"] = touch.scheduled_for.astimezone(ZoneInfo(tz)).strftime("%H:%M")
    return variables


def _reached(session: Session, enrollment_id: int) -> bool:
    """An earlier touch of this enrollment was answered to the end (Project RED: the patient was reached)."""
    return (
        session.scalar(
            select(Conversation.id)
            .join(ScheduledTouch, ScheduledTouch.conversation_id == Conversation.id)
            .where(ScheduledTouch.enrollment_id == enrollment_id, Conversation.status == "completed")
            .limit(1)
        )
        is not None
    )


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
