"""Twilio's webhooks for SMS and voice: signature first, then the form cleaned at the edge, then one service call.

Store first, then process (issue 8, item 1): ``/twilio/sms`` commits the inbound row (once per SID) and
answers 200; the conversation step runs after that commit, in the job ``app.tasks.process_pending_inbound``
(batches of pending texts; ``app.tasks.process_inbound`` for one text; in-process in the demo), so
nothing a patient sends is lost to a failure of the step, and Twilio, which does not retry SMS webhooks,
never sees a 500 for one. What a request may carry is cleaned once here
(app/channels/cleaning.py): a SID that cannot be stored as it is gets 400 and is logged by its hash.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from app.channels.cleaning import (
    BODY_MAX,
    ERROR_CODE_MAX,
    PHONE_MAX,
    STATUS_MAX,
    Refused,
    clean_text,
    provider_sid,
    row_id,
)
from app.channels.signatures import twilio_signed
from app.channels.voice_twiml import render
from app.db import run_in_transaction
from app.messaging.call_turns import GatherResult, VoiceAnswer, answer_inbound, answer_outbound, gather_safely
from app.messaging.calls import gather_url, handle_status
from app.messaging.inbound import InboundText, receive_sms
from app.messaging.status import apply_status
from app.runtime import Runtime

log = logging.getLogger(__name__)
bp = Blueprint("twilio", __name__, url_prefix="/twilio")


def _runtime() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


def _twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def _refused(path: str, refused: Refused) -> Response:
    log.warning("%s refused: %s %s (sha256 %s)", path, refused.field, refused.why, refused.digest)
    return Response(f"{refused.field}: {refused.why}\n", status=400, mimetype="text/plain")


def _sid() -> str:
    """``MessageSid`` (or the older ``SmsSid``), refused whole when it cannot be stored as it is."""
    field = "MessageSid" if request.form.get("MessageSid") else "SmsSid"
    return provider_sid(request.form.get(field, ""), field)


@bp.post("/sms")
@twilio_signed
def inbound_sms() -> Response:
    rt = _runtime()
    try:
        sid = _sid()
    except Refused as refused:
        return _refused(request.path, refused)
    text = InboundText(
        sid=sid,
        from_number=clean_text(request.form.get("From", ""), PHONE_MAX).strip(),
        to_number=clean_text(request.form.get("To", ""), PHONE_MAX),
        body=clean_text(request.form.get("Body", ""), BODY_MAX),
        channel="sms",
    )
    if not text.sid or not text.from_number:
        return _twiml(str(MessagingResponse()))
    result = receive_sms(rt, text, rt.now())
    log.info("inbound sms sid=%s outcome=%s", sid, result.outcome)
    # Replies go out as REST sends, queued by the processing job: one tracked, retried path for all texts.
    return _twiml(str(MessagingResponse()))


@bp.post("/sms/status")
@twilio_signed
def sms_status() -> Response:
    rt = _runtime()
    try:
        sid = _sid()
    except Refused as refused:
        return _refused(request.path, refused)
    if not sid:
        return Response(status=204)
    status = clean_text(request.form.get("MessageStatus") or request.form.get("SmsStatus") or "", STATUS_MAX)
    error_code = clean_text(request.form.get("ErrorCode") or "", ERROR_CODE_MAX) or None
    with rt.sessions() as session, session.begin():
        apply_status(
            session,
            sid=sid,
            status=status,
            error_code=error_code,
            message_id=row_id(request.args.get("mid")),
            now=rt.now(),
        )
    return Response(status=204)


# ------------------------------------------------------------------------------------------------ voice
# Every /twilio/voice* request: signature first (403), the form cleaned, one service call in one
# transaction that locks the call's row, so a replayed request is answered from what was stored and
# applied once (app/messaging/call_turns.py). Bad ids or a step not asked yet: a defined 4xx, never a 500.
_VOICE_FIELD_MAX = 400
_SPEECH_MAX = 1000
_STEP_MAX = 10_000


def _step(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 5:
        return None
    number = int(value)
    return number if number <= _STEP_MAX else None


def _call_sid() -> str:
    return provider_sid(request.form.get("CallSid", ""), "CallSid")


def _voice_twiml(answer: VoiceAnswer | None) -> Response:
    rt = _runtime()
    if answer is None:
        return Response("unknown call or step\n", status=404, mimetype="text/plain")
    return _twiml(render(answer.turn, gather_url(rt, answer.call_id, answer.step)))


@bp.post("/voice")
@twilio_signed
def voice_answer() -> Response:
    """An answered outbound call (``?call=<id>``, with ``AnsweredBy``) or an incoming call."""
    rt = _runtime()
    try:
        call_sid = _call_sid()
    except Refused as refused:
        return _refused(request.path, refused)
    if not call_sid:
        return Response("CallSid is required\n", status=400, mimetype="text/plain")
    now = rt.now()
    answered_by = clean_text(request.form.get("AnsweredBy", ""), 32) or None
    if "call" in request.args:
        call_id = row_id(request.args.get("call"))
        if call_id is None:
            return Response("call: not an id\n", status=400, mimetype="text/plain")
        answer = run_in_transaction(
            rt.sessions,
            lambda session: answer_outbound(
                session, rt, call_id=call_id, call_sid=call_sid, answered_by=answered_by, now=now
            ),
        )
        return _voice_twiml(answer)
    from_number = clean_text(request.form.get("From", ""), PHONE_MAX).strip()
    to_number = clean_text(request.form.get("To", ""), PHONE_MAX).strip()
    inbound = run_in_transaction(
        rt.sessions,
        lambda session: answer_inbound(
            session, rt, call_sid=call_sid, from_number=from_number, to_number=to_number, now=now
        ),
    )
    return _voice_twiml(inbound)


@bp.post("/voice/gather")
@twilio_signed
def voice_gather() -> Response:
    """A ``<Gather>`` result (``Digits``, or ``SpeechResult`` + ``Confidence``) or the nurse line's ``<Dial>``
    outcome (``DialCallStatus``) for ``?call=<id>&step=<n>``."""
    rt = _runtime()
    call_id = row_id(request.args.get("call"))
    step = _step(request.args.get("step"))
    if call_id is None or step is None:
        return Response("call and step are required\n", status=400, mimetype="text/plain")
    try:
        call_sid = _call_sid()
    except Refused as refused:
        return _refused(request.path, refused)
    heard = GatherResult(
        digits=clean_text(request.form.get("Digits", ""), 32).strip() or None,
        speech=clean_text(request.form.get("SpeechResult", ""), _SPEECH_MAX).strip() or None,
        confidence=clean_text(request.form.get("Confidence", ""), 32).strip() or None,
        dial_status=clean_text(request.form.get("DialCallStatus", ""), 32).strip() or None,
    )
    answer = gather_safely(rt, call_id=call_id, step=step, call_sid=call_sid, heard=heard, now=rt.now())
    return _voice_twiml(answer)


@bp.post("/voice/status")
@twilio_signed
def voice_status() -> Response:
    """A call status callback (``CallStatus``, ``AnsweredBy``) for ``?call=<id>``; 204 once applied."""
    rt = _runtime()
    call_id = row_id(request.args.get("call"))
    if call_id is None:
        return Response("call: not an id\n", status=400, mimetype="text/plain")
    try:
        call_sid = _call_sid()
    except Refused as refused:
        return _refused(request.path, refused)
    status = clean_text(request.form.get("CallStatus", ""), STATUS_MAX).strip()
    if not call_sid or not status:
        return Response("CallSid and CallStatus are required\n", status=400, mimetype="text/plain")
    answered_by = clean_text(request.form.get("AnsweredBy", ""), 32).strip() or None
    now = rt.now()
    outcome = run_in_transaction(
        rt.sessions,
        lambda session: handle_status(
            session, rt, call_id=call_id, call_sid=call_sid, call_status=status, answered_by=answered_by, now=now
        ),
    )
    log.info("call status call id=%s status=%s outcome=%s", call_id, status, outcome)
    return Response(status=204)
