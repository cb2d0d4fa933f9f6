"""Calls on PostgreSQL + Redis with the real twilio client and the local Twilio server driving the signed
webhooks: voicemail, retries, hang-ups, read-backs, press 9, emergencies, replays, inbound calls, exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.messaging.calls import MAX_TRIES, place_call
from app.models import AuditEvent, Call, Conversation, Program
from app.runtime import Runtime
from tests.conftest import FROM_NUMBER, PatientFactory
from tests.integration.sms_helpers import (
    answers,
    install_clock,
    patient_row,
    signed_post,
    start_checkin,
    texts_to,
    transcript,
    wall_now,
)
from tests.integration.voice_helpers import (
    MORNING,
    call_row,
    client_transport,
    conversations,
    escalations,
    placed_call,
    start_call,
)
from tests.support.fake_twilio import FakeTwilio

Jobs = Callable[[], int]


def _values(rt: Runtime, patient_id: int) -> list[tuple[str, Any]]:
    return [(a.question_id, a.value) for a in answers(rt, patient_id)]


def test_an_answering_machine_gets_a_voicemail_without_phi_and_a_text(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer("machine_end_beep")
    assert call.ended and call.gather() is None
    (said,) = call.heard()
    assert said == "This is North Clinic calling for Maria. Please call us at 555-0100. Thank you."
    assert "weight" not in said.lower() and "heart" not in said.lower()
    assert call.hang_up() == 204
    run_jobs()
    (text,) = texts_to(fake_twilio, patient.phone)
    assert "We called you for your check-in" in text and "555-0100" in text
    row = call_row(rt, patient_id=patient.id)
    assert (row.status, row.answered_by) == ("voicemail", "machine_end_beep")
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.result) == ("expired", "no_response")


def test_no_text_after_a_voicemail_for_a_number_that_takes_no_texts(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice", sms_capable=False)
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer("machine_start")
    run_jobs()
    assert texts_to(fake_twilio, patient.phone) == []


def test_busy_is_tried_again_an_hour_later_then_the_check_in_is_missed(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    for attempt in range(1, MAX_TRIES + 1):
        assert len([c for c in fake_twilio.calls if c["To"] == patient.phone]) == attempt
        call = fake_twilio.phone_call(transport=client_transport(client))
        assert call.status("busy" if attempt % 2 else "no-answer") == 204
        row = call_row(rt, patient_id=patient.id)
        if attempt == MAX_TRIES:
            break
        assert row.status == "queued"
        assert row.next_try_at == clock.now + dt.timedelta(minutes=60)
        # Nothing happens before it is due; then the tick finds it.
        assert place_call(rt, row.id) == "not-yet"
        clock.advance(dt.timedelta(minutes=61))
        result = client.application.test_cli_runner().invoke(args=["tick", "--now", clock.now.isoformat()])
        assert result.exit_code == 0, result.output
        run_jobs()
    row = call_row(rt, patient_id=patient.id)
    assert (row.status, row.tries) == ("missed", MAX_TRIES)
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.result) == ("expired", "no_response")
    # A late callback for an earlier try changes nothing.
    assert call.status("completed") == 204
    assert call_row(rt, patient_id=patient.id).status == "missed"


def test_a_retry_due_after_the_window_waits_for_the_morning(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, dt.datetime(2026, 11, 30, 1, 30, tzinfo=dt.UTC))  # 20:30 in New York
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.status("no-answer")
    row = call_row(rt, patient_id=patient.id)
    assert row.next_try_at == dt.datetime(2026, 11, 30, 13, 0, tzinfo=dt.UTC)  # 08:00 the next morning


def test_hanging_up_mid_flow_keeps_the_answers_and_texts_the_patient(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.press("183")
    call.press("2")
    assert call.hang_up() == 204
    run_jobs()
    assert _values(rt, patient.id) == [("weight", 183.0), ("breath", False)]
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.status, conversation.result) == ("incomplete", "incomplete")
    (text,) = texts_to(fake_twilio, patient.phone)
    assert "We saved your answers" in text
    assert call_row(rt, patient_id=patient.id).status == "completed"
    assert call.hang_up() == 204  # a repeated callback: nothing twice
    run_jobs()
    assert len(texts_to(fake_twilio, patient.phone)) == 1


def test_low_confidence_speech_is_confirmed_before_it_is_saved(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.say("one eighty three", confidence=0.3)
    assert call.heard() == ["I heard 183. Press 1 if that is right, or 2 to try again."]
    gather = call.gather()
    assert gather is not None and gather.get("numDigits") == "1"
    assert answers(rt, patient.id) == []
    call.press("2")  # not right: the question again
    assert any("What is your weight" in line for line in call.heard())
    call.say("one eighty four", confidence=0.3)
    call.press("1")
    assert _values(rt, patient.id) == [("weight", 184.0)]
    assert any("short of breath" in line for line in call.heard())


def test_silence_is_asked_again_once_then_left_unanswered(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.redirect()  # the Gather timed out: the <Redirect> after it
    assert call.heard()[0] == "Sorry, I did not hear you."
    assert any("What is your weight" in line for line in call.heard())
    call.silence()  # actionOnEmptyResult: the action with nothing in it
    assert any("short of breath" in line for line in call.heard())
    assert [(a.question_id, a.kind) for a in answers(rt, patient.id)] == [("weight", "unanswered")]


def test_press_nine_opts_out_of_calls(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.press("9")
    assert call.heard() == ["You will not get more calls from us. Goodbye."]
    assert call.ended
    row = patient_row(rt, patient.id)
    assert row.voice_opted_out and not row.opted_out
    with rt.sessions() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == patient.id)).all()
    assert "patient.voice_opted_out" in actions
    (conversation,) = conversations(rt, patient.id)
    assert conversation.result == "opted_out_of_calls"
    shown = [m["body"] for m in transcript(client, patient.id).values()]
    assert "9" in shown and any("not get more calls" in b for b in shown)
    # The next check-in is a text, not a call.
    start_checkin(rt, patient, MORNING + dt.timedelta(days=1))
    run_jobs()
    assert len(fake_twilio.calls) == 1
    assert len(texts_to(fake_twilio, patient.phone)) == 1


def test_an_emergency_says_911_at_once_and_offers_the_nurse_line(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    with rt.sessions() as session, session.begin():
        session.execute(update(Program).values(nurse_line="+15550009999"))
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.say("I have crushing chest pain right now", confidence=0.2)  # low confidence: never held back
    assert any("Call 911 now" in line for line in call.heard())
    gather = call.gather()
    assert gather is not None and [s.text for s in gather] == ["To talk to a nurse now, press 0."]
    assert ("EMERGENCY", "chest_pain") in escalations(rt, patient.id)
    call.press("0")
    assert call.dial() == "+15550009999"
    assert call.heard() == ["Connecting you to a nurse now."]


def test_an_emergency_without_a_nurse_line_says_911_and_ends(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice", language="es")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.say("quiero matarme", confidence=0.9)
    assert any("988" in line for line in call.heard())
    assert call.ended
    levels = [level for level, _ in escalations(rt, patient.id)]
    assert "EMERGENCY" in levels


def test_a_replayed_gather_gets_the_same_twiml_and_is_applied_once(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    action = call.gather().get("action")  # type: ignore[union-attr]
    params = call._params("in-progress", {"Digits": "183"})
    first = call.press("183")
    again = call.replay(str(action), params)
    assert again == (200, first)
    # A different input for the same step is a replay too: the first one stands.
    other = call.replay(str(action), call._params("in-progress", {"Digits": "200"}))
    assert other == (200, first)
    assert _values(rt, patient.id) == [("weight", 183.0)]
    # The answer webhook replayed: the same opening, no second anything.
    status, body = call.replay(str(call.entry["Url"]), call._params("in-progress"))
    assert status == 200 and "What is your weight" in body
    # A step not asked yet: 404.
    ahead = str(action).replace("step=1", "step=7")
    assert call.replay(ahead, params)[0] == 404


def test_bad_or_unsigned_voice_webhooks_are_refused(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call_id = start_call(rt, patient, MORNING)
    token = fake_twilio.auth_token
    params = {"CallSid": "CA" + "1" * 32, "From": FROM_NUMBER, "To": patient.phone, "CallStatus": "in-progress"}
    for path in ("/twilio/voice", "/twilio/voice/gather", "/twilio/voice/status"):
        query = f"call={call_id}&step=1"
        assert signed_post(client, path, params, token="wrong", query=query).status_code == 403
        assert client.post(f"{path}?{query}", data=params).status_code == 403
    assert signed_post(client, "/twilio/voice/gather", params, token=token, query="call=x&step=1").status_code == 400
    assert signed_post(client, "/twilio/voice/gather", params, token=token, query="call=1").status_code == 400
    assert signed_post(client, "/twilio/voice/status", params, token=token, query="call=-1").status_code == 400
    assert signed_post(client, "/twilio/voice", params, token=token, query="call=99999").status_code == 404
    unknown_step = signed_post(client, "/twilio/voice/gather", params, token=token, query=f"call={call_id}&step=1")
    assert unknown_step.status_code == 404  # not this call's SID
    long_sid = {**params, "CallSid": "CA" + "x" * 200}
    assert signed_post(client, "/twilio/voice", long_sid, token=token, query=f"call={call_id}").status_code == 400
    nul = {**params, "SpeechResult": "yes\x00", "Confidence": "not a number"}
    odd = signed_post(client, "/twilio/voice/gather", nul, token=token, query=f"call={call_id}&step=0")
    assert odd.status_code == 404
    assert signed_post(client, "/twilio/voice/status", {"CallSid": ""}, token=token, query="call=1").status_code == 400


def test_an_unknown_caller_hears_the_generic_message(rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio) -> None:
    install_clock(rt, MORNING)
    params = {"CallSid": "CA" + "2" * 32, "From": "+12025550199", "To": FROM_NUMBER, "CallStatus": "ringing",
              "Direction": "inbound"}  # fmt: skip
    response = signed_post(client, "/twilio/voice", params, token=fake_twilio.auth_token)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "911" in body and "could not match this number" in body and "<Hangup" in body


def test_a_known_caller_can_ask_for_a_call_back(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    sid = "CA" + "3" * 32
    params = {"CallSid": sid, "From": patient.phone, "To": FROM_NUMBER, "CallStatus": "ringing", "Direction": "inbound"}
    response = signed_post(client, "/twilio/voice", params, token=fake_twilio.auth_token)
    body = response.get_data(as_text=True)
    assert "For today's check-in, press 1" in body
    with rt.sessions() as session:
        call = session.scalars(select(Call).where(Call.call_sid == sid)).one()
    response = signed_post(
        client, "/twilio/voice/gather", {**params, "Digits": "2"}, token=fake_twilio.auth_token,
        query=f"call={call.id}&step=1",
    )  # fmt: skip
    assert "call you back" in response.get_data(as_text=True)
    assert escalations(rt, patient.id) == [("ROUTINE", "callback_requested")]


def test_a_known_caller_picks_up_the_open_check_in(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    start_checkin(rt, patient, MORNING)
    run_jobs()
    sid = "CA" + "4" * 32
    params = {"CallSid": sid, "From": patient.phone, "To": FROM_NUMBER, "CallStatus": "ringing", "Direction": "inbound"}
    response = signed_post(client, "/twilio/voice", params, token=fake_twilio.auth_token)
    assert "What is your weight" in response.get_data(as_text=True)
    with rt.sessions() as session:
        call = session.scalars(select(Call).where(Call.call_sid == sid)).one()
        conversation = session.scalars(select(Conversation)).one()
    assert conversation.channel == "voice"
    signed_post(
        client, "/twilio/voice/gather", {**params, "Digits": "181"}, token=fake_twilio.auth_token,
        query=f"call={call.id}&step=1",
    )  # fmt: skip
    assert _values(rt, patient.id) == [("weight", 181.0)]


def test_a_call_whose_create_was_dropped_is_found_not_placed_twice(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    # The lookup matches calls by the fake's real creation time: the clock is the wall clock, and the
    # patient's zone one where it is midday now (inside the calling window whenever the test runs).
    clock = install_clock(rt, wall_now())
    offset = 12 - clock.now.hour
    offset = offset + 24 if offset < -12 else offset - 24 if offset > 14 else offset
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    patient = make_patient(preferred_channel="voice", timezone=zone)
    fake_twilio.fail_next("accept_then_drop")
    call_id = start_call(rt, patient, clock.now)
    run_jobs()
    row = call_row(rt, call_id)
    assert row.status == "queued" and (row.error_code or "").startswith("unconfirmed:")
    clock.advance(dt.timedelta(minutes=10))
    assert place_call(rt, call_id) == "reconciled"
    assert len(fake_twilio.calls) == 1
    assert call_row(rt, call_id).call_sid == fake_twilio.calls[0]["sid"]


def test_a_text_refused_as_not_mobile_goes_on_by_phone(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    fake_twilio.fail_for_number(patient.phone, "21614")
    start_checkin(rt, patient, MORNING)
    run_jobs()
    run_jobs()
    row = patient_row(rt, patient.id)
    assert not row.sms_capable and not row.phone_invalid
    (placed,) = [c for c in fake_twilio.calls if c["To"] == patient.phone]
    call = fake_twilio.phone_call(placed["sid"], client_transport(client))
    call.answer()
    assert any("What is your weight" in line for line in call.heard())


def test_calls_wait_for_the_patients_morning(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC))  # 22:00 in New York
    patient = make_patient(preferred_channel="voice")
    call_id = start_call(rt, patient, rt.now())
    run_jobs()
    assert fake_twilio.calls == []
    assert call_row(rt, call_id).next_try_at == dt.datetime(2026, 11, 30, 13, 0, tzinfo=dt.UTC)


def _break_the_conversation(rt: Runtime, patient_id: int) -> None:
    """A conversation whose step cannot run (its state names a node the flow does not have)."""
    with rt.sessions() as session, session.begin():
        conversation = session.scalars(select(Conversation).where(Conversation.patient_id == patient_id)).one()
        conversation.state = {**conversation.state, "node": "no-such-node"}


def test_a_step_that_fails_still_triages_and_never_answers_500(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    _break_the_conversation(rt, patient.id)
    call.say("I have chest pain right now", confidence=0.9)
    assert any("911" in line for line in call.heard())
    assert ("EMERGENCY", "chest_pain") in escalations(rt, patient.id)
    heard = [m for m in transcript(client, patient.id).values() if m["direction"] == "inbound"]
    assert heard and heard[-1]["needs_review"] is True

    other = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, other)
    call.answer()
    _break_the_conversation(rt, other.id)
    call.press("183")
    assert call.heard() == [
        "Sorry, something went wrong with this call. Your care team will see your answers. Goodbye."
    ]
    assert call.ended


def test_the_calls_per_second_limit_is_shared_by_every_worker(app_config: dict[str, Any]) -> None:
    """One call per second per account (TWILIO.md "Throughput"), reserved in Redis: two limiters (two
    workers) share one schedule."""
    from app.channels.rate_limit import build_call_limiter, call_key
    from app.config import Settings

    settings = Settings().with_overrides(
        {
            "channel": "twilio",
            "redis_url": app_config["redis_url"],
            "twilio_account_sid": app_config["twilio_account_sid"],
            "calls_per_second": 1.0,
        }
    )
    one, other = build_call_limiter(settings), build_call_limiter(settings)
    key = call_key(settings)
    first, second, third = one.reserve(key, 1), other.reserve(key, 1), one.reserve(key, 1)
    assert first.reserved and second.reserved and third.reserved
    assert first.wait_seconds < 0.5
    assert 0.5 < second.wait_seconds <= 1.0
    assert 1.5 < third.wait_seconds <= 2.0


def test_a_known_caller_takes_todays_check_in_from_the_menu(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, make_patient: PatientFactory
) -> None:
    from app.models import ScheduledTouch
    from app.scheduling.enrollments import enroll

    install_clock(rt, MORNING - dt.timedelta(hours=2))  # 08:00 in New York, before the 09:00 check-in
    patient = make_patient()
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "hf-remote-monitoring", MORNING.date(), rt.now())
    sid = "CA" + "5" * 32
    params = {"CallSid": sid, "From": patient.phone, "To": FROM_NUMBER, "CallStatus": "ringing", "Direction": "inbound"}
    signed_post(client, "/twilio/voice", params, token=fake_twilio.auth_token)
    with rt.sessions() as session:
        call = session.scalars(select(Call).where(Call.call_sid == sid)).one()
    response = signed_post(
        client, "/twilio/voice/gather", {**params, "Digits": "1"}, token=fake_twilio.auth_token,
        query=f"call={call.id}&step=1",
    )  # fmt: skip
    assert "What is your weight" in response.get_data(as_text=True)
    (conversation,) = conversations(rt, patient.id)
    assert (conversation.flow_id, conversation.channel, conversation.status) == ("hf-daily-check", "voice", "active")
    with rt.sessions() as session:
        touch = session.scalars(select(ScheduledTouch).where(ScheduledTouch.conversation_id == conversation.id)).one()
    assert (touch.status, touch.outcome) == ("done", "started_by_call")
    # The scheduler does not start it a second time.
    result = client.application.test_cli_runner().invoke(args=["tick", "--now", MORNING.isoformat()])
    assert result.exit_code == 0
    assert len(conversations(rt, patient.id)) == 1
    assert fake_twilio.messages == []
