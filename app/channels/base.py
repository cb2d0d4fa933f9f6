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


@dataclass(frozen=True)
class OutboundCall:
    """One try of an outbound call: Twilio fetches ``answer_url`` (TwiML) once answered and posts every
    status change to ``status_callback``; machine detection says who answered (``AnsweredBy``)."""

    call_id: int
    to: str
    answer_url: str
    status_callback: str
    #: When this try's create call began; a lookup after an ambiguous failure only matches calls since then.
    attempt_started_at: dt.datetime | None = None


@dataclass(frozen=True)
class PlacedCall:
    provider_sid: str
    status: str


class VoiceChannel(Protocol):
    name: str

    def place(self, call: OutboundCall) -> PlacedCall:
        """Raises :class:`SendError` (``ambiguous`` when the provider may have taken the call)."""
        ...

    def find_placed(self, call: OutboundCall) -> list[PlacedCall]:
        """Calls to the same number created since the attempt began, newest first (the caller drops SIDs
        already matched to another of our rows)."""
        ...
