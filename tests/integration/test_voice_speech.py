"""Speech at the keypad's questions, through the signed webhooks: "one" / "two" answer yes/no like the keys,
digits said one by one are one number, en and es."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from app.runtime import Runtime
from tests.conftest import PatientFactory
from tests.integration.sms_helpers import answers, install_clock
from tests.integration.voice_helpers import MORNING, placed_call
from tests.support.fake_twilio import FakeTwilio

Jobs = Callable[[], int]


@pytest.mark.parametrize(
    ("language", "weight", "breath"), [("en", "one eight three", "Two."), ("es", "uno ocho tres", "dos")]
)
def test_spoken_digits_and_spoken_keys_are_understood(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    run_jobs: Jobs,
    make_patient: PatientFactory,
    language: str,
    weight: str,
    breath: str,
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice", language=language)
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.say(weight, confidence=0.9)
    call.say(breath, confidence=0.9)
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("weight", 183.0), ("breath", False)]


def test_silence_after_a_reply_not_understood_apologises_once(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    call.say("banana")
    assert " ".join(call.heard()).count("Sorry") == 1
    call.redirect()  # silence
    heard = " ".join(call.heard())
    assert heard.count("Sorry") == 1 and "What is your weight" in heard
