"""Outbound messages: an intent row first, then one delivery attempt per job, exactly once.

Why the row first: Twilio's create call has no idempotency key. The row (with a unique ``send_key``)
is committed before the provider is called; a job that finds the row already ``sending`` (a worker
died mid-call) asks the provider whether it took the message before trying again.

A claim (status ``sending``) is a lease held by one worker, fenced by ``attempts``: every claim raises
it and only the claimant ever lowers it again, so ``(id, attempts)`` names one claim. Right before each
create call the claimant re-checks its claim and renews the lease (``updated_at``) of every text it
still holds in that batch (``_renew``); a text whose claim is gone (the sweeper handed it to another
worker after ``SENDING_STUCK_AFTER``) is not sent. Every later write of the claimant (sent, failed,
throttled, released) is fenced the same way, and none of them moves back a status that a provider
callback set (delivered, failed …).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Table, bindparam, case, func, or_, select, tuple_, update
from sqlalchemy.orm import Session, object_session

from app.channels.base import OutboundText, SendError, SendResult
from app.channels.rate_limit import Slot, sender_key
from app.channels.segments import segment_info
from app.db import after_commit
from app.models import Message, Patient
from app.patients.phones import mask
from app.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
#: A message left in ``sending`` this long had its worker die; reconcile it. The lease must outlast one
#: create call (client timeout, 10 s by default, plus a rate-limit wait of at most 5 s): it is renewed
#: right before each call.
SENDING_STUCK_AFTER = dt.timedelta(minutes=2)
OPT_OUT_CODES = {21610}
BAD_NUMBER_CODES = {21211, 21614}
#: The number cannot take texts (not a mobile number): calls still reach it.
SMS_INCAPABLE_CODES = {21614}
#: Kinds that go out even to an opted-out number: the one confirmation of the opt-out itself.
CONSENT_KINDS = {"consent"}
#: Prefix of an error code when the provider may have taken the text anyway (look before resending).
UNCONFIRMED = "unconfirmed:"
#: Texts one send job claims and sends at once (its own, topped up with other due texts).
SEND_BATCH = 50
#: The send jobs, by name (app/tasks.py): a service enqueues by name and never imports the job module.
SEND_BATCH_JOB = "app.tasks.send_messages"
SEND_JOB = "app.tasks.send_message"
#: A check-in text refused with 21614 goes on by phone (app/messaging/calls.py ``fall_back_to_voice``).
FALLBACK_JOB = "app.tasks.fall_back_to_voice"
#: ``session.info`` key: ``queue_text`` leaves its INSERT to the next flush (app/messaging/inbound.py's batch).
DEFER_FLUSH = "outbound.defer_flush"


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
    """Record an outbound text and enqueue its delivery once the transaction commits. The row is flushed
    (its ``id`` is set on return), except in a session marked ``DEFER_FLUSH`` (an inbound batch): there
    the INSERT waits for the transaction's one flush, with every other reply of the batch."""
    info = segment_info(body)
    program = patient.program if patient is not None else None
    message = Message(
        # Texts to a patient go out from the patient's program's own sender, when it has one.
        sender=(program.messaging_service_sid or program.sender_number) if program is not None else None,
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
        # A key known before the INSERT (no UPDATE afterwards): the caller's, or a fresh random one.
        send_key=send_key or f"msg:{uuid.uuid4().hex}",
        created_at=now or rt.now(),
    )
    session.add(message)
    if not session.info.get(DEFER_FLUSH):
        session.flush()
    enqueue_delivery(session, rt, message)
    return message


def enqueue_delivery(session: Session, rt: Runtime, message: Message) -> None:
    """Send once the transaction commits. All texts of one transaction go in one job (a tick that starts
    200 check-ins makes a few jobs, not 200).

    The job is enqueued after the commit, when every row has its id (also those ``DEFER_FLUSH`` left
    unflushed)."""
    pending: list[Message] | None = session.info.get("send_rows")
    if pending is None:
        pending = session.info["send_rows"] = []

        def _enqueue() -> None:
            rows: list[Message] = session.info.pop("send_rows", [])
            enqueue_sends(rt, [row.id for row in rows if row.id is not None], "send")

        after_commit(session, _enqueue)
    pending.append(message)


def enqueue_sends(rt: Runtime, message_ids: Sequence[int], tag: str) -> None:
    """One send job per SEND_BATCH texts (each job delivers its batch concurrently)."""
    for start in range(0, len(message_ids), SEND_BATCH):
        batch = list(message_ids[start : start + SEND_BATCH])
        rt.jobs.enqueue(SEND_BATCH_JOB, batch, job_id=f"{tag}-{batch[0]}-{len(batch)}")


def status_callback_url(rt: Runtime, message_id: int) -> str:
    return f"{rt.settings.public_base_url}/twilio/sms/status?mid={message_id}"


def _outbound_text(rt: Runtime, message: Message) -> OutboundText:
    return OutboundText(
        message_id=message.id,
        to=message.to_number or "",
        body=message.body,
        send_key=message.send_key or f"msg:{message.id}",
        status_callback=status_callback_url(rt, message.id),
        attempt_started_at=message.updated_at,
        sender=message.sender,
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
        if patient is not None and not patient.sms_capable and message.to_number == patient.phone:
            message.status = "cancelled"
            message.error_code = "no_sms"
            return "cancelled"
        slot = rt.rate_limiter.reserve(message.sender or sender_key(rt.settings), message.segments or 1)
        if not slot.reserved:
            # The sender's schedule is full for now: come back when there is room (nothing is dropped).
            message.next_attempt_at = rt.now() + dt.timedelta(seconds=slot.wait_seconds)
            _enqueue_retry(session, rt, message)
            return "throttled"
        message.status = "sending"
        message.attempts += 1
        message.updated_at = rt.now()  # when this attempt began: a dead worker shows as stuck from here
        attempt = message.attempts
        outbound = _outbound_text(rt, message)
    if slot.wait_seconds > 0:
        time.sleep(slot.wait_seconds)
    try:
        result = rt.channel.send(outbound)
    except SendError as exc:
        return _record_failure(rt, message_id, exc, attempt=attempt)
    with rt.sessions() as session, session.begin():
        message = session.get(Message, message_id, with_for_update=True)
        assert message is not None
        _mark_sent(message, result.provider_sid, result.status, result.segments, rt.now())
    log.info("sent message id=%s sid=%s to=%s", message_id, result.provider_sid, mask(outbound.to))
    return "sent"


@dataclass(frozen=True)
class _Claimed:
    id: int
    text: OutboundText
    segments: int
    #: The row's ``attempts`` after this claim: with ``id``, the claim's fencing token.
    attempt: int


@dataclass(frozen=True)
class _TakenOver:
    """Not sent by this worker: its claim was gone at the re-check (another worker owns the text now)."""


TAKEN_OVER = _TakenOver()
Outcome = SendResult | SendError | Slot | _TakenOver | None


def _claim(rt: Runtime, message_ids: Sequence[int], fill_to: int) -> list[_Claimed]:
    """Move these texts (and, up to ``fill_to``, other due ones) from queued to sending in one statement.

    Only the plain case is claimed here: due, no unconfirmed earlier attempt, a reachable patient (or a
    staff page / consent reply). Anything else goes through ``deliver`` one by one. Other workers skip
    rows this one has locked, so no text is claimed twice.
    """
    now = rt.now()
    reachable = select(Patient.id).where(
        Patient.opted_out.is_(False),
        Patient.phone_invalid.is_(False),
        Patient.status == "active",
        Patient.sms_capable.is_(True),
    )
    wanted = list(message_ids)
    due = (
        select(Message.id)
        .where(
            Message.direction == "outbound",
            Message.status == "queued",
            or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
            or_(Message.error_code.is_(None), Message.error_code.not_like(f"{UNCONFIRMED}%")),
            or_(Message.patient_id.is_(None), Message.kind.in_(CONSENT_KINDS), Message.patient_id.in_(reachable)),
        )
        .order_by(Message.id.in_(wanted).desc(), Message.id)
        .limit(max(fill_to, len(wanted)))
    )
    with rt.sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = session.execute(
            update(Message)
            .where(Message.id.in_(due.scalar_subquery()))
            .values(status="sending", attempts=Message.attempts + 1, updated_at=now)
            .returning(
                Message.id,
                Message.to_number,
                Message.body,
                Message.send_key,
                Message.segments,
                Message.attempts,
                Message.sender,
            )
            .execution_options(synchronize_session=False)
        ).all()
    return [
        _Claimed(
            id=row.id,
            text=OutboundText(
                message_id=row.id,
                to=row.to_number or "",
                body=row.body,
                send_key=row.send_key or f"msg:{row.id}",
                status_callback=status_callback_url(rt, row.id),
                attempt_started_at=now,
                sender=row.sender,
            ),
            segments=row.segments or 1,
            attempt=row.attempts,
        )
        for row in rows
    ]


def _renew(rt: Runtime, held: Sequence[_Claimed]) -> set[int]:
    """Re-check and extend this worker's claims in one statement; returns the ids still ours.

    A claim is still ours while the row is ``sending`` with the ``attempts`` our claim set. Renewing
    moves ``updated_at`` (the lease) to now, so the sweeper sees a live worker, not a stuck text.
    """
    if not held:
        return set()
    with rt.sessions() as session, session.begin():
        rows = session.execute(
            update(Message)
            .where(
                Message.status == "sending",
                tuple_(Message.id, Message.attempts).in_([(c.id, c.attempt) for c in held]),
            )
            .values(updated_at=rt.now())
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        ).all()
    return {row.id for row in rows}


def _send_claimed(rt: Runtime, claimed: _Claimed) -> SendResult | SendError | Slot:
    """The provider call only: no database work in the sending threads."""
    slot = rt.rate_limiter.reserve(claimed.text.sender or sender_key(rt.settings), claimed.segments)
    if not slot.reserved:
        return slot
    if slot.wait_seconds > 0:
        time.sleep(slot.wait_seconds)
    try:
        return rt.channel.send(claimed.text)
    except SendError as exc:
        return exc


def deliver_many(rt: Runtime, message_ids: Sequence[int], *, fill_to: int | None = None) -> dict[str, int]:
    """Deliver texts concurrently, filling the batch with other due texts so any send job drains the queue.

    One statement claims the batch, threads overlap the provider's ~200 ms per call, and one statement
    records the results; texts that need care (a crashed attempt, an opt-out, a throttled sender) take the
    one-by-one path in ``deliver``.
    """
    outcomes: dict[str, int] = {}

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    claimed = _claim(rt, message_ids, SEND_BATCH if fill_to is None else fill_to)
    leftovers = sorted(set(message_ids) - {c.id for c in claimed})
    # Texts to one number go one after another, in order: they arrive in the order they were written,
    # and after a refusal (opted out, bad number) the rest are not sent at all.
    by_recipient: dict[str, list[_Claimed]] = {}
    for c in claimed:
        by_recipient.setdefault(c.text.to, []).append(c)
    workers = max(1, min(rt.settings.send_concurrency, len(by_recipient) + len(leftovers)))
    sent_by_id: dict[int, Outcome] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
        for group_results in pool.map(lambda group: _send_group(rt, group), by_recipient.values()):
            sent_by_id.update(group_results)
        for outcome in pool.map(lambda mid: _deliver_logged(rt, mid), leftovers):
            count(outcome)
    results = [sent_by_id[c.id] for c in claimed]
    sent = [(c, r) for c, r in zip(claimed, results, strict=True) if isinstance(r, SendResult)]
    if sent:
        _record_sent(rt, sent)
        for c, r in sent:
            log.info("sent message id=%s sid=%s to=%s", c.id, r.provider_sid, mask(c.text.to))
    for c, result in zip(claimed, results, strict=True):
        if isinstance(result, SendResult):
            count("sent")
        elif isinstance(result, SendError):
            count(_record_failure(rt, c.id, result, attempt=c.attempt))
        elif isinstance(result, Slot):
            count(_throttle(rt, c, result.wait_seconds))
        elif isinstance(result, _TakenOver):
            count("taken-over")
        else:
            # Not attempted after the recipient refused: back to the one-by-one path (opted out → cancelled).
            if _release(rt, c):
                count(_deliver_logged(rt, c.id))
            else:
                count("taken-over")
    return outcomes


def _send_group(rt: Runtime, group: Sequence[_Claimed]) -> dict[int, Outcome]:
    """One recipient's texts in order. Before each create call the claims still waiting are re-checked
    and renewed together, so a slow group keeps its texts and a text taken over is never sent here."""
    results: dict[int, Outcome] = {}
    refused = False
    for position, claimed in enumerate(group):
        if refused:
            results[claimed.id] = None
            continue
        if claimed.id not in _renew(rt, group[position:]):
            results[claimed.id] = TAKEN_OVER
            continue
        result = _send_claimed(rt, claimed)
        results[claimed.id] = result
        refused = isinstance(result, SendError) and (result.code in OPT_OUT_CODES | BAD_NUMBER_CODES)
    return results


def _holds(message: Message | None, attempt: int | None) -> bool:
    """Is this row still in the claim this worker made (``sending``, with the attempts it set)?"""
    return message is not None and message.status == "sending" and (attempt is None or message.attempts == attempt)


def _release(rt: Runtime, claimed: _Claimed) -> bool:
    """Give back a claim that was not attempted; False when it was no longer ours to give."""
    with rt.sessions() as session, session.begin():
        message = session.get(Message, claimed.id, with_for_update=True)
        if message is None or not _holds(message, claimed.attempt):
            return False
        message.status = "queued"
        message.attempts = max(0, message.attempts - 1)
        return True


def _record_sent(rt: Runtime, sent: Sequence[tuple[_Claimed, SendResult]]) -> None:
    table = Message.__table__
    assert isinstance(table, Table)
    statement = (
        table.update()
        .where(table.c.id == bindparam("b_id"))
        .values(
            # A status callback may have got here first: keep what it said, never move it back.
            # (== / or, not IN: an expanding IN cannot be used in an executemany)
            status=case(
                (or_(table.c.status == "queued", table.c.status == "sending"), bindparam("b_status")),
                else_=table.c.status,
            ),
            provider_sid=func.coalesce(table.c.provider_sid, bindparam("b_sid")),
            sent_at=bindparam("b_now"),
            next_attempt_at=None,
            segments=func.coalesce(bindparam("b_segments"), table.c.segments),
            updated_at=bindparam("b_now"),
        )
    )
    now = rt.now()
    rows = [
        {
            "b_id": c.id,
            "b_status": r.status if r.status in {"sent", "delivered"} else "sent",
            "b_sid": r.provider_sid,
            "b_now": now,
            "b_segments": r.segments,
        }
        for c, r in sent
    ]
    with rt.sessions() as session, session.begin():
        session.connection().execute(statement, rows)


def _throttle(rt: Runtime, claimed: _Claimed, wait_seconds: float) -> str:
    with rt.sessions() as session, session.begin():
        message = session.get(Message, claimed.id, with_for_update=True)
        if message is None or not _holds(message, claimed.attempt):
            return "taken-over"
        # Not sent, so not an attempt: back to the queue for when the sender has room.
        message.status = "queued"
        message.attempts = max(0, message.attempts - 1)
        message.next_attempt_at = rt.now() + dt.timedelta(seconds=wait_seconds)
        _enqueue_retry(session, rt, message)
    return "throttled"


def _deliver_logged(rt: Runtime, message_id: int) -> str:
    try:
        return deliver(rt, message_id)
    except Exception:
        # The row stays queued or sending in SQL; the sweeper brings it back.
        log.exception("delivery crashed message id=%s", message_id)
        return "error"


def _enqueue_retry(session: Session, rt: Runtime, message: Message) -> None:
    when = message.next_attempt_at
    message_id = message.id
    assert when is not None
    after_commit(
        session,
        lambda: rt.jobs.enqueue_at(when, SEND_JOB, message_id, job_id=f"send-{message_id}-{when:%s}"),
    )


def _mark_sent(message: Message, sid: str, status: str, segments: int | None, now: dt.datetime) -> None:
    from app.messaging.status import advance

    message.provider_sid = sid
    # A status callback may have got here first and moved the message on; never move it back.
    message.status = advance("sent" if message.status in {"queued", "sending"} else message.status, status)
    message.sent_at = now
    message.next_attempt_at = None
    if segments:
        message.segments = segments


def _record_failure(rt: Runtime, message_id: int, exc: SendError, *, attempt: int | None = None) -> str:
    """Record a create call that failed, unless the row moved on meanwhile: a status callback proved the
    provider took the text (delivered, sent …: kept, never reset to queued), or the claim went to another
    worker (``attempt`` no longer matches). Returns the outcome for logs and tests."""
    with rt.sessions() as session, session.begin():
        message = session.get(Message, message_id, with_for_update=True)
        assert message is not None
        if not _holds(message, attempt):
            if message.status == "sending":
                log.info("send failed after the claim moved on message id=%s: left to its owner", message_id)
                return "taken-over"
            log.info("send failed after a callback set status=%s message id=%s: kept", message.status, message_id)
            return "already-" + message.status
        code = str(exc.code or exc.http_status or "network")
        message.error_code = f"{UNCONFIRMED}{code}" if exc.ambiguous else code
        patient = session.get(Patient, message.patient_id) if message.patient_id else None
        if exc.code in OPT_OUT_CODES:
            message.status = "failed"
            if patient is not None:
                from app.messaging.consent import opt_out

                opt_out(session, rt, patient, now=rt.now(), confirm=False)
            log.warning("send refused: recipient opted out message id=%s", message_id)
            return "opted-out"
        if exc.code in SMS_INCAPABLE_CODES and patient is not None:
            # A landline: the number is fine for calls. The check-in goes on by phone (issue 9, item 9).
            message.status = "failed"
            patient.sms_capable = False
            failed_id = message.id
            after_commit(session, lambda: rt.jobs.enqueue(FALLBACK_JOB, failed_id, job_id=f"fallback-{failed_id}"))
            log.warning("send refused: number takes no texts message id=%s", message_id)
            return "bad-number"
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
