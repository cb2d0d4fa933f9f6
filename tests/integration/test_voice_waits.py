"""A wait reached during a call (med-reminder's "2 = remind me in 30 minutes"): the call ends politely, the
conversation stays open, and after the wait the patient is contacted again exactly once — a new call, or a
text where the patient can no longer be called. Signed webhooks, real twilio client, the local Twilio server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.messaging.calls import start_voice_checkin
from app.models import Call, Patient, TimelineEvent
from app.runtime import Runtime
from tests.conftest import PatientFactory
from tests.integration.sms_helpers import AUTH, Clock, answers, inbound_params, install_clock, texts_to
from tests.integration.voice_helpers import MORNING, call_row, client_transport, conversations
from tests.support.fake_twilio import FakeTwilio, PhoneCall

Jobs = Callable[[], int]
Post = Callable[..., object]
#: 20:45 in New York (the test patients' zone): a snooze of 30 minutes ends at 21:15, after calling hours.
EVENING = dt.datetime(2026, 12, 1, 1, 45, tzinfo=dt.UTC)
#: The next morning, 09:00 in New York.
NEXT_MORNING = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
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


def _timeline(rt: Runtime, patient: Patient) -> list[TimelineEvent]:
    with rt.sessions() as session:
        return list(session.scalars(select(TimelineEvent).where(TimelineEvent.patient_id == patient.id)).all())


def test_a_snooze_into_calling_quiet_hours_is_texted_at_the_snooze_time_never_called_at_night(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    run_jobs: Jobs,
    make_patient: PatientFactory,
    post_twilio: Post,
) -> None:
    clock = install_clock(rt, EVENING)
    patient = make_patient(preferred_channel="voice")
    call = _snoozed_call(rt, client, fake_twilio, run_jobs, patient)
    heard = " ".join(call.heard())
    # Told on the call when and how the reminder comes; no "I will remind you in 30 minutes" by phone.
    assert "between 8:00 AM and 9:00 PM" in heard and "send you a text at 9:15 PM" in heard, heard
    assert "remind you in 30 minutes" not in heard and "Goodbye." in heard
    assert call.ended
    call.hang_up()
    run_jobs()
    assert texts_to(fake_twilio, patient.phone) == []  # nothing before the snooze is over
    clock.advance(dt.timedelta(minutes=31))
    _tick(client, clock)
    _tick(client, clock)
    run_jobs()
    (text,) = texts_to(fake_twilio, patient.phone)
    assert "metoprolol" in text and "Reply 1" in text
    assert len(_calls_to(fake_twilio, patient)) == 1  # no call at night
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.channel) == ("active", "sms")
    post_twilio("/twilio/sms", inbound_params(patient.phone, "1"))
    run_jobs()
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("dose", "later"), ("dose_retry", "taken")]
    clock.now = NEXT_MORNING
    _tick(client, clock)
    run_jobs()
    assert len(_calls_to(fake_twilio, patient)) == 1
    assert len(texts_to(fake_twilio, patient.phone)) == 2  # the reminder and "Great, thank you!"


def test_a_snooze_into_quiet_hours_with_no_way_to_remind_ends_the_dose_as_not_confirmed_in_spanish(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    clock = install_clock(rt, EVENING)
    patient = make_patient(preferred_channel="voice", language="es", sms_capable=False)
    call = _snoozed_call(rt, client, fake_twilio, run_jobs, patient)
    heard = " ".join(call.heard())
    assert "entre las 8:00 y las 21:00" in heard and "como se lo indicó su médico" in heard, heard
    assert "le recuerdo en 30 minutos" not in heard.lower() and "Adiós." in heard
    assert call.ended
    call.hang_up()
    run_jobs()
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.result) == ("expired", "not_confirmed")
    assert [(a.question_id, a.kind) for a in answers(rt, patient.id)] == [
        ("dose", "choice"),
        ("dose_retry", "unanswered"),
    ]
    (row,) = _timeline(rt, patient)
    assert (row.kind, row.code) == ("dose_not_confirmed", "wait_after_calling_hours")
    assert row.detail["conversation_id"] == conversation.id
    response = client.get(f"/api/v1/patients/{patient.id}/timeline", headers=AUTH)
    (shown,) = response.get_json()["events"]
    assert "calling hours" in shown["text"]["en"] and "horario de llamadas" in shown["text"]["es"]
    clock.advance(dt.timedelta(minutes=31))
    _tick(client, clock)
    clock.now = NEXT_MORNING
    _tick(client, clock)
    run_jobs()
    assert len(_calls_to(fake_twilio, patient)) == 1  # no content-free call in the morning
    assert texts_to(fake_twilio, patient.phone) == []


def test_a_reminder_texted_at_night_and_not_answered_is_not_reminded_stale_in_the_morning(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    """The texted reminder's own reminder (an hour later, 22:15) would wait for 08:00, after the dose is
    stale (2 h, DESIGN §4.2): "Reminder: time for your medicine (8:00 PM)" must not arrive at 8 am."""
    clock = install_clock(rt, EVENING)
    patient = make_patient(preferred_channel="voice")
    call = _snoozed_call(rt, client, fake_twilio, run_jobs, patient)
    call.hang_up()
    clock.advance(dt.timedelta(minutes=31))
    _tick(client, clock)
    run_jobs()
    assert len(texts_to(fake_twilio, patient.phone)) == 1
    for _ in range(4):  # through the night, an hour at a time
        clock.advance(dt.timedelta(hours=1))
        _tick(client, clock)
    clock.now = NEXT_MORNING
    _tick(client, clock)
    run_jobs()
    assert len(texts_to(fake_twilio, patient.phone)) == 1  # no stale reminder
    assert len(_calls_to(fake_twilio, patient)) == 1
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.result) == ("expired", "no_response")
    assert conversation.ended_at is not None and conversation.ended_at < NEXT_MORNING - dt.timedelta(hours=8)
    assert [(a.question_id, a.kind) for a in answers(rt, patient.id)] == [
        ("dose", "choice"),
        ("dose_retry", "unanswered"),
    ]
