"""A wait reached during a call (med-reminder's "2 = remind me in 30 minutes"): the call ends politely, the
conversation stays open, and after the wait the patient is contacted again exactly once — a new call, or a
text where the patient can no longer be called. Signed webhooks, real twilio client, the local Twilio server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.messaging.calls import start_voice_checkin
from app.models import Call, Patient
from app.runtime import Runtime
from tests.conftest import PatientFactory
from tests.integration.sms_helpers import Clock, answers, install_clock, texts_to
from tests.integration.voice_helpers import MORNING, call_row, client_transport, conversations
from tests.support.fake_twilio import FakeTwilio, PhoneCall

Jobs = Callable[[], int]
DOSE = {"medication_name": "metoprolol", "dose_time": "10:00"}


def _start_med_reminder(rt: Runtime, patient: Patient, now: dt.datetime) -> None:
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        start_voice_checkin(session, rt, owner, "med-reminder", now, send_key=f"med:{patient.id}", variables=DOSE)


def _tick(client: FlaskClient, clock: Clock) -> None:
    result = client.application.test_cli_runner().invoke(args=["tick", "--now", clock.now.isoformat()])
    assert result.exit_code == 0, result.output


def _calls_to(fake: FakeTwilio, patient: Patient) -> list[str]:
    return [str(c["sid"]) for c in fake.calls if c["To"] == patient.phone]


def _snoozed_call(
    rt: Runtime, client: FlaskClient, fake: FakeTwilio, run_jobs: Jobs, patient: Patient, language: str = "en"
) -> PhoneCall:
    _start_med_reminder(rt, patient, rt.now())
    run_jobs()
    (sid,) = _calls_to(fake, patient)
    call = fake.phone_call(sid, client_transport(client))
    call.answer()
    call.press("2")
    return call


def test_remind_me_in_30_minutes_ends_the_call_and_calls_again_once(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = _snoozed_call(rt, client, fake_twilio, run_jobs, patient)
    heard = " ".join(call.heard())
    assert "remind you in 30 minutes" in heard and "Goodbye." in heard
    assert call.ended and call.gather() is None  # not left listening
    assert call.hang_up() == 204
    run_jobs()
    (conversation,) = conversations(rt, patient.id)
    assert conversation.status == "active"  # not "incomplete": it waits, nothing is lost
    assert texts_to(fake_twilio, patient.phone) == []  # no "your call ended before the check-in was done"
    clock.advance(dt.timedelta(minutes=20))
    _tick(client, clock)
    run_jobs()
    assert len(_calls_to(fake_twilio, patient)) == 1
    clock.advance(dt.timedelta(minutes=11))
    _tick(client, clock)
    _tick(client, clock)  # a second tick (another scheduler) starts nothing more
    run_jobs()
    calls = _calls_to(fake_twilio, patient)
    assert len(calls) == 2
    again = fake_twilio.phone_call(calls[-1], client_transport(client))
    again.answer()
    heard = " ".join(again.heard())
    assert "Did you take it" in heard and "metoprolol" in heard
    again.press("1")
    assert any("Thank you" in line or "thank you" in line for line in again.heard())
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("dose", "later"), ("dose_retry", "taken")]
    again.hang_up()
    clock.advance(dt.timedelta(hours=3))
    _tick(client, clock)
    run_jobs()
    assert len(_calls_to(fake_twilio, patient)) == 2  # exactly once
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.result) == ("completed", "completed")


def test_after_the_wait_a_patient_who_stopped_calls_gets_a_text_in_spanish(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice", language="es")
    call = _snoozed_call(rt, client, fake_twilio, run_jobs, patient)
    assert "le recuerdo en 30 minutos" in " ".join(call.heard()).lower()
    assert call.ended
    call.hang_up()
    with rt.sessions() as session, session.begin():
        session.execute(update(Patient).where(Patient.id == patient.id).values(voice_opted_out=True))
    clock.advance(dt.timedelta(minutes=31))
    _tick(client, clock)
    _tick(client, clock)
    run_jobs()
    assert len(_calls_to(fake_twilio, patient)) == 1
    (text,) = texts_to(fake_twilio, patient.phone)
    assert "metoprolol" in text and "Responda 1" in text
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.channel) == ("active", "sms")
    with rt.sessions() as session:
        assert session.scalar(select(Call.id).where(Call.patient_id == patient.id, Call.status == "queued")) is None
    assert call_row(rt, patient_id=patient.id).status == "completed"
