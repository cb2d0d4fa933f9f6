"""A one-off text a care manager writes to a patient from the patient page.

Rules (``refusal``, pure): never to an opted-out patient (STOP is binding; a reply too), never to a number
that cannot take texts, not empty and at most ``MAX_LENGTH`` characters, and only inside the program's
outreach window in the *patient's* time zone (8:00-21:00 at the widest, 47 CFR 64.1200(c)(1)) unless it is
a reply: the patient has an active text conversation, or texted us within ``REPLY_WINDOW``.

Exactly once: the page gives each form a random key; the text's ``send_key`` is built from it, so a
double-click or a resubmitted form finds the first text instead of queueing a second one
(``send_staff_text``), and delivery goes through the outbound path's intent row and claim
(app/messaging/outbound.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.messaging.outbound import queue_text
from app.models import Conversation, Message, Patient
from app.runtime import Runtime
from app.scheduling.calendar import within_quiet_window

MAX_LENGTH = 640
#: A text from the patient this recent makes ours a reply (the conversation is still open for them).
REPLY_WINDOW = dt.timedelta(hours=24)
KIND = "staff"
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class StaffTextResult:
    message: Message
    #: True when the key had already been used: nothing new was queued.
    duplicate: bool


class TextRefused(ValueError):
    """``code``: opted_out | cannot_text | empty | too_long | quiet_hours | bad_key."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def outreach_window(start_hour: int, end_hour: int) -> tuple[int, int]:
    """The program's hours, never wider than 8:00-21:00."""
    return max(8, start_hour), min(21, end_hour)


def refusal(
    *,
    opted_out: bool,
    can_text: bool,
    body: str,
    is_reply: bool,
    now: dt.datetime,
    tz: str,
    start_hour: int,
    end_hour: int,
) -> str | None:
    """Why the text may not go now (a code of :class:`TextRefused`), or None."""
    if opted_out:
        return "opted_out"
    if not can_text:
        return "cannot_text"
    if not body.strip():
        return "empty"
    if len(body) > MAX_LENGTH:
        return "too_long"
    start, end = outreach_window(start_hour, end_hour)
    if not is_reply and not within_quiet_window(now, tz, start, end):
        return "quiet_hours"
    return None


def open_conversation_id(session: Session, patient_id: int, now: dt.datetime) -> tuple[bool, int | None]:
    """``(is_reply, conversation id)``: the patient's active text conversation (its id), or a text from them
    within ``REPLY_WINDOW`` (the conversation it belonged to, if any)."""
    active = session.scalars(
        select(Conversation.id)
        .where(Conversation.patient_id == patient_id, Conversation.status == "active", Conversation.channel == "sms")
        .order_by(Conversation.id.desc())
    ).first()
    if active is not None:
        return True, active
    recent = session.execute(
        select(Message.id, Message.conversation_id)
        .where(
            Message.patient_id == patient_id,
            Message.direction == "inbound",
            Message.channel != "voice",
            Message.created_at >= now - REPLY_WINDOW,
        )
        .order_by(Message.created_at.desc())
        .limit(1)
    ).first()
    if recent is not None:
        return True, recent[1]
    return False, None


def send_staff_text(
    session: Session, rt: Runtime, patient: Patient, body: str, form_key: str, now: dt.datetime
) -> StaffTextResult:
    """Queue the text (delivered after the commit) or return the one already queued with ``form_key``.
    Raises TextRefused."""
    if not _KEY.match(form_key):
        raise TextRefused("bad_key")
    send_key = f"staff:{patient.id}:{form_key}"
    existing = session.scalars(select(Message).where(Message.send_key == send_key)).first()
    if existing is not None:
        return StaffTextResult(existing, True)
    is_reply, conversation_id = open_conversation_id(session, patient.id, now)
    program = patient.program
    code = refusal(
        opted_out=patient.opted_out,
        can_text=patient.sms_capable and not patient.phone_invalid,
        body=body,
        is_reply=is_reply,
        now=now,
        tz=patient.timezone,
        start_hour=program.quiet_start_hour,
        end_hour=program.quiet_end_hour,
    )
    if code is not None:
        raise TextRefused(code)
    message = queue_text(
        session,
        rt,
        to=patient.phone,
        body=body.strip(),
        kind=KIND,
        patient=patient,
        conversation_id=conversation_id,
        send_key=send_key,
        now=now,
    )
    return StaffTextResult(message, False)
