"""Sending texts with Twilio's REST API through the real ``twilio`` client."""

from __future__ import annotations

import datetime as dt
import logging

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from app.channels.base import OutboundText, SendError, SendResult
from app.channels.twilio_http import RedirectingHttpClient
from app.config import Settings

log = logging.getLogger(__name__)
# The library logs request parameters at INFO; bodies and numbers must never reach our logs.
logging.getLogger("twilio").setLevel(logging.WARNING)

RETRYABLE_CODES = {20429, 20500, 20503, 30022, 30023}


def build_client(settings: Settings, *, timeout: float = 10.0) -> Client:
    if settings.twilio_api_base_url:
        http_client = RedirectingHttpClient(settings.twilio_api_base_url, timeout=timeout)
        return Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http_client, environment={})
    from twilio.http.http_client import TwilioHttpClient

    return Client(
        settings.twilio_account_sid, settings.twilio_auth_token, http_client=TwilioHttpClient(timeout=timeout)
    )


class TwilioSmsChannel:
    name = "sms"

    def __init__(self, settings: Settings, client: Client | None = None):
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            raise ValueError("OUTREACH_CHANNEL=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if not settings.twilio_from_number and not settings.twilio_messaging_service_sid:
            raise ValueError("OUTREACH_CHANNEL=twilio needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        self.settings = settings
        self.client = client or build_client(settings, timeout=settings.twilio_timeout_seconds)

    def send(self, message: OutboundText) -> SendResult:
        sender: dict[str, str]
        if message.sender:  # the program's own number or Messaging Service
            sender = (
                {"messaging_service_sid": message.sender}
                if message.sender.startswith("MG")
                else {"from_": message.sender}
            )
        elif self.settings.twilio_messaging_service_sid:
            sender = {"messaging_service_sid": self.settings.twilio_messaging_service_sid}
        else:
            sender = {"from_": self.settings.twilio_from_number}
        try:
            created = self.client.messages.create(
                to=message.to, body=message.body, status_callback=message.status_callback, **sender
            )
        except TwilioRestException as exc:
            status = exc.status
            retryable = status == 429 or status >= 500 or (exc.code in RETRYABLE_CODES)
            raise SendError(
                f"twilio refused: {exc.code}",
                code=exc.code,
                http_status=status,
                retryable=retryable,
                ambiguous=status >= 500,
            ) from None
        except TwilioException as exc:
            raise SendError(
                f"twilio error: {type(exc).__name__}", code=None, http_status=None, retryable=True, ambiguous=True
            ) from None
        except requests.RequestException as exc:
            # A refused connection never reached Twilio; anything later (a timeout, a dropped answer) may have.
            sure_not_sent = isinstance(exc, requests.ConnectTimeout) or (
                isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower()
            )
            raise SendError(
                f"network: {type(exc).__name__}",
                code=None,
                http_status=None,
                retryable=True,
                ambiguous=not sure_not_sent,
            ) from None
        segments = int(created.num_segments) if created.num_segments else None
        return SendResult(provider_sid=str(created.sid), status=str(created.status), segments=segments)

    def find_sent(self, message: OutboundText) -> list[SendResult]:
        """After a crash or a broken connection: which texts did Twilio take that may be this one?

        Matches the number, the exact body and a creation time after the attempt began, so yesterday's
        identical check-in is never mistaken for today's.
        """
        since = (message.attempt_started_at or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=1)
        try:
            recent = self.client.messages.list(to=message.to, date_sent_after=since, limit=50)
        except (TwilioException, requests.RequestException):
            log.warning("could not look up earlier sends for message id=%s", message.message_id)
            raise SendError("lookup failed", code=None, http_status=None, retryable=True, ambiguous=True) from None
        matches = []
        for sent in recent:
            created = sent.date_created
            if created is not None and created.tzinfo is not None and created < since:
                continue
            if sent.body == message.body and (sent.direction or "").startswith("outbound"):
                matches.append(
                    SendResult(
                        provider_sid=str(sent.sid),
                        status=str(sent.status),
                        segments=int(sent.num_segments) if sent.num_segments else None,
                    )
                )
        return matches
