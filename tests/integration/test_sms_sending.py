"""What a send carries: MessagingServiceSid instead of From when a Messaging Service is configured, a
StatusCallback to PUBLIC_BASE_URL/twilio/sms/status?mid=<id> on every send, and the segment count and
encoding stored per message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.runtime import Runtime
from tests.conftest import FROM_NUMBER, PUBLIC_BASE_URL
from tests.integration.sms_helpers import (
    custom_app,
    message_row,
    queue_one,
    run_worker,
    transcript,
)
from tests.support.fake_twilio import FakeTwilio, count_segments, sms_encoding

SERVICE_SID = "MG" + "0123456789abcdef" * 2

TEXTS = {
    "plain": "North Clinic: time for your check-in. Reply STOP to end texts.",
    # á, í, ó and ú are not in GSM-7: one of them makes the whole text UCS-2 (70 characters a segment).
    "spanish": "North Clinic: ¿Cómo está hoy? Responda SÍ o NO. Responda PARAR para no recibir más mensajes.",
    "long": "North Clinic: " + "Please weigh yourself every morning before breakfast. " * 3,
}


@pytest.mark.parametrize("with_from_number", [True, False])
def test_messaging_service_sends_carry_the_service_sid_and_no_from(
    app_config: dict[str, Any], fake_twilio: FakeTwilio, make_patient: Callable[..., Any], with_from_number: bool
) -> None:
    patient = make_patient()
    overrides: dict[str, Any] = {"twilio_messaging_service_sid": SERVICE_SID}
    if not with_from_number:
        overrides["twilio_from_number"] = ""
    with custom_app(app_config, **overrides) as (_app, rt):
        mid = queue_one(rt, patient, TEXTS["plain"])
        run_worker(rt)
        row = message_row(rt, mid)
    [sent] = fake_twilio.messages
    assert sent["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in sent
    assert sent["StatusCallback"] == f"{PUBLIC_BASE_URL}/twilio/sms/status?mid={mid}"
    assert (row.status, row.provider_sid) == ("sent", sent["sid"])


def test_every_send_carries_its_own_status_callback_and_the_from_number(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient()
    ids = [queue_one(rt, patient, body) for body in TEXTS.values()]
    run_worker(rt)
    by_body = {m["Body"]: m for m in fake_twilio.messages}
    assert len(by_body) == len(ids)
    for mid, body in zip(ids, TEXTS.values(), strict=True):
        sent = by_body[body]
        assert sent["StatusCallback"] == f"{PUBLIC_BASE_URL}/twilio/sms/status?mid={mid}"
        assert sent["From"] == FROM_NUMBER
        assert "MessagingServiceSid" not in sent
        assert sent["To"] == patient.phone


def test_segments_and_encoding_are_stored_per_message(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient(language="es")
    ids = {name: queue_one(rt, patient, body) for name, body in TEXTS.items()}
    run_worker(rt)
    rows = {name: message_row(rt, mid) for name, mid in ids.items()}
    assert (rows["plain"].encoding, rows["plain"].segments) == ("GSM-7", 1)
    assert (rows["spanish"].encoding, rows["spanish"].segments) == ("UCS-2", 2)  # 92 UCS-2 characters: two parts of 67
    assert (rows["long"].encoding, rows["long"].segments) == ("GSM-7", 2)
    # The stored numbers agree with what the provider billed.
    billed = {m["Body"]: m["num_segments"] for m in fake_twilio.messages}
    for name, body in TEXTS.items():
        assert rows[name].segments == billed[body] == count_segments(body)
        assert rows[name].encoding == sms_encoding(body)
    listed = transcript(client, patient.id)
    assert (listed[ids["spanish"]]["encoding"], listed[ids["spanish"]]["segments"]) == ("UCS-2", 2)
