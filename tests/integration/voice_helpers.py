"""Helpers for the voice tests: start a call the way the scheduler does, and drive it through the Flask test
client with the fake Twilio server's :class:`~tests.support.fake_twilio.PhoneCall` (signed webhooks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.messaging.calls import start_voice_checkin
from app.models import Call, Conversation, Escalation, Patient
from app.runtime import Runtime
from tests.support.fake_twilio import FakeTwilio, PhoneCall, Transport

#: 10:00 in New York: inside every patient's calling window.
MORNING = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)


def client_transport(client: FlaskClient) -> Transport:
    """Twilio's requests, into the app's test client (the signature still covers the public URL)."""

    def post(url: str, params: Mapping[str, str], signature: str) -> tuple[int, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = client.post(path, data=MultiDict(list(params.items())), headers={"X-Twilio-Signature": signature})
        return response.status_code, response.get_data(as_text=True)

    return post


def start_call(rt: Runtime, patient: Patient, now: dt.datetime, flow_id: str = "hf-daily-check") -> int:
    """Start a check-in by phone as a due touch would; returns the call's id (placed by the next jobs run)."""
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        conversation = start_voice_checkin(session, rt, owner, flow_id, now, send_key=f"test:{patient.id}:{now}")
        call_id = session.scalar(select(Call.id).where(Call.conversation_id == conversation.id))
        assert call_id is not None
        return call_id


def placed_call(
    rt: Runtime, fake: FakeTwilio, client: FlaskClient, run_jobs: Callable[[], int], patient: Patient
) -> PhoneCall:
    """Start a check-in call, run the jobs (the call is placed through the real client) and pick it up."""
    start_call(rt, patient, rt.now())
    run_jobs()
    calls = [c for c in fake.calls if c["To"] == patient.phone]
    assert calls, "no call was placed"
    return fake.phone_call(calls[-1]["sid"], client_transport(client))


def call_row(rt: Runtime, call_id: int | None = None, *, patient_id: int | None = None) -> Call:
    with rt.sessions() as session:
        query = select(Call).order_by(Call.id.desc())
        if call_id is not None:
            query = query.where(Call.id == call_id)
        if patient_id is not None:
            query = query.where(Call.patient_id == patient_id)
        row = session.scalars(query).first()
        assert row is not None
        return row


def conversations(rt: Runtime, patient_id: int) -> list[Conversation]:
    with rt.sessions() as session:
        query = select(Conversation).where(Conversation.patient_id == patient_id).order_by(Conversation.id)
        return list(session.scalars(query).all())


def escalations(rt: Runtime, patient_id: int) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id))
        return [(e.level, e.reason) for e in rows]
