"""The welcome flow on a call (issue 12 item 1): consent given by a key press is recorded as express oral
consent (content/consent.yaml ``answered_consent_basis``), for the channels chosen; the other answers land on
the patient as they do by text."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from app.models import Patient
from app.runtime import Runtime
from tests.conftest import PatientFactory
from tests.integration.sms_helpers import install_clock
from tests.integration.voice_helpers import MORNING, client_transport, conversations, start_call
from tests.support.fake_twilio import FakeTwilio


def test_consent_pressed_on_a_call_is_express_oral_for_calls_only(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    run_jobs: Callable[[], int],
    make_patient: PatientFactory,
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice", consent_basis="program_enrollment")
    start_call(rt, patient, MORNING, "welcome")
    run_jobs()
    [placed] = [c for c in fake_twilio.calls if c["To"] == patient.phone]
    call = fake_twilio.phone_call(placed["sid"], client_transport(client))
    call.answer()
    heard = " ".join(call.heard())
    assert "No one watches this line" in heard and "911" in heard and "988" in heard
    assert "Press 1 for messages and calls" in heard and "press 9" in heard
    call.press("3")  # calls only
    call.press("2")  # afternoon
    call.press("2")  # no caregiver messages
    call.press("1")  # an interpreter, please
    assert any("all set" in line for line in call.heard())
    with rt.sessions() as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None
        assert (stored.consent_basis, stored.consent_channels) == ("express_oral", ["voice"])
        assert stored.consent_recorded_by is not None and "voice" in stored.consent_recorded_by
        assert (stored.preferred_time, stored.caregiver_may_receive, stored.interpreter_needed) == (
            "afternoon",
            False,
            True,
        )
    [conversation] = conversations(rt, patient.id)
    assert (conversation.flow_id, conversation.status, conversation.channel) == ("welcome", "completed", "voice")
