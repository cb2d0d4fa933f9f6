"""Twilio's webhooks for SMS: parse, call one service, answer TwiML. Signature checked first."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from app.channels.signatures import twilio_signed
from app.db import run_in_transaction
from app.inbound import receive_text
from app.message_status import apply_status
from app.runtime import Runtime

log = logging.getLogger(__name__)
bp = Blueprint("twilio", __name__, url_prefix="/twilio")


def _runtime() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


def _twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


@bp.post("/sms")
@twilio_signed
def inbound_sms() -> Response:
    rt = _runtime()
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    sender = request.form.get("From", "")
    if not sid or not sender:
        return _twiml(str(MessagingResponse()))
    result = run_in_transaction(
        rt.sessions,
        lambda session: receive_text(
            session,
            rt,
            sid=sid,
            from_number=sender,
            to_number=request.form.get("To", ""),
            body=request.form.get("Body", ""),
            channel="sms",
            now=rt.now(),
        ),
    )
    log.info("inbound sms sid=%s outcome=%s", sid, result.outcome)
    # Replies go out as REST sends (queued in the same transaction): one tracked, retried path for all texts.
    return _twiml(str(MessagingResponse()))


@bp.post("/sms/status")
@twilio_signed
def sms_status() -> Response:
    rt = _runtime()
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    status = request.form.get("MessageStatus") or request.form.get("SmsStatus") or ""
    mid = request.args.get("mid", "")
    with rt.sessions() as session, session.begin():
        apply_status(
            session,
            sid=sid,
            status=status,
            error_code=request.form.get("ErrorCode") or None,
            message_id=int(mid) if mid.isdigit() else None,
            now=rt.now(),
        )
    return Response(status=204)
