"""Message status callbacks: arrive late, twice and out of order; a status only ever moves forward."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Message, Patient

log = logging.getLogger(__name__)

RANK = {
    "queued": 0,
    "accepted": 0,
    "scheduled": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
}
TERMINAL = {"delivered", "read", "undelivered", "failed", "canceled"}
#: A text that never arrived is never "read" later, whatever arrives out of order.
FAILED = {"undelivered", "failed", "canceled"}


def advance(current: str, reported: str) -> str:
    """The status to keep: the reported one if it moves forward, else the current one."""
    if reported not in RANK:
        return current
    if current in FAILED or (current in TERMINAL and reported != "read"):
        return current
    return reported if RANK[reported] > RANK.get(current, 0) else current


def apply_status(
    session: Session, *, sid: str, status: str, error_code: str | None, message_id: int | None, now: dt.datetime
) -> bool:
    # Outbound only: a callback naming an inbound text's SID must not touch it (its status is the
    # store-first pipeline's: pending, retry, failed, received).
    message = session.scalars(
        select(Message).where(Message.provider_sid == sid, Message.direction == "outbound").with_for_update()
    ).first()
    if message is None and message_id is not None:
        # The callback beat our own commit of the SID (or the worker died before it): match by intent id.
        message = session.get(Message, message_id, with_for_update=True)
        if message is not None and message.direction != "outbound":
            message = None
        # A SID another row holds (an inbound text's, say) is not this message's: never adopt it.
        if (
            message is not None
            and message.provider_sid is None
            and session.scalar(select(Message.id).where(Message.provider_sid == sid)) is not None
        ):
            log.warning("status callback names a SID held by another message; ignored mid=%s", message_id)
            return False
        if message is not None and message.provider_sid is None:
            message.provider_sid = sid
            message.sent_at = message.sent_at or now
    if message is None:
        log.warning("status callback for unknown message sid=%s", sid)
        return False
    if message.status in {"queued", "sending"} and status in RANK:
        message.status = "sent"
    message.status = advance(message.status, status)
    if error_code and status in {"failed", "undelivered"}:
        message.error_code = error_code
        message.needs_review = True
        if error_code == "21610" and message.patient_id:
            patient = session.get(Patient, message.patient_id)
            if patient is not None and not patient.opted_out:
                from app.messaging.consent import opt_out

                opt_out(session, None, patient, now=now, confirm=False)
    return True
