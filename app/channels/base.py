"""The one small interface every outbound channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundText:
    message_id: int
    to: str
    body: str
    send_key: str
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider_sid: str
    status: str
    segments: int | None = None


class SendError(Exception):
    """A send that did not go out. ``retryable`` says whether trying again can help.

    ``code`` is the provider's error code (Twilio: 21610 opted out, 21211 invalid number, …).
    """

    def __init__(self, message: str, *, code: int | None, http_status: int | None, retryable: bool):
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.retryable = retryable


class Channel(Protocol):
    name: str

    def send(self, message: OutboundText) -> SendResult: ...

    def find_sent(self, message: OutboundText) -> SendResult | None:
        """Look for a message the provider already accepted for this intent (after a crash)."""
        ...
