"""Twilio's webhooks for SMS: signature first, then the form cleaned at the edge, then one service call.

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
