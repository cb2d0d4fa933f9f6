"""A whole hf-daily-check by phone, end to end: the call placed with the real twilio client against the
local Twilio server, which then drives it through the signed /twilio/voice* webhooks (keypad and speech),
on PostgreSQL and Redis; the same answers and escalations as by SMS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.runtime import Runtime
from tests.conftest import FROM_NUMBER, PatientFactory
from tests.integration.sms_helpers import answers, install_clock, new_sid, start_checkin, transcript
from tests.integration.voice_helpers import MORNING, call_row, conversations, escalations, placed_call
from tests.support.fake_twilio import FakeTwilio

KEYS = ["183", "2", "2", "1", "2", "2", "2", "2"]
WORDS = ["one eighty three", "no", "no", "yes", "no", "no", "no", "no"]
TEXTS = ["183", "no", "no", "yes", "no", "no", "no", "no"]


def _values(rt: Runtime, patient_id: int) -> list[tuple[str, Any]]:
    return [(a.question_id, a.value) for a in answers(rt, patient_id)]


def test_a_whole_check_in_by_keypad_and_by_speech_matches_sms(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    run_jobs: Callable[[], int],
    make_patient: PatientFactory,
    post_twilio: Callable[..., Any],
) -> None:
    install_clock(rt, MORNING)
    by_keys = make_patient(preferred_channel="voice")
    by_voice = make_patient(preferred_channel="voice")
    by_text = make_patient()

    call = placed_call(rt, fake_twilio, client, run_jobs, by_keys)
    placed = fake_twilio.calls[-1]
    assert placed["MachineDetection"] == "Enable"
    assert placed["Url"].startswith("https://outreach.example.org/twilio/voice?call=")
    assert placed["StatusCallback"].startswith("https://outreach.example.org/twilio/voice/status?call=")
    call.answer("human")
    assert "What is your weight" in " ".join(call.heard())
    assert " ".join(call.heard()).count("To stop these calls, press 9.") == 1
    for key in KEYS:
        assert call.gather() is not None
        call.press(key)
    assert call.ended
    assert any("Thank you, Maria" in line for line in call.heard())
    assert call.hang_up() == 204

    call = placed_call(rt, fake_twilio, client, run_jobs, by_voice)
    call.answer("human")
    for words in WORDS:
        call.say(words, confidence=0.9)
    assert call.ended
    call.hang_up()

    start_checkin(rt, by_text, MORNING)
    for body in TEXTS:
        post_twilio("/twilio/sms", {"MessageSid": new_sid(), "From": by_text.phone, "To": FROM_NUMBER, "Body": body})

    expected = _values(rt, by_text.id)
    assert len(expected) == 8
    assert _values(rt, by_keys.id) == expected
    assert _values(rt, by_voice.id) == expected
    assert escalations(rt, by_keys.id) == escalations(rt, by_text.id) == escalations(rt, by_voice.id)
    assert escalations(rt, by_keys.id) == [("URGENT", "swelling")]
    assert {a.channel for a in answers(rt, by_keys.id)} == {"voice"}
    for patient in (by_keys, by_voice):
        (conversation,) = conversations(rt, patient.id)
        assert (conversation.status, conversation.channel) == ("completed", "voice")
        assert call_row(rt, patient_id=patient.id).status == "completed"
    # The call's transcript is on the timeline: what was said and what was heard.
    shown = transcript(client, by_voice.id).values()
    assert any(m["direction"] == "inbound" and m["body"] == "one eighty three" for m in shown)
    assert all(m["channel"] == "voice" for m in shown)
    # Nothing was texted to the patients who were called.
    assert not [m for m in fake_twilio.messages if m["To"] in {by_keys.phone, by_voice.phone}]


@pytest.mark.parametrize("language", ["es"])
def test_a_spanish_caller(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    run_jobs: Callable[[], int],
    make_patient: PatientFactory,
    language: str,
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice", language=language)
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    gather = call.gather()
    assert gather is not None and gather.get("language") == "es-US"
    assert {say.get("voice") for say in call.document.iter("Say")} == {"Polly.Lupe-Neural"}
    heard = " ".join(call.heard())
    assert heard.count("Para no recibir más llamadas, oprima 9.") == 1
    call.say("ciento ochenta y tres", confidence=0.95)
    for words in ["no", "no", "no", "no", "no", "no", "no"]:
        call.say(words, confidence=0.95)
    assert call.ended
    assert any(line.startswith("Gracias") for line in call.heard())
    assert _values(rt, patient.id)[0] == ("weight", 183.0)
