"""The one small interface every outbound channel implements."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundText:
    message_id: int
    to: str
    body: str
    send_key: str
    status_callback: str | None = None
    #: When this delivery attempt began; a crash-recovery lookup only matches texts sent after it.
    attempt_started_at: dt.datetime | None = None
    #: The program's own sender (an E.164 number, or a Messaging Service SID "MG..."); None = the deployment's.
    sender: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider_sid: str
    status: str
    segments: int | None = None


class SendError(Exception):
    """A send that did not go out. ``retryable`` says whether trying again can help.

    ``code`` is the provider's error code (Twilio: 21610 opted out, 21211 invalid number, …).
    """

    def __init__(
        self, message: str, *, code: int | None, http_status: int | None, retryable: bool, ambiguous: bool = False
    ):
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        #: The provider may have taken the message (the connection broke after the request was sent):
        #: look it up before sending again.
        self.ambiguous = ambiguous


class Channel(Protocol):
    name: str

    def send(self, message: OutboundText) -> SendResult: ...

    def find_sent(self, message: OutboundText) -> list[SendResult]:
        """Texts the provider accepted that may be this one (same number and body, sent since the attempt
        began), newest first. The caller drops those already matched to another of our rows."""
        ...
