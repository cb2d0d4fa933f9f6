"""The inbound-SMS webhook's common case answered below Flask (issue 8, "Scale").

Why: ``POST /twilio/sms`` is the one request whose volume grows with the number of patients, and its work
is small (signature, cleaning, one ``INSERT``, one Redis ``SET NX``). Through Flask it also pays for the
request context, the form parser, Flask-Limiter's route resolution, Flask-Login, the CSRF hook and the
browser security headers — more CPU than the work itself. This WSGI middleware (Flask's documented way
to wrap ``app.wsgi_app``) answers the one shape Twilio sends: a signed ``application/x-www-form-urlencoded``
POST with a storable ``MessageSid`` and a sender, on PostgreSQL.

Same behaviour by construction: it calls the same functions as the Flask view
(``signatures.form_signature_valid``, ``cleaning``, ``inbound.receive_sms``), and everything else —
another path, a missing or wrong signature, a body that does not parse strictly, a SID to refuse, a
missing sender, SQLite, any exception — is handed to the Flask app with the body intact, which gives its
usual answer (403, 400, 500 with its error page and logging). The insert is idempotent on the SID, so a
request handed over after an exception is stored once.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict

from app.channels.cleaning import BODY_MAX, PHONE_MAX, Refused, clean_text, provider_sid
from app.channels.signatures import form_signature_valid
from app.messaging.inbound import InboundText, is_enforced_keyword, receive_sms
from app.runtime import Runtime

log = logging.getLogger(__name__)

PATH = "/twilio/sms"
#: Larger bodies go through Flask (its MAX_CONTENT_LENGTH answers them): Twilio's are ~1 KB.
MAX_FAST_BODY = 16 * 1024
#: What the Flask view answers: Twilio's empty ``MessagingResponse`` (replies go out as REST sends).
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'
_HEADERS = [
    ("Content-Type", "text/xml; charset=utf-8"),
    ("Content-Length", str(len(EMPTY_TWIML))),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class InboundSmsFastPath:
    """Wraps the Flask app's ``wsgi_app``; see the module docstring for what it answers itself."""

    def __init__(self, inner: WSGIApp, rt: Runtime):
        self.inner = inner
        self.rt = rt
        self.enabled = rt.engine.dialect.name == "postgresql"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.enabled or environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.inner(environ, start_response)
        body = self._read_body(environ)
        if body is None:
            return self.inner(environ, start_response)
        try:
            handled = self._handle(environ, body)
        except Exception as exc:  # the Flask view redoes it (idempotent on the SID) and answers as usual
            log.warning("inbound sms fast path handed a request to the app: %s", type(exc).__name__)
            handled = False
        if not handled:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.inner(environ, start_response)
        start_response("200 OK", list(_HEADERS))
        return [EMPTY_TWIML]

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes | None:
        """The whole body when it is a form of a plausible size, else None (untouched: Flask reads it)."""
        content_type = str(environ.get("CONTENT_TYPE", "")).partition(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return None
        length = str(environ.get("CONTENT_LENGTH", ""))
        if not length.isdigit() or int(length) > MAX_FAST_BODY:
            return None
        body: bytes = environ["wsgi.input"].read(int(length))
        # Whatever happens next, the inner app can read the same bytes.
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _handle(self, environ: dict[str, Any], body: bytes) -> bool:
        """True when the text was stored (or was a duplicate) and the empty TwiML is the answer."""
        signature = str(environ.get("HTTP_X_TWILIO_SIGNATURE", ""))
        if not signature or not signature.isascii() or not body.isascii():
            return False
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True, errors="strict")
        except (ValueError, UnicodeError):
            return False
        form: MultiDict[str, str] = MultiDict(pairs)
        if any(not key for key in form):
            return False
        settings = self.rt.settings
        query = str(environ.get("QUERY_STRING", ""))
        url = settings.public_base_url.rstrip("/") + PATH + (f"?{query}" if query else "")
        if not settings.twilio_auth_token or not form_signature_valid(settings.twilio_auth_token, url, form, signature):
            return False
        field = "MessageSid" if form.get("MessageSid") else "SmsSid"
        try:
            sid = provider_sid(form.get(field, ""), field)
        except Refused:
            return False
        text = InboundText(
            sid=sid,
            from_number=clean_text(form.get("From", ""), PHONE_MAX).strip(),
            to_number=clean_text(form.get("To", ""), PHONE_MAX),
            body=clean_text(form.get("Body", ""), BODY_MAX),
            channel="sms",
        )
        if not text.sid or not text.from_number or is_enforced_keyword(text.body):
            return False
        result = receive_sms(self.rt, text, self.rt.now())
        log.info("inbound sms sid=%s outcome=%s", sid, result.outcome)
        return True
