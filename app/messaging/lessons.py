"""Education lessons to a patient, part by part (issue 12 item 5): what is sent, when, and what was read.

A lesson (:class:`~app.models.LessonDelivery`) starts from an education touch of a campaign (the sweeper),
or from a trigger after a check-in (``content/education/triggers.yaml``: a low sugar → the low-blood-sugar
lesson). Its first part goes out inside texting hours (education is never urgent: outside them it waits,
``status = waiting``, for the window's start, and the tick sends it); each MORE / MÁS the patient sends is a
reply, so the next part goes at once. The timeline shows ``education_sent`` (part n of N) and
``education_read`` (a MORE: the patient read part n and asked for the next).

Once per occurrence or per check-in and topic (``source_key`` is unique); each part has its own send key, so
a retried job never texts a part twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.flows.lessons import part_text, split_parts, triggered_topics
from app.messaging.outbound import queue_text
from app.models import (
    Conversation,
    EscalationTrigger,
    LessonDelivery,
    Patient,
    Program,
    TimelineEvent,
)
from app.runtime import Runtime
from app.scheduling.calendar import next_allowed, within_quiet_window

log = logging.getLogger(__name__)

WAITING = "waiting"
OPEN = "open"
DONE = "done"


def texting_window(program: Program) -> tuple[int, int]:
    """The program's texting hours, inside 08:00-21:00 local (47 CFR 64.1200(c)(1)); (start, end) hours."""
    return max(8, program.quiet_start_hour), min(21, program.quiet_end_hour)


def _timeline(session: Session, patient_id: int, code: str, now: dt.datetime, lesson: LessonDelivery) -> None:
    session.add(
        TimelineEvent(
            patient_id=patient_id,
            kind="education",
            code=code,
            detail={
                "topic": lesson.topic,
                "part": lesson.parts_sent,
                "parts": lesson.parts_total,
                "cause": lesson.cause,
                "lesson_id": lesson.id,
            },
            at=now,
        )
    )


def start_lesson(
    session: Session,
    rt: Runtime,
    patient: Patient,
    topic: str,
    now: dt.datetime,
    *,
    cause: str,
    source_key: str,
    conversation_id: int | None = None,
    inline: list[str] | None = None,
) -> LessonDelivery | None:
    """Start sending ``topic`` to the patient (in their language, English where the topic has no such text):
    its first part now inside texting hours, else at the window's start (``status = waiting``).

    ``cause``: ``schedule`` | ``trigger``; ``source_key``: what makes it once (an occurrence, a check-in and
    topic). ``inline``: a sent first part is appended here instead of texted on its own (the caller puts it
    in its own text, which then arrives in order). Returns the lesson (an existing one for the same key), or
    None for an unknown topic or a patient who cannot be texted (opted out, invalid number, not SMS-capable)."""
    existing = session.scalars(select(LessonDelivery).where(LessonDelivery.source_key == source_key)).first()
    if existing is not None:
        return existing
    text = rt.content.lesson(topic, patient.language)
    if text is None or not patient.reachable or not patient.sms_capable:
        return None
    lesson = LessonDelivery(
        patient_id=patient.id,
        topic=topic,
        language=text.language,
        cause=cause,
        source_key=source_key,
        conversation_id=conversation_id,
        parts_total=len(split_parts(text.body)),
        parts_sent=0,
        status=WAITING,
        due_at=now,
        created_at=now,
    )
    session.add(lesson)
    session.flush()
    program = session.get(Program, patient.program_id)
    assert program is not None
    start, end = texting_window(program)
    if within_quiet_window(now, patient.timezone, start, end):
        _send_part(session, rt, patient, lesson, now, inline=inline)
    else:
        lesson.due_at = next_allowed(now, patient.timezone, start, end)
        session.add(
            TimelineEvent(
                patient_id=patient.id,
                kind="education",
                code="quiet_hours",
                detail={"topic": topic, "until": lesson.due_at.isoformat(), "lesson_id": lesson.id},
                at=now,
            )
        )
    return lesson


def _send_part(
    session: Session,
    rt: Runtime,
    patient: Patient,
    lesson: LessonDelivery,
    now: dt.datetime,
    *,
    inline: list[str] | None = None,
) -> None:
    text = rt.content.lesson(lesson.topic, lesson.language)
    assert text is not None
    parts = split_parts(text.body)
    index = lesson.parts_sent
    if index >= len(parts):
        lesson.status = DONE
        return
    body = part_text(text.title, parts, index, lesson.language)
    if inline is not None:
        inline.append(body)
    else:
        queue_text(
            session,
            rt,
            to=patient.phone,
            body=body,
            kind="education",
            patient=patient,
            flow_id=f"education:{lesson.topic}"[:64],
            send_key=f"lesson:{lesson.id}:{index + 1}",
            now=now,
        )
    lesson.parts_sent = index + 1
    lesson.parts_total = len(parts)
    lesson.last_sent_at = now
    lesson.due_at = None
    lesson.status = OPEN if lesson.parts_sent < len(parts) else DONE
    _timeline(session, patient.id, "education_sent", now, lesson)


def open_lesson(session: Session, patient_id: int) -> LessonDelivery | None:
    """The patient's most recent lesson with parts left to ask for (None: none)."""
    return session.scalars(
        select(LessonDelivery)
        .where(LessonDelivery.patient_id == patient_id, LessonDelivery.status == OPEN)
        .order_by(LessonDelivery.last_sent_at.desc(), LessonDelivery.id.desc())
        .limit(1)
    ).first()


def send_next_part(session: Session, rt: Runtime, patient: Patient, now: dt.datetime) -> bool:
    """The patient replied MORE: record that they read the last part, send the next one at once (a reply,
    not outreach). Returns False when no lesson has parts left (the caller treats the text as any other)."""
    lesson = open_lesson(session, patient.id)
    if lesson is None:
        return False
    _timeline(session, patient.id, "education_read", now, lesson)
    _send_part(session, rt, patient, lesson, now)
    return True


def lessons_after_check_in(
    session: Session, rt: Runtime, patient: Patient, conversation: Conversation, now: dt.datetime
) -> list[str]:
    """The lessons a finished check-in triggers: its flow's rules that fired (escalation triggers of this
    conversation) matched against ``content/education/triggers.yaml``. Returns the first parts to say now,
    after the check-in's last lines and in the same text (separate texts may arrive out of order); outside
    texting hours they wait for the morning and nothing is returned."""
    reasons: Sequence[str] = session.scalars(
        select(EscalationTrigger.reason).where(EscalationTrigger.conversation_id == conversation.id)
    ).all()
    if not reasons:
        return []
    lines: list[str] = []
    for topic in triggered_topics(rt.content.education_triggers, conversation.flow_id, reasons):
        start_lesson(
            session,
            rt,
            patient,
            topic,
            now,
            cause="trigger",
            source_key=f"trigger:{conversation.id}:{topic}",
            conversation_id=conversation.id,
            inline=lines,
        )
    return lines


def send_waiting_lessons(session: Session, rt: Runtime, now: dt.datetime, limit: int = 200) -> int:
    """First parts that waited for texting hours and are due now (the tick); returns how many went out."""
    waiting = session.scalars(
        select(LessonDelivery)
        .where(LessonDelivery.status == WAITING, LessonDelivery.due_at <= now)
        .order_by(LessonDelivery.due_at)
        .limit(limit)
    ).all()
    sent = 0
    for lesson in waiting:
        patient = session.get(Patient, lesson.patient_id)
        assert patient is not None
        if not patient.reachable or not patient.sms_capable:
            lesson.status = DONE
            lesson.due_at = None
            continue
        program = session.get(Program, patient.program_id)
        assert program is not None
        start, end = texting_window(program)
        if not within_quiet_window(now, patient.timezone, start, end):
            lesson.due_at = next_allowed(now, patient.timezone, start, end)
            continue
        _send_part(session, rt, patient, lesson, now)
        sent += 1
    return sent
