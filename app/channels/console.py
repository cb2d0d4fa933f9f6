"""The console channel: the embedded default. Outbound texts are recorded in SQL and shown in the
simulator page and the patient's timeline; nothing leaves the machine. A product feature, not a mock.

It behaves like a provider that keeps its own records: ``send`` writes the SID it hands out onto the
message row in a transaction of its own before answering (what Twilio's servers do on their side), so
after a worker dies between "accepted" and our recording of it, ``find_sent`` answers truthfully and the
sweeper reconciles the text instead of showing it twice. Sending the same row again returns the SID it
already has (the console never delivers a text twice).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.channels.base import OutboundText, SendResult
from app.channels.segments import segment_info
from app.models import Message


class ConsoleChannel:
    name = "console"

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def send(self, message: OutboundText) -> SendResult:
        segments = segment_info(message.body).segments
        sid = "CN" + uuid.uuid4().hex
        with self.sessions() as session, session.begin():
            taken = session.execute(
                update(Message)
                .where(Message.id == message.message_id, Message.provider_sid.is_(None))
                .values(provider_sid=sid)
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            ).first()
            if taken is None:
                existing = session.scalar(select(Message.provider_sid).where(Message.id == message.message_id))
                sid = existing or sid
        return SendResult(provider_sid=sid, status="delivered", segments=segments)

    def find_sent(self, message: OutboundText) -> list[SendResult]:
        """The text this channel accepted for this message row, if any (its SID is on the row)."""
        with self.sessions() as session:
            sid = session.scalar(
                select(Message.provider_sid).where(Message.id == message.message_id, Message.provider_sid.is_not(None))
            )
        if sid is None:
            return []
        return [SendResult(provider_sid=sid, status="delivered", segments=segment_info(message.body).segments)]
