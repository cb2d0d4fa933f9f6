"""Placing calls with Twilio's REST API (``Calls.json``) through the real ``twilio`` client.

Answering-machine detection is on (``machine_detection="Enable"``, synchronous): the answer webhook then
carries ``AnsweredBy`` (human, machine_start, machine_end_*, fax, unknown). Status callbacks are asked for
the final states (completed, busy, no-answer, failed, canceled come as ``completed`` events with their
``CallStatus``) and ``answered``.
"""

from __future__ import annotations

import datetime as dt
import logging

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from app.channels.base import OutboundCall, PlacedCall, SendError
from app.channels.twilio_sms import RETRYABLE_CODES, build_client
from app.config import Settings

log = logging.getLogger(__name__)


class TwilioVoiceChannel:
    name = "voice"

    def __init__(self, settings: Settings, client: Client | None = None):
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            raise ValueError("OUTREACH_CHANNEL=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self.settings = settings
        self.client = client or build_client(settings, timeout=settings.twilio_timeout_seconds)

    def place(self, call: OutboundCall) -> PlacedCall:
        if not self.settings.twilio_from_number:
            raise SendError("no caller id: TWILIO_FROM_NUMBER", code=None, http_status=None, retryable=False)
        try:
            created = self.client.calls.create(
                to=call.to,
                from_=self.settings.twilio_from_number,
                url=call.answer_url,
                method="POST",
                status_callback=call.status_callback,
                status_callback_method="POST",
                status_callback_event=["answered", "completed"],
                machine_detection="Enable",
            )
        except TwilioRestException as exc:
            status = exc.status
            retryable = status == 429 or status >= 500 or (exc.code in RETRYABLE_CODES)
            raise SendError(
                f"twilio refused: {exc.code}", code=exc.code, http_status=status, retryable=retryable,
                ambiguous=status >= 500,
            ) from None  # fmt: skip
        except TwilioException as exc:
            raise SendError(
                f"twilio error: {type(exc).__name__}", code=None, http_status=None, retryable=True, ambiguous=True
            ) from None
        except requests.RequestException as exc:
            sure_not_sent = isinstance(exc, requests.ConnectTimeout) or (
                isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower()
            )
            raise SendError(
                f"network: {type(exc).__name__}", code=None, http_status=None, retryable=True,
                ambiguous=not sure_not_sent,
            ) from None  # fmt: skip
        return PlacedCall(provider_sid=str(created.sid), status=str(created.status))

    def find_placed(self, call: OutboundCall) -> list[PlacedCall]:
        """Calls to this number created since the attempt began (a minute of slack), newest first."""
        since = (call.attempt_started_at or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=1)
        try:
            recent = self.client.calls.list(to=call.to, limit=50)
        except (TwilioException, requests.RequestException):
            log.warning("could not look up earlier calls for call id=%s", call.call_id)
            raise SendError("lookup failed", code=None, http_status=None, retryable=True, ambiguous=True) from None
        found = []
        for placed in recent:
            created = placed.date_created
            if created is None or (created.tzinfo is not None and created < since):
                continue
            if (placed.direction or "").startswith("outbound"):
                found.append(PlacedCall(provider_sid=str(placed.sid), status=str(placed.status)))
        return found


class ConsoleVoiceChannel:
    """The embedded demo: a call is recorded as placed and goes no further (the simulator plays calls)."""

    name = "voice"

    def place(self, call: OutboundCall) -> PlacedCall:
        return PlacedCall(provider_sid=f"CAconsole{call.call_id:023d}", status="queued")

    def find_placed(self, call: OutboundCall) -> list[PlacedCall]:
        return []
