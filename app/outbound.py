"""Outbound messages: an intent row first, then one delivery attempt per job, exactly once.

Why the row first: Twilio's create call has no idempotency key. The row (with a unique ``send_key``)
is committed before the provider is called; a job that finds the row already ``sending`` (a worker
died mid-call) asks the provider whether it took the message before trying again.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from app.channels.base import OutboundText, SendError
from app.channels.rate_limit import sender_key
from app.channels.segments import segment_info
from app.db import after_commit
from app.models import Message, Patient
from app.phones import mask
from app.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
#: A message left in ``sending`` this long had its worker die; reconcile it.
SENDING_STUCK_AFTER = dt.timedelta(minutes=2)
OPT_OUT_CODES = {21610}
BAD_NUMBER_CODES = {21211, 21614}
#: Kinds that go out even to an opted-out number: the one confirmation of the opt-out itself.
CONSENT_KINDS = {"consent"}
#: Prefix of an error code when the provider may have taken the text anyway (look before resending).
UNCONFIRMED = "unconfirmed:"


def backoff(attempt: int, *, base: float = 30.0, cap: float = 3600.0, rng: random.Random | None = None) -> dt.timedelta:
    """Exponential backoff with full jitter: 30 s, 60 s, 120 s … capped, randomised so retries spread."""
    rng = rng or random.Random()
    ceiling = min(cap, base * 2 ** min(max(0, attempt - 1), 32))
    return dt.timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


def queue_text(
    session: Session,
    rt: Runtime,
    *,
    to: str,
    body: str,
    kind: str,
    patient: Patient | None,
    conversation_id: int | None = None,
    flow_id: str | None = None,
    send_key: str | None = None,
    now: dt.datetime | None = None,
) -> Message:
    """Record an outbound text and enqueue its delivery once the transaction commits."""
    info = segment_info(body)
    message = Message(
        patient_id=patient.id if patient else None,
        conversation_id=conversation_id,
        direction="outbound",
        channel=rt.channel.name,
        kind=kind,
        body=body[:1600],
        status="queued",
        to_number=to,
        segments=info.segments,
        encoding=info.encoding,
        flow_id=flow_id,
        send_key=send_key,
        created_at=now or rt.now(),
    )
    session.add(message)
    session.flush()
    if message.send_key is None:
        message.send_key = f"msg:{message.id}"
    enqueue_delivery(session, rt, message.id)
    return message


def enqueue_delivery(session: Session, rt: Runtime, message_id: int) -> None:
    from app import tasks

    after_commit(session, lambda: rt.jobs.enqueue(tasks.send_message, message_id, job_id=f"send-{message_id}"))


def _outbound_text(rt: Runtime, message: Message) -> OutboundText:
    callback = f"{rt.settings.public_base_url}/twilio/sms/status?mid={message.id}"
    return OutboundText(
        message_id=message.id,
        to=message.to_number or "",
        body=message.body,
        send_key=message.send_key or f"msg:{message.id}",
        status_callback=callback,
        attempt_started_at=message.updated_at,
    )


def _already_taken(rt: Runtime, message: Message) -> bool:
    """Did the provider take this text on an earlier attempt we never heard back from?"""
    candidates = rt.channel.find_sent(_outbound_text(rt, message))
    if not candidates:
        return False
    session = object_session(message)
    assert session is not None
    # Two identical texts (two re-prompts, say) may both be there: a SID already ours belongs to the other.
    claimed = set(
        session.scalars(
            select(Message.provider_sid).where(
                Message.provider_sid.in_([c.provider_sid for c in candidates]), Message.id != message.id
            )
        ).all()
    )
    found = next((c for c in reversed(candidates) if c.provider_sid not in claimed), None)
    if found is None:
        return False
    _mark_sent(message, found.provider_sid, found.status, found.segments, rt.now())
    log.info("reconciled message id=%s sid=%s", message.id, found.provider_sid)
    return True


def deliver(rt: Runtime, message_id: int) -> str:
    """One delivery attempt. Returns what happened (for logs and tests); safe to call twice at once."""
    with rt.sessions() as session, session.begin():
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.direction != "outbound":
            return "missing"
        if message.status == "sending":
            if rt.now() - message.updated_at < SENDING_STUCK_AFTER:
                return "in-flight"
            # The worker that began this attempt died: it may or may not have reached the provider.
            if _already_taken(rt, message):
                return "reconciled"
            message.status = "queued"
        if message.status != "queued":
            return "already-" + message.status
        if message.next_attempt_at and message.next_attempt_at > rt.now():
            return "not-yet"
        if (message.error_code or "").startswith(UNCONFIRMED) and _already_taken(rt, message):
            return "reconciled"
        patient = session.get(Patient, message.patient_id) if message.patient_id else None
        if patient is not None and not patient.reachable and message.kind not in CONSENT_KINDS:
            message.status = "cancelled"
            message.error_code = "opted_out" if patient.opted_out else "unreachable"
            return "cancelled"
        slot = rt.rate_limiter.reserve(sender_key(rt.settings), message.segments or 1)
        if not slot.reserved:
            # The sender's schedule is full for now: come back when there is room (nothing is dropped).
            message.next_attempt_at = rt.now() + dt.timedelta(seconds=slot.wait_seconds)
            _enqueue_retry(session, rt, message)
            return "throttled"
        message.status = "sending"
        message.attempts += 1
        message.updated_at = rt.now()  # when this attempt began: a dead worker shows as stuck from here
        outbound = _outbound_text(rt, message)
    if slot.wait_seconds > 0:
        time.sleep(slot.wait_seconds)
    try:
        result = rt.channel.send(outbound)
    except SendError as exc:
        return _record_failure(rt, message_id, exc)
    with rt.sessions() as session, session.begin():
        message = session.get(Message, message_id, with_for_update=True)
        assert message is not None
        _mark_sent(message, result.provider_sid, result.status, result.segments, rt.now())
    log.info("sent message id=%s sid=%s to=%s", message_id, result.provider_sid, mask(outbound.to))
    return "sent"


def deliver_many(rt: Runtime, message_ids: Sequence[int]) -> dict[str, int]:
    """Deliver a batch concurrently: each send mostly waits on the provider's API, so threads overlap it."""
    outcomes: dict[str, int] = {}
    workers = max(1, min(rt.settings.send_concurrency, len(message_ids)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
        for outcome in pool.map(lambda mid: _deliver_logged(rt, mid), message_ids):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _deliver_logged(rt: Runtime, message_id: int) -> str:
    try:
        return deliver(rt, message_id)
    except Exception:
        # The row stays queued or sending in SQL; the sweeper brings it back.
        log.exception("delivery crashed message id=%s", message_id)
        return "error"


def _enqueue_retry(session: Session, rt: Runtime, message: Message) -> None:
    from app import tasks

    when = message.next_attempt_at
    message_id = message.id
    assert when is not None
    after_commit(
        session,
        lambda: rt.jobs.enqueue_at(when, tasks.send_message, message_id, job_id=f"send-{message_id}-{when:%s}"),
    )


def _mark_sent(message: Message, sid: str, status: str, segments: int | None, now: dt.datetime) -> None:
    from app.message_status import advance

    message.provider_sid = sid
    # A status callback may have got here first and moved the message on; never move it back.
    message.status = advance("sent" if message.status in {"queued", "sending"} else message.status, status)
    message.sent_at = now
    message.next_attempt_at = None
    if segments:
        message.segments = segments


def _record_failure(rt: Runtime, message_id: int, exc: SendError) -> str:
    with rt.sessions() as session, session.begin():
        message = session.get(Message, message_id, with_for_update=True)
        assert message is not None
        code = str(exc.code or exc.http_status or "network")
        message.error_code = f"{UNCONFIRMED}{code}" if exc.ambiguous else code
        patient = session.get(Patient, message.patient_id) if message.patient_id else None
        if exc.code in OPT_OUT_CODES:
            message.status = "failed"
            if patient is not None:
                from app.consent import opt_out

                opt_out(session, rt, patient, now=rt.now(), confirm=False)
            log.warning("send refused: recipient opted out message id=%s", message_id)
            return "opted-out"
        if exc.code in BAD_NUMBER_CODES:
            message.status = "failed"
            if patient is not None:
                patient.phone_invalid = True
            log.warning("send refused: bad number message id=%s code=%s", message_id, exc.code)
            return "bad-number"
        if exc.retryable and message.attempts < MAX_ATTEMPTS:
            message.status = "queued"
            message.next_attempt_at = rt.now() + backoff(message.attempts)
            _enqueue_retry(session, rt, message)
            log.warning(
                "send failed, will retry message id=%s attempt=%s code=%s",
                message_id,
                message.attempts,
                message.error_code,
            )
            return "retry"
        message.status = "failed"
        message.needs_review = True
        log.error("send failed for good message id=%s code=%s", message_id, message.error_code)
        return "failed"


def due_for_retry(session: Session, now: dt.datetime, limit: int = 1000) -> list[int]:
    """Queued messages whose time has come, and messages stuck in ``sending`` (a dead worker)."""
    queued = session.scalars(
        select(Message.id)
        .where(
            Message.direction == "outbound",
            Message.status == "queued",
            (Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= now),
        )
        .order_by(Message.id)
        .limit(limit)
    ).all()
    stuck = session.scalars(
        select(Message.id)
        .where(
            Message.direction == "outbound",
            Message.status == "sending",
            Message.updated_at <= now - SENDING_STUCK_AFTER,
        )
        .limit(limit)
    ).all()
    return [*queued, *stuck]
