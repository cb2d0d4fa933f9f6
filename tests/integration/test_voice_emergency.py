"""After an EMERGENCY on a call: the nurse line is dialled with a timeout and an action, so a nurse line that
does not answer is told to the caller (911 advice, the care team alerted); a reply that is not a nurse word is
asked once more before the call ends, never a silent hang-up. Signed webhooks, real twilio client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from app.models import Program
from app.runtime import Runtime
from tests.conftest import PatientFactory
from tests.integration.sms_helpers import install_clock
from tests.integration.voice_helpers import MORNING, escalations, placed_call
from tests.support.fake_twilio import FakeTwilio, PhoneCall

Jobs = Callable[[], int]
NURSE = "+15550009999"
CHEST_PAIN = {"en": "I have crushing chest pain right now", "es": "tengo un dolor fuerte en el pecho ahora mismo"}


def _emergency_call(
    rt: Runtime, client: FlaskClient, fake: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory, language: str
) -> tuple[PhoneCall, int]:
    install_clock(rt, MORNING)
    with rt.sessions() as session, session.begin():
        session.execute(update(Program).values(nurse_line=NURSE))
    patient = make_patient(preferred_channel="voice", language=language)
    call = placed_call(rt, fake, client, run_jobs, patient)
    call.answer()
    call.say(CHEST_PAIN[language])
    assert any("911" in line for line in call.heard())
    return call, patient.id


@pytest.mark.parametrize(
    ("language", "status", "told"),
    [
        ("en", "no-answer", ["care team", "911"]),
        ("en", "busy", ["care team", "911"]),
        ("es", "no-answer", ["equipo de salud", "911"]),
        ("es", "failed", ["equipo de salud", "911"]),
    ],
)
def test_a_nurse_line_that_does_not_answer_is_told_with_the_911_advice(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    run_jobs: Jobs,
    make_patient: PatientFactory,
    language: str,
    status: str,
    told: list[str],
) -> None:
    call, patient_id = _emergency_call(rt, client, fake_twilio, run_jobs, make_patient, language)
    call.press("0")
    assert call.dial() == NURSE
    dial = call.document.find("Dial")
    assert dial is not None and int(dial.get("timeout", "0")) > 0 and dial.get("action")
    call.dial_ended(status)
    heard = " ".join(call.heard())
    for fragment in told:
        assert fragment in heard
    assert call.ended
    assert ("EMERGENCY", "chest_pain") in escalations(rt, patient_id)  # still open: a nurse follows up


def test_a_nurse_who_answered_ends_the_call_without_the_unreached_message(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    call, _ = _emergency_call(rt, client, fake_twilio, run_jobs, make_patient, "en")
    call.say("nurse please")
    call.dial_ended("completed")
    assert call.ended and "care team" not in " ".join(call.heard())


@pytest.mark.parametrize(("language", "offer"), [("en", "press 0"), ("es", "oprima 0")])
def test_a_reply_that_is_not_the_nurse_is_asked_once_more_before_hanging_up(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    run_jobs: Jobs,
    make_patient: PatientFactory,
    language: str,
    offer: str,
) -> None:
    call, _ = _emergency_call(rt, client, fake_twilio, run_jobs, make_patient, language)
    call.press("5")
    heard = " ".join(call.heard())
    assert "911" in heard and offer in heard.lower()  # the advice and the offer again, not a hang-up
    assert call.gather() is not None and not call.ended
    call.silence()
    heard = " ".join(call.heard())
    assert "911" in heard and call.ended  # then the call ends, saying what to do
    assert call.heard()  # never silent


def test_asked_again_the_caller_can_still_reach_the_nurse(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Jobs, make_patient: PatientFactory
) -> None:
    call, _ = _emergency_call(rt, client, fake_twilio, run_jobs, make_patient, "en")
    call.say("what")
    call.press("0")
    assert call.dial() == NURSE
