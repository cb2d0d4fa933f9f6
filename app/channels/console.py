"""The console channel: the embedded default. Outbound texts are recorded in SQL and shown in the
simulator page and the patient's timeline; nothing leaves the machine. A product feature, not a mock."""

from __future__ import annotations

import uuid

from app.channels.base import OutboundText, SendResult
from app.channels.segments import segment_info


class ConsoleChannel:
    name = "console"

    def send(self, message: OutboundText) -> SendResult:
        return SendResult(
            provider_sid="CN" + uuid.uuid4().hex, status="delivered", segments=segment_info(message.body).segments
        )

    def find_sent(self, message: OutboundText) -> list[SendResult]:
        return []
