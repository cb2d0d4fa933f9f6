"""The scheduler's one step (``outreach tick``): turn everything due in SQL into work.

Safe to run on many machines at once and as often as you like: rows are claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and every piece of work is keyed so it happens once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.conversations.service import (
    ConversationBusy,
    HistoryRow,
    NothingToMonitor,
    StartBatch,
    active_conversation,
    close_unanswered,
    history_rows,
    last_reply_at,
    pinned_flow,
    resume_conversation,
    start_conversation,
)
from app.escalation.paging import repage_due
from app.flows import engine
from app.messaging.calls import due_calls, enqueue_placing, start_voice_checkin, waiting, wake_after_wait, wants_voice
from app.messaging.inbound import due_inbound, enqueue_processing
from app.messaging.lessons import send_waiting_lessons, start_lesson
from app.messaging.outbound import DEFER_FLUSH, due_for_retry, enqueue_sends
from app.models import Conversation, Enrollment, Patient, Program, ScheduledTouch, TouchStatus
from app.patients.consent import WELCOME_FLOW, awaiting_consent, is_capped
from app.runtime import Runtime
from app.scheduling.calendar import next_allowed, within_quiet_window
from app.scheduling.campaigns import Campaign, Touch
from app.scheduling.caps import cap_reached, limits_for
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
    # Nothing due (most ticks): one indexed look, no claiming transactions.
    wake_due, touches_due = _anything_due(rt, now)
    while wake_due and _wake_conversations(rt, now, counts):
        pass
    while touches_due and _start_due_touches(rt, now, counts):
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


def _anything_due(rt: Runtime, now: dt.datetime) -> tuple[bool, bool]:
    """(a conversation to wake, a touch to start) at ``now``: two index probes in one statement
    (ix_conversations_status_wake, ix_touches_status_due)."""
    with rt.sessions() as session:
        wake, touch = session.execute(
            select(
                exists().where(Conversation.status == "active", Conversation.wake_at <= now),
                exists().where(ScheduledTouch.status == TouchStatus.PENDING, ScheduledTouch.due_at <= now),
            )
        ).one()
    return bool(wake), bool(touch)


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
                # A reminder is outreach: it waits for the patient's morning, unless the conversation is
                # stale by then (a medication reminder texted at 21:15 expires at 23:15; DESIGN §4.2: never
                # "take your 8 pm dose" at 8 am): no reminder, and it expires on time.
                morning = next_allowed(now, patient.timezone, start, end)
                flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
                stale = dt.datetime.fromisoformat(state.started_at) + dt.timedelta(
                    minutes=flow.waits.expire_after_minutes
                )
                if stale <= morning:
                    conversation.state = replace(state, reminded=True, wake_at=max(stale, now).isoformat()).to_dict()
                    conversation.wake_at = max(stale, now)
                else:
                    conversation.wake_at = morning
                counts["deferred"] += 1
                continue
            if conversation.channel == "voice" and waiting(session, rt, conversation):
                # A wait reached during a call (a snooze): the call ended; contact the patient again.
                wake_after_wait(session, rt, patient, conversation, now)
            else:
                resume_conversation(session, rt, patient, conversation, engine.Timeout(), now, inbound=None)
            counts["woken"] += 1
        return len(conversations) == BATCH


@dataclass
class _Batch:
    """What one batch of due touches read up front (one query each, not one per touch): the patients'
    active conversations and answer history, fresh conversation ids, and the enrollments whose
    ``next_due_at`` to refresh in one statement at the end."""

    active: dict[int, Conversation]
    history: dict[int, list[HistoryRow]]
    ids: list[int]
    started: set[int] = field(default_factory=set)
    refresh: set[int] = field(default_factory=set)

    def next_id(self) -> int | None:
        return self.ids.pop() if self.ids else None


def _start_due_touches(rt: Runtime, now: dt.datetime, counts: dict[str, int]) -> bool:
    """One batch of due touches in one transaction; True when there may be more. If the batch fails (a
    conversation started elsewhere for one of its patients, say) it is rolled back whole — nothing was
    sent: texts are enqueued after the commit — and redone one touch at a time."""
    done: dict[str, int] = dict.fromkeys(counts, 0)
    try:
        with rt.sessions() as session, session.begin():
            more = _start_batch(session, rt, now, done)
    except SQLAlchemyError:
        log.warning("a batch of due touches failed; starting them one at a time", exc_info=True)
        done = dict.fromkeys(counts, 0)
        with rt.sessions() as session, session.begin():
            more = _start_one_by_one(session, rt, now, done)
    for key, value in done.items():
        counts[key] += value
    return more


def _due_touches(session: Session, now: dt.datetime) -> list[ScheduledTouch]:
    query = (
        select(ScheduledTouch)
        .where(ScheduledTouch.status == TouchStatus.PENDING, ScheduledTouch.due_at <= now)
        .order_by(ScheduledTouch.due_at)
        .limit(BATCH)
    )
    return list(session.scalars(_claim(session, query)).all())


def _start_batch(session: Session, rt: Runtime, now: dt.datetime, counts: dict[str, int]) -> bool:
    touches = _due_touches(session, now)
    if not touches:
        return False
    postgres = session.get_bind().dialect.name == "postgresql"
    # The rows the touches need, a query each (they land in the identity map: session.get finds them).
    enrollments = {
        e.id: e
        for e in session.scalars(select(Enrollment).where(Enrollment.id.in_({t.enrollment_id for t in touches})))
    }
    patient_query = select(Patient).where(Patient.id.in_({e.patient_id for e in enrollments.values()}))
    if postgres:
        # Held to the commit: no other process starts a conversation for these patients meanwhile (inbound
        # texts lock the patient first). One that holds a patient now is answering: its touches wait.
        patient_query = patient_query.with_for_update(skip_locked=True)
    patients = {p.id: p for p in session.scalars(patient_query)}
    programs = {p.id for p in patients.values()}
    list(session.scalars(select(Program).where(Program.id.in_(programs))))
    active = {
        c.patient_id: c
        for c in session.scalars(
            select(Conversation).where(Conversation.patient_id.in_(list(patients)), Conversation.status == "active")
        )
    }
    ids: list[int] = []
    if postgres:
        ids = list(
            session.scalars(
                text("SELECT nextval('conversations_id_seq') FROM generate_series(1, :n)"), {"n": len(touches)}
            )
        )
    batch = _Batch(active=active, history=history_rows(session, list(patients), now), ids=ids)
    session.info[DEFER_FLUSH] = True
    rescheduled: set[int] = set()
    progress = 0
    for touch in touches:
        enrollment = enrollments[touch.enrollment_id]
        if enrollment.patient_id not in patients or enrollment.patient_id in rescheduled:
            continue  # locked by another process, or derived again in this batch: the next pass
        progress += 1
        if _process_touch(session, rt, touch, now, counts, batch) == "rescheduled":
            rescheduled.add(enrollment.patient_id)
    session.flush()
    if batch.refresh:
        session.execute(
            update(Enrollment)
            .where(Enrollment.id.in_(batch.refresh))
            .values(
                next_due_at=select(func.min(ScheduledTouch.due_at))
                .where(ScheduledTouch.enrollment_id == Enrollment.id, ScheduledTouch.status == TouchStatus.PENDING)
                .scalar_subquery()
            )
            .execution_options(synchronize_session=False)
        )
    return progress > 0 and (len(touches) == BATCH or bool(rescheduled))


def _start_one_by_one(session: Session, rt: Runtime, now: dt.datetime, counts: dict[str, int]) -> bool:
    """The careful path: each touch in its own savepoint, every row read when it is needed."""
    touches = _due_touches(session, now)
    rescheduled: set[int] = set()
    for touch in touches:
        if touch.enrollment.patient_id in rescheduled:
            continue  # its pending rows were derived again in this batch; the next pass sees the new ones
        if _process_touch(session, rt, touch, now, counts) == "rescheduled":
            rescheduled.add(touch.enrollment.patient_id)
    return len(touches) == BATCH or bool(rescheduled)


def _process_touch(
    session: Session,
    rt: Runtime,
    touch: ScheduledTouch,
    now: dt.datetime,
    counts: dict[str, int],
    batch: _Batch | None = None,
) -> str | None:
    """Start one due occurrence, or skip / defer it with a reason on the patient's timeline; returns
    ``"rescheduled"`` when the patient's enrollments were derived again instead. ``batch``: the rows
    read for the whole batch (``_start_batch``); None reads them here."""
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
        refresh(enrollment)

    def defer(until: dt.datetime, code: str) -> None:
        touch.due_at = until
        counts["deferred"] += 1
        if touch.outcome != f"deferred:{code}":
            # Once per reason, not at every retry: the row says why and until when.
            touch.outcome = f"deferred:{code}"
            tell("touch_deferred", code, until=until.isoformat())
        refresh(enrollment)

    def refresh(enrollment: Enrollment) -> None:
        if batch is not None:
            batch.refresh.add(enrollment.id)  # one statement for the batch, after its flush
        else:
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
    flow_id = touch.flow_id
    if awaiting_consent(patient, program, touch.flow_id):
        if _welcomed(session, patient.id):
            finish(TouchStatus.SKIPPED, "awaiting_consent")
            return None
        # The program's first contact is the welcome (it asks for consent), whichever touch comes first.
        flow_id = WELCOME_FLOW
    start, end = _window(program)
    if not within_quiet_window(now, patient.timezone, start, end):
        defer(next_allowed(now, patient.timezone, start, end), "quiet_hours")
        return None
    spec = campaign.touch(touch.touch_id) if campaign is not None else None
    if spec is not None and spec.unless == "reached" and _reached(session, enrollment.id):
        finish(TouchStatus.SKIPPED, "already_reached")
        return None
    if spec is not None and spec.education and flow_id != WELCOME_FLOW:  # the welcome goes first
        _send_education_touch(session, rt, touch, spec.education, patient, program, now, defer, finish)
        return None
    # The exemption's caps (1 a day, 3 a week) for an exemption patient, the program's own where it set
    # them (never above the exemption's for an exemption patient): DESIGN §4.2, FCC 15-72.
    limits = limits_for(is_capped(patient, program), program.daily_cap, program.weekly_cap)
    if limits is not None:
        since = now - dt.timedelta(days=8)
        capped = cap_reached(_initiated_since(session, patient.id, since), now, patient.timezone, limits)
        if capped:
            finish(TouchStatus.SKIPPED, capped)
            return None
    if batch is not None and patient.id in batch.started:
        # Two touches of one patient due together: one conversation at a time, the other shortly after.
        defer(now + BUSY_RETRY, "conversation_active")
        return None
    busy = batch.active.get(patient.id) if batch is not None else active_conversation(session, patient.id)
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
    send_key = f"touch:{touch.occurrence_key}"
    variables = _variables(enrollment, spec, touch, patient.timezone)
    try:
        if batch is not None and not by_phone:
            # The patient's row is locked and had no active conversation: no savepoint, no query (StartBatch).
            # NothingToMonitor is raised before anything is written (the flow is resolved first).
            conversation = start_conversation(
                session,
                rt,
                patient,
                flow_id,
                now,
                send_key=send_key,
                variables=variables,
                batch=StartBatch(batch.history.get(patient.id, []), batch.next_id()),
            )
        else:
            begin = start_voice_checkin if by_phone else start_conversation
            try:
                with session.begin_nested():
                    conversation = begin(session, rt, patient, flow_id, now, send_key=send_key, variables=variables)
            except ConversationBusy:
                finish(TouchStatus.SKIPPED, "busy")
                return None
    except NothingToMonitor:
        finish(TouchStatus.SKIPPED, "nothing_to_monitor")
        return None
    if batch is not None:
        batch.started.add(patient.id)
    touch.conversation_id = conversation.id
    finish(TouchStatus.DONE, "started")
    if flow_id != touch.flow_id:
        tell("touch_replaced", "welcome_first")
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


def _welcomed(session: Session, patient_id: int) -> bool:
    """The patient has had the welcome (answered or not): it is sent once, never in place of every touch."""
    found = session.scalar(
        select(Conversation.id)
        .where(Conversation.patient_id == patient_id, Conversation.flow_id == WELCOME_FLOW)
        .limit(1)
    )
    return found is not None


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
