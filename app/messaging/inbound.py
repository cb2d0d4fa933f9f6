"""Inbound texts: store once per provider SID, then keywords, then the conversation, else the inbox.

What a text is (keyword, the conversation's answer, or outside any conversation) is decided by
``app/flows/routing.py``'s ``route``, the same function transcripts and ``outreach simulate`` use; triage
runs on every text in every state (inside a flow through the engine, outside here, for opted-out patients
and unknown numbers too). Nothing a patient sends is lost: a reply that is not an answer, a reply after the
conversation ended, or a text from an unknown number is kept and flagged for the care team.

Unknown numbers: no patient, so no escalation row (escalations belong to a patient and a program). A red
flag or a "right now?" mention from an unknown number is flagged on the stored inbox row
(``messages.flags``), listed at the top of the care-manager queue until someone marks it reviewed, and an
EMERGENCY pages every program's on-call number at once (no PHI in the page). The sender gets the generic
no-PHI reply, which says 911, plus 988 / Poison Control when they apply.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from app.channels.cleaning import PHONE_MAX, clean_text
from app.conversations.addressing import ADDRESSED_TO
from app.conversations.service import (
    HistoryRow,
    active_conversation,
    history_rows,
    pinned_flow,
    resume_conversation,
    start_conversation,
)
from app.db import after_commit, run_in_transaction
from app.flows import engine
from app.flows.keywords import KeywordHit, classify
from app.flows.lessons import is_more
from app.flows.routing import RIGHT_NOW_FLOW, ActiveFlow, Route, outside_plan, route
from app.flows.safety import emergency_text
from app.flows.shared_phone import parse_choice, which_person_text
from app.i18n import gettext_for
from app.messaging.caregivers import from_caregiver
from app.messaging.consent import Keyword, keyword_language, opt_in, opt_out, reply_text
from app.messaging.lessons import open_lesson, send_next_part
from app.messaging.outbound import DEFER_FLUSH, backoff, queue_text
from app.models import Caregiver, Conversation, Message, Patient, Program, SharedPhoneChoice, utcnow
from app.patients.phones import InvalidPhone, mask, to_e164
from app.runtime import Runtime
from app.scheduling.enrollments import rederive_for_patient
from app.triage.verdict import Verdict

log = logging.getLogger(__name__)

MAX_BODY = 1600

#: Inbound statuses (``messages.status``): stored and not processed yet; its step raised and a retry is
#: due at ``next_attempt_at``; given up after ``MAX_ATTEMPTS`` (staff see it, ``error_code`` says why);
#: processed. app/metrics.py counts the first two as pending (``PENDING_INBOUND``).
PENDING = "pending"
RETRY = "retry"
FAILED = "failed"
RECEIVED = "received"
#: The job that processes one stored text, by name (app/tasks.py).
PROCESS_JOB = "app.tasks.process_inbound"
#: The job that processes every pending text in batches (:func:`process_pending`), kicked by the webhook.
PROCESS_PENDING_JOB = "app.tasks.process_pending_inbound"
#: ``JobQueue.enqueue_once`` key of that job, and how long a lost job holds it (the sweeper finds a text
#: whose job was lost after ``PENDING_GRACE`` anyway).
KICK_KEY = "inbound-pending"
KICK_TTL_SECONDS = 30
#: Texts one batch claims and processes in one transaction.
PROCESS_BATCH = 50
#: Batches one job runs before it hands over to a new job (RQ's job timeout; other queued jobs get a turn).
BATCHES_PER_JOB = 20
#: Tries in all before a text is given up (it stays stored, on the timeline, flagged for review).
MAX_ATTEMPTS = 5
#: Backoff between tries (full jitter, doubling): 15 s, 30 s, 60 s, 120 s ... at most 10 minutes.
RETRY_BASE_SECONDS = 15.0
RETRY_CAP_SECONDS = 600.0
#: A pending text older than this has lost its job (Redis flushed or down, a worker killed): the sweeper
#: enqueues it again. Longer than a job normally waits, short enough that a lost text is answered soon.
PENDING_GRACE = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class InboundResult:
    #: stored | duplicate | unknown_sender | keyword | answered | inbox | opted_out | more (next lesson part)
    #: | asked / chosen (a shared phone: which person is answering)
    outcome: str
    message_id: int | None


# Statements built once: building an ORM statement and its cache key per call costs more CPU than the
# round trip it makes (bench/README.md, section 1). Values go in as bound parameters.
_BY_PHONE = (
    select(Patient).where(Patient.phone == bindparam("phone")).options(joinedload(Patient.program, innerjoin=True))
)
_BY_PHONE_NEWEST_FIRST = _BY_PHONE.order_by(Patient.updated_at.desc())
_BY_PHONE_LOCKED = _BY_PHONE.order_by(Patient.id).with_for_update(of=Patient)
_MESSAGE_BY_SID = select(Message.id).where(Message.provider_sid == bindparam("sid"))
_MESSAGES = cast(Table, Message.__table__)
#: ``INSERT … ON CONFLICT (provider_sid) DO NOTHING RETURNING id``, per dialect (Core: no ORM bulk machinery).
_INSERT_NEW_SID = {
    name: dialect_insert(_MESSAGES).on_conflict_do_nothing(index_elements=["provider_sid"]).returning(_MESSAGES.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
#: The number's owner for the timeline, looked up inside the INSERT (no extra round trip); a shared number
#: gets the most recently updated patient here and the right one when the text is processed.
_OWNER = (
    select(Patient.id)
    .where(Patient.phone == bindparam("owner_phone"))
    .order_by(Patient.updated_at.desc())
    .limit(1)
    .scalar_subquery()
)
_INSERT_PENDING = {
    name: dialect_insert(_MESSAGES)
    .values(patient_id=_OWNER)
    .on_conflict_do_nothing(index_elements=["provider_sid"])
    .returning(_MESSAGES.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def find_patient(session: Session, phone: str, *, lock: bool = False) -> Patient | None:
    """The patient who owns this number; a shared number goes to the one in a conversation first.

    ``lock``: take the row lock(s) in the same statement (``SELECT … FOR UPDATE OF patients``), so messages
    from one patient are serialised without a second query. Rows are locked in id order (a fixed order, so
    two texts from a shared number cannot deadlock); the most recently updated still comes first. The
    program is loaded with the patient (``session.get(Program, …)`` then hits the identity map).
    """
    candidates = list(session.scalars(_BY_PHONE_LOCKED if lock else _BY_PHONE_NEWEST_FIRST, {"phone": phone}).all())
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if lock:
        candidates.sort(key=lambda p: p.updated_at, reverse=True)
    for candidate in candidates:
        if active_conversation(session, candidate.id) is not None:
            return candidate
    return candidates[0]


def _store_inbound(session: Session, values: dict[str, Any]) -> Message | None:
    """Insert the inbound row unless its provider SID is already stored; ``None`` means a duplicate.

    The unique index on ``provider_sid`` decides, also between concurrent requests (``ON CONFLICT DO
    NOTHING`` waits for the other transaction to end). The returned row is a persistent ORM object in
    ``session``, every column loaded, so later changes to it (``needs_review``) are flushed as an UPDATE.
    """
    row: dict[str, Any] = {
        "conversation_id": None,
        "flow_id": None,
        "needs_review": False,
        "flags": None,
        "attempts": 0,
        "send_key": None,
        "segments": None,
        "encoding": None,
        "error_code": None,
        "sent_at": None,
        "next_attempt_at": None,
        "screened_at": None,
        **values,
    }
    row.setdefault("updated_at", row.get("created_at") or utcnow())
    stmt = _INSERT_NEW_SID.get(session.get_bind().dialect.name)
    if stmt is None:  # pragma: no cover - PostgreSQL in production, SQLite for the demo
        message = Message(**row)
        try:
            with session.begin_nested():
                session.add(message)
        except IntegrityError:
            return None
        return message
    message_id = session.connection().execute(stmt, row).scalar()
    if message_id is None:
        return None
    message = Message(id=message_id, **row)
    make_transient_to_detached(message)
    session.add(message)
    return message


def _insert_pending(session: Session, values: dict[str, Any]) -> int | None:
    """``INSERT … ON CONFLICT (provider_sid) DO NOTHING RETURNING id`` with the owner looked up in the same
    statement; ``None`` for a SID already stored."""
    row = {k: v for k, v in values.items() if k != "patient_id"}
    row.update(
        conversation_id=None,
        flow_id=None,
        needs_review=False,
        flags=None,
        attempts=0,
        send_key=None,
        segments=None,
        encoding=None,
        error_code=None,
        sent_at=None,
        next_attempt_at=None,
        screened_at=None,
        updated_at=values["created_at"],
        owner_phone=values["from_number"],
    )
    message_id: int | None = (
        session.connection().execute(_INSERT_PENDING[session.get_bind().dialect.name], row).scalar()
    )
    return message_id


def unknown_sender_text(verdict: Verdict | None = None) -> str:
    """No PHI and no program name a stranger could learn anything from; the 911 advice in both languages,
    and 988 / Poison Control when triage found they apply."""
    texts = []
    for language in ("en", "es"):
        _ = gettext_for(language)
        text = _(
            "We could not match this number to a patient. Please call your care team. "
            "If this is an emergency, call 911."
        )
        if verdict is not None and (verdict.crisis_line or verdict.poison_control or verdict.violence_line):
            text += " " + emergency_text(
                language,
                crisis_line=verdict.crisis_line,
                poison_control=verdict.poison_control,
                violence_line=verdict.violence_line,
            )
        texts.append(text)
    en, es = texts
    return en if en == es else f"{en}\n\n{es}"


def unknown_sender_page(base_url: str) -> str:
    _ = gettext_for("en")
    return _("Outreach: a text from an unknown number may be an emergency. Open %(url)s") % {"url": f"{base_url}/queue"}


@dataclass(frozen=True)
class InboundText:
    """One inbound text as the channel gave it, already cleaned (app/channels/cleaning.py): no control
    characters, every value within its column."""

    sid: str
    from_number: str
    to_number: str
    body: str
    channel: str


#: A North American number already written as E.164 writes it: ``to_e164`` would hand it back unchanged
#: (valid) or refuse it (and the raw value is stored): either way the value itself, without parsing it.
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}")


def _sender(raw: str) -> str:
    """The sender as stored: E.164 when the number parses, else the raw value cut to the column."""
    if _NANP_E164.fullmatch(raw):
        return raw
    try:
        return to_e164(raw)
    except InvalidPhone:
        return raw[:20]


def _row_values(text: InboundText, now: dt.datetime) -> dict[str, Any]:
    sender = _sender(text.from_number)
    return {
        "patient_id": None,
        "direction": "inbound",
        "channel": text.channel,
        "kind": "reply",
        "body": text.body[:MAX_BODY],
        "status": PENDING,
        "provider_sid": text.sid,
        "from_number": sender,
        "to_number": text.to_number[:20],
        "created_at": now,
    }


def store_text(session: Session, rt: Runtime, text: InboundText, now: dt.datetime) -> InboundResult:
    """The webhook's transaction (store first, then process): insert the row once per SID, status
    ``pending``, and enqueue its processing (``app.tasks.process_inbound``) once this commits.

    Cheap by design: one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` that also looks up the owner of the
    number (so the text is on the patient's timeline at once, whatever happens next), and the commit.

    The one exception is a consent keyword that Twilio itself enforces (STOP, START and their synonyms,
    ``TWILIO_ENFORCED``): it is applied here, in the same transaction, so an opt-out takes effect the
    moment it is stored (queued texts cancelled before any worker can send them), whether or not a worker
    or Redis is running, and before any earlier text of the patient is processed. Such a keyword is a
    keyword in every state (it never gives way to an answer), so deciding it before the conversation is
    loaded is the decision ``route`` makes too. If applying it raises, its savepoint is rolled back and
    the row stays ``pending``: the processing job applies it through ``route`` like any other text.

    Returns ``duplicate`` (the SID was stored before: nothing is done twice), ``keyword`` or ``stored``.
    """
    values = _row_values(text, now)
    hit = classify(text.body, opted_out=False)
    enforced = hit is not None and hit.enforced_by_twilio
    if not enforced:
        message_id = _insert_pending(session, values)
        if message_id is None:
            return _duplicate(session, text.sid)
        after_commit(session, lambda: enqueue_processing(rt, [message_id], "stored"))
        return InboundResult("stored", message_id)
    patient = find_patient(session, values["from_number"], lock=True)
    message = _store_inbound(session, {**values, "patient_id": patient.id if patient else None})
    if message is None:
        return _duplicate(session, text.sid)
    if patient is not None and hit is not None:
        try:
            with session.begin_nested():
                # The keyword alone: no routing, no conversation step, so nothing that processing may
                # break stands between STOP and the opt-out.
                program = session.get(Program, patient.program_id)
                assert program is not None
                _apply_keyword(session, rt, patient, program, hit, now)
                message.kind = "keyword"
                message.status = RECEIVED
            return InboundResult("keyword", message.id)
        except Exception as exc:  # the row stays pending; the job applies the keyword (and retries)
            log.warning("keyword not applied at once message id=%s error=%s", message.id, type(exc).__name__)
    stored_id = message.id
    after_commit(session, lambda: enqueue_processing(rt, [stored_id], "stored"))
    return InboundResult("stored", stored_id)


#: The webhook's one statement on PostgreSQL, as the driver gets it (``exec_driver_sql``: no statement
#: compilation or cache-key work per request; psycopg prepares it on the server after a few runs). Run on
#: an autocommit connection it is its own transaction: one round trip, no BEGIN and COMMIT around it, and
#: still atomic and durable (``fsync`` on) before the 200 goes back. The owner of the number is looked up
#: inside the INSERT (the timeline shows the text at once); columns not named are NULL.
_WEBHOOK_INSERT_SQL = (
    "INSERT INTO messages (patient_id, direction, channel, kind, body, status, provider_sid, from_number,"
    " to_number, attempts, needs_review, created_at, updated_at)"
    " VALUES ((SELECT patients.id FROM patients WHERE patients.phone = %(from_number)s"
    " ORDER BY patients.updated_at DESC LIMIT 1), 'inbound', %(channel)s, 'reply', %(body)s, 'pending',"
    " %(provider_sid)s, %(from_number)s, %(to_number)s, 0, false, %(created_at)s, %(created_at)s)"
    " ON CONFLICT (provider_sid) DO NOTHING RETURNING id"
)
_WEBHOOK_PARAMS = ("channel", "body", "provider_sid", "from_number", "to_number", "created_at")


def receive_sms(rt: Runtime, text: InboundText, now: dt.datetime) -> InboundResult:
    """The SMS webhook's work (store first, then process): the row committed once per SID, status
    ``pending``, and its processing kicked (:func:`kick_processing`) after the commit.

    On PostgreSQL a text that is not a Twilio-enforced keyword is one autocommit ``INSERT … ON CONFLICT
    DO NOTHING RETURNING id`` (one round trip, no ORM session). A STOP / START keyword, and SQLite (the
    demo), take :func:`store_text` in a transaction. Returns ``stored``, ``duplicate`` (the message id is
    not looked up on this path: ``None``) or ``keyword``.
    """
    if rt.engine.dialect.name != "postgresql" or is_enforced_keyword(text.body):
        return run_in_transaction(rt.sessions, lambda session: store_text(session, rt, text, now))
    values = _row_values(text, now)
    params = {key: values[key] for key in _WEBHOOK_PARAMS}
    params["created_at"] = now.astimezone(dt.UTC)
    for attempt in (1, 2):
        try:
            with rt.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                message_id: int | None = conn.exec_driver_sql(_WEBHOOK_INSERT_SQL, params).scalar()
            break
        except DBAPIError as exc:
            # A pooled connection found dead: once more on a new one (see app.db.run_in_transaction). A
            # first attempt that committed after all makes the second a duplicate, which is kicked too.
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("database connection lost; retrying the insert once")
    kick_processing(rt)
    if message_id is None:
        return InboundResult("duplicate", None)
    return InboundResult("stored", message_id)


def is_enforced_keyword(body: str) -> bool:
    """A STOP/START keyword Twilio enforces itself: stored in a transaction with its consent change."""
    hit = classify(body, opted_out=False)
    return hit is not None and hit.enforced_by_twilio


def receive_text(
    session: Session,
    rt: Runtime,
    *,
    sid: str,
    from_number: str,
    to_number: str,
    body: str,
    channel: str,
    now: dt.datetime,
) -> InboundResult:
    """Store and process one text in the caller's transaction (the browser simulator, whose reply the
    page shows at once; tests of the conversation itself). The SMS webhook stores first instead
    (:func:`store_text`) and processes in a job (:func:`process_inbound`). Values are cleaned here too."""
    text = InboundText(
        sid=sid,
        from_number=clean_text(from_number, PHONE_MAX),
        to_number=clean_text(to_number, PHONE_MAX),
        body=clean_text(body, MAX_BODY),
        channel=channel,
    )
    values = _row_values(text, now)
    # Lock first, then store: the patient's row lock serialises messages from one patient.
    patient = find_patient(session, values["from_number"], lock=True)
    message = _store_inbound(session, {**values, "patient_id": patient.id if patient else None})
    if message is None:
        # Another request stored the same SID (Twilio retried): it handles this message, we do nothing.
        return _duplicate(session, sid)
    return InboundResult(_process(session, rt, message, patient, now), message.id)


@dataclass(frozen=True)
class _Known:
    """What a batch read for many patients at once: the patient's active conversation (locked; ``None``:
    none) and the last days of answers (``patient_context``'s history)."""

    conversation: Conversation | None
    history: Sequence[HistoryRow]


def _process(
    session: Session,
    rt: Runtime,
    message: Message,
    patient: Patient | None,
    now: dt.datetime,
    known: _Known | None = None,
) -> str:
    """Route one stored, still pending text and apply what it means; marks it processed. Inside the caller's
    transaction, with the patient's row lock held. ``known``: the conversation and history already read
    (a batch); ``None`` reads them here. Returns the outcome (see :class:`InboundResult`)."""
    body = message.body
    message.status = RECEIVED
    message.next_attempt_at = None
    message.error_code = None
    intents = rt.content.intents
    caregiver: Caregiver | None = None
    if patient is None:
        sent_by, patient, caregiver = from_caregiver(session, rt, message, now)
        if sent_by == "keyword":
            return "keyword"  # STOP / START / HELP for the caregiver only
        if sent_by == "inbox" and patient is not None and caregiver is not None:
            message.needs_review = True
            message.kind = "inbox"
            _from_caregiver_outside(session, rt, patient, caregiver, message, now)
            return "inbox"
    if patient is None:
        decided = route(body, intents=intents, language=None)
        verdict = decided.verdict if decided.kind == "outside" else Verdict()
        flags = [f"red_flag:{r}" for r in verdict.emergency] + [f"confirm:{r}" for r in verdict.to_confirm]
        message.patient_id = None
        message.needs_review = True
        message.kind = "inbox"
        message.flags = list(dict.fromkeys([*(message.flags or []), *flags])) or None
        sender = message.from_number or ""
        queue_text(session, rt, to=sender, body=unknown_sender_text(verdict), kind="system", patient=None, now=now)
        if verdict.emergency:
            _page_for_unknown_sender(session, rt, message.id, now)
        log.info("inbound from unknown number %s kept for review id=%s", mask(sender), message.id)
        return "unknown_sender"
    message.patient_id = patient.id
    if caregiver is None and known is None:
        # Two patients of this number both in a check-in: ask which person is answering (issue 12 item 6).
        shared = _shared_phone(session, rt, message, patient, now)
        if isinstance(shared, str):
            return shared
        patient = shared
        message.patient_id = patient.id
    conversation: Conversation | None = None
    active: ActiveFlow | None = None
    if not patient.opted_out:
        conversation = known.conversation if known is not None else active_conversation(session, patient.id, lock=True)
        if conversation is not None and caregiver is None and ADDRESSED_TO in (conversation.variables or {}):
            # The check-in is the caregiver's (caregiver-strain): the patient's text is not an answer to it.
            conversation = None
        if conversation is not None:
            flow = pinned_flow(session, rt, conversation.flow_id, conversation.flow_version)
            active = ActiveFlow(flow, engine.State.from_dict(conversation.state))
    lesson_open = (
        caregiver is None and is_more(body) and not patient.opted_out and open_lesson(session, patient.id) is not None
    )
    decided = route(
        body,
        intents=intents,
        language=patient.language,
        opted_out=patient.opted_out,
        conversation=active,
        lesson_open=lesson_open,
    )
    program = session.get(Program, patient.program_id)
    assert program is not None
    if decided.kind == "more":
        message.kind = "lesson_more"
        send_next_part(session, rt, patient, now)
        return "more"
    if decided.kind == "keyword":
        assert decided.keyword is not None
        message.kind = "keyword"
        _apply_keyword(session, rt, patient, program, decided.keyword, now)
        return "keyword"
    if decided.kind == "conversation":
        assert conversation is not None
        message.conversation_id = conversation.id
        message.flow_id = conversation.flow_id
        if conversation.channel == "voice":
            conversation.channel = "sms"  # the patient texted: the check-in goes on by text, no call is placed
        resume_conversation(
            session,
            rt,
            patient,
            conversation,
            engine.Reply(body),
            now,
            inbound=message,
            history=known.history if known is not None else None,
        )
        return "answered"
    # Not an answer to anything (or an opted-out patient): the inbox, and triage's findings reach a human.
    message.needs_review = True
    message.kind = "inbox"
    _outside_conversation(session, rt, patient, program, decided, message, now)
    return "opted_out" if patient.opted_out else "inbox"


def _apply_keyword(
    session: Session, rt: Runtime, patient: Patient, program: Program, hit: KeywordHit, now: dt.datetime
) -> None:
    """STOP / START / HELP for a patient: the change, and its confirmation once (app/messaging/consent.py)."""
    language = keyword_language(hit, patient)
    changed = True
    if hit.keyword is Keyword.STOP:
        changed = opt_out(session, rt, patient, now=now)
    elif hit.keyword is Keyword.START:
        changed = opt_in(session, patient, now=now)
        if changed:
            rederive_for_patient(session, rt, patient, now)
    if changed or hit.keyword is Keyword.HELP:
        queue_text(
            session,
            rt,
            to=patient.phone,
            kind="consent",
            patient=patient,
            now=now,
            body=reply_text(hit.keyword, language, program.name, program.phone_display),
        )


# ---------------------------------------------------------------------------------------- the processing job
def enqueue_processing(rt: Runtime, message_ids: Sequence[int], tag: str) -> None:
    """One ``app.tasks.process_inbound`` job per stored text (by name: no job module imported here).
    Best effort, as every enqueue: a lost job is found again by the sweeper (:func:`due_inbound`)."""
    for message_id in message_ids:
        rt.jobs.enqueue(PROCESS_JOB, message_id, job_id=f"inbound-{message_id}-{tag}")


def process_inbound(rt: Runtime, message_id: int) -> str:
    """Process one stored text (the job ``app.tasks.process_inbound``): route it, run the conversation step,
    queue the replies, all in one transaction that also marks the row processed, so a message is processed
    once however often its job runs (a duplicate job finds it processed and does nothing: no answer saved
    twice, no reply queued twice).

    Arrival order per sender: a text waits while an earlier text of the same number is still pending or
    retrying; the earlier one's job enqueues the next when it is done. A text waiting behind one that
    failed is screened by triage at once (:func:`_safety_net`), so an emergency never waits in line.

    When the step raises, the transaction is rolled back and, in a new one, the row is kept and marked:
    ``retry`` with the error's class (never its text) in ``error_code``, ``next_attempt_at`` after a backoff
    (``MAX_ATTEMPTS`` tries in all, then ``failed``), ``needs_review`` for the care team, and the safety net
    runs on the raw text. Returns ``processed`` / ``waiting`` / ``retry`` / ``failed`` / ``done``
    (already processed, or no such inbound row). Never raises for a failure of the step itself.
    """
    now = rt.now()
    try:
        return run_in_transaction(rt.sessions, lambda session: _process_job(session, rt, message_id, now))
    except Exception as exc:
        failure = exc
    # The class only, never the text: an exception's message may quote the patient's words or a row.
    log.warning("inbound processing failed message id=%s error=%s", message_id, type(failure).__name__)
    return run_in_transaction(rt.sessions, lambda session: _record_failure(session, rt, message_id, failure, now))


def kick_processing(rt: Runtime) -> None:
    """After a text is committed: make sure a :func:`process_pending` job is queued (one Redis ``SET NX``
    when one is queued already, an enqueue otherwise). Best effort: the sweeper finds pending texts too."""
    rt.jobs.enqueue_once(PROCESS_PENDING_JOB, key=KICK_KEY, ttl_seconds=KICK_TTL_SECONDS)


def process_pending(rt: Runtime, batch_size: int = PROCESS_BATCH) -> dict[str, int]:
    """Process pending inbound texts in batches (the job ``app.tasks.process_pending_inbound``): each batch
    claims up to ``batch_size`` of them (oldest first, ``FOR UPDATE SKIP LOCKED``, so several workers
    share the work) and processes them in one transaction, reading what the steps need for all of them at
    once and writing all answers, replies and updates in one flush (the PostgreSQL round trips are per
    batch, not per text). Runs until a batch comes back short or ``BATCHES_PER_JOB`` ran (then kicks a
    new job). Returns counts: ``processed``, ``handed_over`` (given to the one-text job), ``batches``,
    ``fallback`` (batches that raised and were redone one text at a time).

    The guarantees are those of :func:`process_inbound`, which this falls back to:

    - arrival order per sender: a batch processes a sender's texts only as the unbroken start of that
      sender's waiting texts (``pending`` / ``retry``), in id order; every other text it claimed (one
      waiting behind a text it does not hold, an unknown or shared number, a patient whose row another
      transaction holds) is handed to its own ``process_inbound`` job after the commit, as is the next
      waiting text after a sender's run, so nothing waits for the sweeper;
    - a failure never sinks the others: when anything in a batch raises, the whole batch is rolled back
      and each of its texts is processed by :func:`process_inbound` in its own transaction, in id order:
      the good ones are processed, the bad one is kept, marked ``retry`` with its error class, and
      screened by triage (the safety net);
    - idempotent: only ``pending`` rows are claimed and each is marked processed in the transaction that
      processes it, so running the job again (or a one-text job for the same row) does nothing twice.
    """
    rt.jobs.started(KICK_KEY)
    totals = {"processed": 0, "handed_over": 0, "batches": 0, "fallback": 0}
    after_id = 0
    for _ in range(BATCHES_PER_JOB):
        claimed: list[int] = []
        now = rt.now()
        try:
            processed, handed = run_in_transaction(
                rt.sessions,
                functools.partial(_process_batch, rt=rt, limit=batch_size, after_id=after_id, now=now, claimed=claimed),
            )
        except Exception as exc:
            if not claimed:
                raise  # nothing claimed: the database itself failed; the rows wait for the sweeper
            log.warning("inbound batch failed error=%s; its %s texts one at a time", type(exc).__name__, len(claimed))
            totals["fallback"] += 1
            for message_id in claimed:
                if process_inbound(rt, message_id) == "processed":
                    totals["processed"] += 1
            processed, handed = 0, []
        totals["batches"] += 1
        totals["processed"] += processed
        totals["handed_over"] += len(handed)
        if not claimed:
            return totals
        after_id = max(claimed)
        if len(claimed) < batch_size:
            return totals
    kick_processing(rt)
    return totals


#: Pending texts, oldest first, that no other transaction holds (a job's claim).
_CLAIM = (
    select(Message)
    .where(Message.direction == "inbound", Message.status == PENDING, Message.id > bindparam("after_id"))
    .order_by(Message.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
#: Every waiting text of these senders, in arrival order (the line each sender's texts stand in).
_WAITING_OF = (
    select(Message.from_number, Message.id)
    .where(
        Message.direction == "inbound",
        Message.status.in_((PENDING, RETRY)),
        Message.from_number.in_(bindparam("senders", expanding=True)),
    )
    .order_by(Message.id)
)


def _patients_locked() -> Any:
    """The patients of these numbers with their programs, each with how many patients share the number,
    row-locked without waiting (``SKIP LOCKED``: a patient another transaction holds is not returned)."""
    same = cast(Table, Patient.__table__).alias("same_phone")
    owners = select(func.count()).select_from(same).where(same.c.phone == Patient.phone).scalar_subquery()
    return (
        select(Patient, owners)
        .where(Patient.phone.in_(bindparam("phones", expanding=True)))
        .options(joinedload(Patient.program, innerjoin=True))
        .order_by(Patient.id)
        .with_for_update(of=Patient, skip_locked=True)
    )


_PATIENTS_LOCKED = _patients_locked()
_ACTIVE_OF = (
    select(Conversation)
    .where(Conversation.patient_id.in_(bindparam("patient_ids", expanding=True)), Conversation.status == "active")
    .order_by(Conversation.id)
    .with_for_update()
)


def _process_batch(
    session: Session, rt: Runtime, limit: int, after_id: int, now: dt.datetime, claimed: list[int]
) -> tuple[int, list[int]]:
    """One batch (see :func:`process_pending`); fills ``claimed`` with the ids it claimed as soon as it has
    them. Returns how many it processed and the ids handed to one-text jobs after the commit."""
    session.info[DEFER_FLUSH] = True  # replies in one INSERT at the commit, not one flush per text
    messages = list(session.scalars(_CLAIM, {"after_id": after_id, "limit": limit}))
    claimed.extend(message.id for message in messages)
    if not messages:
        return 0, []
    mine = {message.id: message for message in messages}
    senders = sorted({message.from_number or "" for message in messages})
    lines: dict[str, list[int]] = {}
    for sender, message_id in session.execute(_WAITING_OF, {"senders": senders}):
        lines.setdefault(sender or "", []).append(message_id)
    owners: dict[str, Patient] = {}
    for patient, count in session.execute(_PATIENTS_LOCKED, {"phones": senders}).unique():
        if count == 1:
            owners[patient.phone] = patient
    runs: dict[str, list[Message]] = {}
    handed: list[int] = []
    for sender in senders:
        line = lines.get(sender, [])
        run: list[Message] = []
        if sender in owners:
            for message_id in line:
                if message_id not in mine:
                    break
                run.append(mine[message_id])
        if run:
            runs[sender] = run
            if len(line) > len(run):
                handed.append(line[len(run)])  # the next in line is not ours: its job moves it on
    in_runs = {message.id for run in runs.values() for message in run}
    handed.extend(message_id for message_id in mine if message_id not in in_runs)
    if runs:
        patient_ids = [owners[sender].id for sender in runs]
        active: dict[int, Conversation] = {}
        for conversation in session.scalars(_ACTIVE_OF, {"patient_ids": patient_ids}):
            active.setdefault(conversation.patient_id, conversation)
        history = history_rows(session, patient_ids, now)
        # In arrival order across senders (each sender's run is in order); the first text of a patient
        # uses what was read above, a later one reads again (the first may have ended the conversation).
        first = {run[0].id for run in runs.values()}
        for message in sorted((m for run in runs.values() for m in run), key=lambda m: m.id):
            patient = owners[message.from_number or ""]
            known = _Known(active.get(patient.id), history[patient.id]) if message.id in first else None
            _process(session, rt, message, patient, now, known)
    handed = sorted(set(handed))
    if handed:
        after_commit(session, lambda: enqueue_processing(rt, handed, f"batch-{claimed[0]}"))
    return sum(len(run) for run in runs.values()), handed


_WAITING = (PENDING, RETRY)
_EARLIER_WAITING = (
    select(Message.id, Message.status)
    .where(
        Message.direction == "inbound",
        Message.status.in_(_WAITING),
        Message.from_number == bindparam("sender"),
        Message.id < bindparam("message_id"),
    )
    .order_by(Message.id)
    .limit(1)
)
_NEXT_WAITING = (
    select(Message.id)
    .where(
        Message.direction == "inbound",
        Message.status.in_(_WAITING),
        Message.from_number == bindparam("sender"),
        Message.id > bindparam("message_id"),
    )
    .order_by(Message.id)
    .limit(1)
)


def _load_locked(session: Session, message_id: int) -> tuple[Message | None, Patient | None]:
    """The inbound row, locked, with its sender's patient locked first (the order every path takes:
    patient, then message), or ``(None, None)`` when there is no such waiting row."""
    peek = session.get(Message, message_id)
    if peek is None or peek.direction != "inbound" or peek.status not in _WAITING:
        return None, None
    patient = find_patient(session, peek.from_number or "", lock=True)
    session.refresh(peek, with_for_update=True)
    if peek.status not in _WAITING:
        return None, None
    return peek, patient


def _process_job(session: Session, rt: Runtime, message_id: int, now: dt.datetime) -> str:
    message, patient = _load_locked(session, message_id)
    if message is None:
        return "done"
    sender = message.from_number or ""
    earlier = session.execute(_EARLIER_WAITING, {"sender": sender, "message_id": message.id}).first()
    if earlier is not None:
        if earlier.status == RETRY:
            _safety_net(session, rt, message, patient, now)
        log.info("inbound message id=%s waits for an earlier one", message.id)
        return "waiting"
    _process(session, rt, message, patient, now)
    _enqueue_next(session, rt, message)
    return "processed"


def _enqueue_next(session: Session, rt: Runtime, message: Message) -> None:
    """Once this commits, the sender's next waiting text (arrival order)."""
    following = session.scalar(_NEXT_WAITING, {"sender": message.from_number or "", "message_id": message.id})
    if following is not None:
        after_commit(session, lambda: enqueue_processing(rt, [following], f"after-{message.id}"))


def _record_failure(session: Session, rt: Runtime, message_id: int, exc: Exception, now: dt.datetime) -> str:
    message, patient = _load_locked(session, message_id)
    if message is None:
        return "done"
    message.attempts = (message.attempts or 0) + 1
    message.error_code = type(exc).__name__[:64]
    message.needs_review = True
    if patient is not None:
        message.patient_id = patient.id
    outcome: str
    if message.attempts >= MAX_ATTEMPTS:
        message.status = FAILED
        message.next_attempt_at = None
        outcome = FAILED
        _enqueue_next(session, rt, message)  # the line moves on: later texts are not held forever
        log.error("inbound processing given up message id=%s attempts=%s", message.id, message.attempts)
    else:
        message.status = RETRY
        when = now + backoff(message.attempts, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS)
        message.next_attempt_at = when
        outcome = RETRY
        retry_id, attempt = message.id, message.attempts
        after_commit(
            session,
            lambda: rt.jobs.enqueue_at(when, PROCESS_JOB, retry_id, job_id=f"inbound-{retry_id}-retry-{attempt}"),
        )
    _safety_net(session, rt, message, patient, now)
    return outcome


def _safety_net(session: Session, rt: Runtime, message: Message, patient: Patient | None, now: dt.datetime) -> None:
    """Triage on the raw text of a message whose processing failed or waits, once per message
    (``screened_at``): what the routing's outside-conversation plan would open and say for an emergency
    is done now, so a red flag reaches a human whatever broke. In a savepoint: a failure here is logged
    and leaves the failure record above intact (the next attempt tries the net again).

    - a patient: EMERGENCY escalations (paging on-call) and one text with 911 / 988 / Poison Control
      (reachable patients), URGENT items for mentions to confirm and for symptoms (no "right now?" question:
      the conversation machinery may be what failed); the triage flags on the message, which is marked
      for review and is on the patient's timeline.
    - an unknown number: the flags, and for an emergency the page to every on-call number and the
      generic reply with 911.
    Texts go with the send key ``inbound:<id>:safety``, so they go once per message.
    """
    if message.screened_at is not None:
        return
    try:
        with session.begin_nested():
            _screen(session, rt, message, patient, now)
            message.screened_at = now
    except Exception as exc:
        log.error("safety net failed message id=%s error=%s", message.id, type(exc).__name__)


def _screen(session: Session, rt: Runtime, message: Message, patient: Patient | None, now: dt.datetime) -> None:
    from app.escalation.service import escalate_event

    send_key = f"inbound:{message.id}:safety"
    verdict = rt.content.triage.assess(message.body, patient.language if patient else None)
    if patient is None:
        flags = [f"red_flag:{r}" for r in verdict.emergency] + [f"confirm:{r}" for r in verdict.to_confirm]
        message.flags = list(dict.fromkeys([*(message.flags or []), *flags])) or None
        if verdict.emergency:
            _page_for_unknown_sender(session, rt, message.id, now)
            queue_text(
                session,
                rt,
                to=message.from_number or "",
                body=unknown_sender_text(verdict),
                kind="system",
                patient=None,
                send_key=send_key,
                now=now,
            )
        return
    program = session.get(Program, patient.program_id)
    assert program is not None
    ctx = engine.PatientContext(
        first_name=patient.given_name,
        language=patient.language,
        program_name=program.name,
        program_phone=program.phone_display,
    )
    plan = outside_plan(Route("outside", verdict=verdict), ctx, reachable=patient.reachable, notice_due=False)
    if plan.flags:
        message.flags = list(dict.fromkeys([*(message.flags or []), *plan.flags]))
    detail = {"outside_conversation": True, "processing_failed": True}
    for event in plan.events:
        if isinstance(event, engine.Escalate):
            escalate_event(session, rt, patient, event, conversation_id=None, now=now, extra=detail)
    for finding in plan.confirm:
        urgent = engine.confirm_escalation(finding, {**detail, "not_asked": "processing_failed"})
        escalate_event(session, rt, patient, urgent, conversation_id=None, now=now)
    emergency = [e.text for e in plan.events if isinstance(e, engine.Say) and e.purpose == "emergency"]
    if emergency and patient.reachable:
        queue_text(
            session,
            rt,
            to=patient.phone,
            body="\n\n".join(emergency),
            kind="emergency",
            patient=patient,
            send_key=send_key,
            now=now,
        )


_DUE = (
    select(Message.id)
    .where(
        Message.direction == "inbound",
        or_(
            and_(Message.status == PENDING, Message.created_at <= bindparam("stale_before")),
            and_(Message.status == RETRY, Message.next_attempt_at <= bindparam("now")),
        ),
    )
    .order_by(Message.id)
)


def due_inbound(session: Session, now: dt.datetime, limit: int = 1000) -> list[int]:
    """Stored texts whose processing job was lost (still ``pending`` ``PENDING_GRACE`` after they arrived:
    Redis flushed or down, a worker killed) or whose retry is due; oldest first. For the sweeper."""
    params = {"stale_before": now - PENDING_GRACE, "now": now}
    return list(session.scalars(_DUE.limit(limit), params).all())


def _duplicate(session: Session, sid: str) -> InboundResult:
    return InboundResult("duplicate", session.scalar(_MESSAGE_BY_SID, {"sid": sid}))


_NOTICE_SENT_SINCE = select(Message.id).where(
    Message.patient_id == bindparam("patient_id"),
    Message.direction == "outbound",
    Message.kind == "notice",
    Message.created_at >= bindparam("since"),
)


def notice_due(session: Session, patient: Patient, now: dt.datetime) -> bool:
    """The "not watched all the time" notice goes at most once per calendar day in the patient's zone."""
    local = now.astimezone(ZoneInfo(patient.timezone))
    since = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    return session.scalar(_NOTICE_SENT_SINCE.limit(1), {"patient_id": patient.id, "since": since}) is None


def _outside_conversation(
    session: Session,
    rt: Runtime,
    patient: Patient,
    program: Program,
    decided: Route,
    message: Message,
    now: dt.datetime,
) -> None:
    from app.escalation.service import escalate_event

    ctx = engine.PatientContext(
        first_name=patient.given_name,
        language=patient.language,
        program_name=program.name,
        program_phone=program.phone_display,
    )
    reachable = patient.reachable
    plan = outside_plan(decided, ctx, reachable=reachable, notice_due=reachable and notice_due(session, patient, now))
    if plan.flags:
        message.flags = list(plan.flags)
    for event in plan.events:
        if isinstance(event, engine.Escalate):
            escalate_event(session, rt, patient, event, conversation_id=None, now=now)
    said = plan.said()
    if plan.confirm and RIGHT_NOW_FLOW in rt.content.flows:
        # "Right now?" as a short conversation: the engine opens the URGENT items and reads the YES / NO.
        start_conversation(session, rt, patient, RIGHT_NOW_FLOW, now, lead_in=said, confirm=plan.confirm)
        return
    if plan.confirm:  # pragma: no cover - the content library ships the flow; never leave a mention unseen
        for finding in plan.confirm:
            urgent = engine.confirm_escalation(finding, {"outside_conversation": True})
            escalate_event(session, rt, patient, urgent, conversation_id=None, now=now)
    if said and reachable:
        kind = "emergency" if plan.emergency else "notice" if plan.notice else "reply"
        queue_text(session, rt, to=patient.phone, kind=kind, patient=patient, now=now, body="\n\n".join(said))


def _shared_phone(session: Session, rt: Runtime, message: Message, patient: Patient, now: dt.datetime) -> Patient | str:
    """Who is answering from a number two patients share? Returns the patient to route to, or the outcome
    ``asked`` (the text is held and the question sent) / ``chosen`` (this text named the person; the held
    one was routed to that person's check-in). Asked only when two or more of the number's patients are in
    a check-in (else the one in a check-in answers, as before); a choice is remembered for that patient's
    conversation. A text with a red flag is never held: it goes on at once (triage reaches a human)."""
    phone = message.from_number or ""
    candidates = {p.id: p for p in session.scalars(select(Patient).where(Patient.phone == phone).order_by(Patient.id))}
    if len(candidates) < 2:
        return patient
    busy = {
        c.patient_id: c
        for c in session.scalars(
            select(Conversation).where(Conversation.patient_id.in_(list(candidates)), Conversation.status == "active")
        )
    }
    in_check_in = [p for p in candidates.values() if p.id in busy and not p.opted_out]
    if len(in_check_in) < 2:
        return patient
    live = {c.id for c in busy.values()}
    choices = session.scalars(
        select(SharedPhoneChoice)
        .where(SharedPhoneChoice.phone == phone, SharedPhoneChoice.status.in_(["asking", "chosen"]))
        .order_by(SharedPhoneChoice.id.desc())
    ).all()
    for choice in choices:
        if choice.status == "chosen" and choice.conversation_id in live and choice.patient_id in candidates:
            return candidates[choice.patient_id]
    asking = next((c for c in choices if c.status == "asking"), None)
    if asking is not None and all(i in busy for i in asking.candidates):
        ordered = [candidates[i] for i in asking.candidates]
        index = parse_choice(message.body, [p.given_name for p in ordered])
        if index is not None:
            chosen = ordered[index]
            asking.status, asking.patient_id, asking.conversation_id = "chosen", chosen.id, busy[chosen.id].id
            message.kind, message.patient_id = "choice", chosen.id
            held = session.get(Message, asking.held_message_id) if asking.held_message_id else None
            if held is not None:
                held.patient_id, held.kind = chosen.id, "reply"
                _process(session, rt, held, chosen, now)  # the remembered choice routes it to the check-in
            return "chosen"
    verdict = rt.content.intents.assess(message.body, patient.language)
    if verdict.emergency or verdict.to_confirm or verdict.symptoms:
        return patient
    if asking is not None:
        asking.status = "replaced"
        earlier = session.get(Message, asking.held_message_id) if asking.held_message_id else None
        if earlier is not None:
            earlier.needs_review = True  # not lost: staff see the text that was never routed
    session.add(
        SharedPhoneChoice(
            phone=phone,
            status="asking",
            candidates=[p.id for p in in_check_in],
            held_message_id=message.id,
            created_at=now,
        )
    )
    message.kind = "held"
    program = session.get(Program, patient.program_id)
    assert program is not None
    body = which_person_text(program.name, [p.given_name for p in in_check_in], [p.language for p in in_check_in])
    queue_text(session, rt, to=phone, body=body, kind="system", patient=in_check_in[0], now=now)
    log.info("shared number %s: asked which person is answering", mask(phone))
    return "asked"


def _from_caregiver_outside(
    session: Session, rt: Runtime, patient: Patient, caregiver: Caregiver, message: Message, now: dt.datetime
) -> None:
    """A caregiver's text that answers no check-in: in the patient's inbox for staff; triage still runs, so a
    red flag the caregiver reports reaches a human (EMERGENCY, or URGENT for a mention to confirm: the
    "right now?" question is not put to a caregiver), and the 911 / 988 advice goes back to the caregiver."""
    from app.escalation.service import escalate_event

    decided = route(message.body, intents=rt.content.intents, language=caregiver.language)
    if decided.kind != "outside":
        return
    program = session.get(Program, patient.program_id)
    assert program is not None
    ctx = engine.PatientContext(
        first_name=patient.given_name,
        language=caregiver.language,
        program_name=program.name,
        program_phone=program.phone_display,
    )
    plan = outside_plan(decided, ctx, reachable=not caregiver.opted_out, notice_due=False)
    detail = {"from_caregiver": caregiver.id}
    if plan.flags:
        message.flags = [*plan.flags, f"caregiver:{caregiver.id}"]
    for event in plan.events:
        if isinstance(event, engine.Escalate):
            event = replace(event, detail={**event.detail, **detail})
            escalate_event(session, rt, patient, event, conversation_id=None, now=now)
    for finding in plan.confirm:
        urgent = engine.confirm_escalation(finding, {"outside_conversation": True, **detail})
        escalate_event(session, rt, patient, urgent, conversation_id=None, now=now)
    said = plan.said()
    if said and caregiver.active:
        kind = "emergency" if plan.emergency else "reply"
        reply = queue_text(session, rt, to=caregiver.phone, kind=kind, patient=patient, now=now, body="\n\n".join(said))
        reply.caregiver_id = caregiver.id


_FLAGGED_UNKNOWN = (
    select(Message)
    .where(
        Message.patient_id.is_(None),
        Message.direction == "inbound",
        Message.needs_review.is_(True),
        Message.flags.is_not(None),
    )
    .order_by(Message.created_at.desc(), Message.id.desc())
)


def flagged_unknown_senders(session: Session, limit: int = 50) -> list[Message]:
    """Texts from unknown numbers in which triage found a red flag or a mention to confirm, newest first,
    until staff mark them reviewed (the care-manager queue lists them above the escalations)."""
    rows = session.scalars(_FLAGGED_UNKNOWN.limit(limit)).all()
    return [m for m in rows if any(f.startswith(("red_flag:", "confirm:")) for f in m.flags or [])]


def mark_reviewed(session: Session, message: Message, user_id: int, now: dt.datetime) -> None:
    """Staff looked at a flagged inbound text: it leaves the queue; the audit keeps who and when."""
    from app.models import AuditEvent

    message.needs_review = False
    session.add(
        AuditEvent(user_id=user_id, action="message.reviewed", subject_type="message", subject_id=message.id, at=now)
    )


def _page_for_unknown_sender(session: Session, rt: Runtime, message_id: int, now: dt.datetime) -> None:
    """An unknown number's EMERGENCY: page every program's on-call number once (no PHI in the page)."""
    for program in session.scalars(select(Program).where(Program.on_call_phone.is_not(None)).order_by(Program.id)):
        assert program.on_call_phone is not None
        queue_text(
            session,
            rt,
            to=program.on_call_phone,
            body=unknown_sender_page(rt.settings.public_base_url),
            kind="page",
            patient=None,
            send_key=f"page:unknown:{message_id}:{program.id}",
            now=now,
        )
    log.warning("EMERGENCY words from an unknown number: message id=%s paged on-call", message_id)
