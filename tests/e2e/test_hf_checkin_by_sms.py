"""The walking skeleton end to end: API → enroll → tick → real twilio client → signed replies →
answers → escalation, on PostgreSQL, Redis and a real RQ worker."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.cli import main as cli
from app.runtime import Runtime
from tests.conftest import API_TOKEN, FROM_NUMBER
from tests.support.fake_twilio import FakeTwilio

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
_sids = itertools.count(1)


def sid() -> str:
    return f"SM{next(_sids):032x}"


class Patient:
    """Drives one patient through the system the way the outside world does."""

    def __init__(
        self,
        app: Flask,
        rt: Runtime,
        client: FlaskClient,
        fake: FakeTwilio,
        post: Callable[..., Any],
        run_jobs: Callable[[], int],
        phone: str,
    ):
        self.app, self.rt, self.client, self.fake, self.post, self.run_jobs = app, rt, client, fake, post, run_jobs
        self.phone = phone

    def set_time(self, when: dt.datetime) -> None:
        self.rt.clock = lambda: when

    def tick(self, when: dt.datetime) -> str:
        self.set_time(when)
        result = self.app.test_cli_runner().invoke(cli, ["tick", "--now", when.isoformat()])
        assert result.exit_code == 0, result.output
        self.run_jobs()
        return result.output

    def texts(self) -> list[str]:
        return [m["Body"] for m in self.fake.messages if m["To"] == self.phone]

    def reply(self, body: str, message_sid: str | None = None) -> Any:
        response = self.post(
            "/twilio/sms",
            {"MessageSid": message_sid or sid(), "From": self.phone, "To": FROM_NUMBER, "Body": body, "NumMedia": "0"},
        )
        assert response.status_code == 200
        self.run_jobs()
        return response


@pytest.fixture()
def drive(
    app: Flask,
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    post_twilio: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> Callable[[str], Patient]:
    # The patient is enrolled the evening before the first check-in.
    rt.clock = lambda: DAY1 - dt.timedelta(hours=12)
    return lambda phone: Patient(app, rt, client, fake_twilio, post_twilio, run_jobs, phone)


def create_and_enroll(client: FlaskClient, *, mrn: str, phone: str, language: str, anchor: dt.date) -> int:
    response = client.post(
        "/api/v1/patients",
        headers=AUTH,
        json={
            "mrn": mrn,
            "given_name": "Rosa",
            "family_name": "Diaz",
            "phone": phone,
            "language": language,
            "timezone": "America/Chicago",
            "preferred_channel": "sms",
            "conditions": ["heart_failure"],
        },
    )
    assert response.status_code == 201, response.json
    patient_id = int(response.json["id"])
    response = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"mrn": mrn, "campaign": "hf-remote-monitoring", "anchor_date": anchor.isoformat()},
    )
    assert response.status_code == 201, response.json
    assert response.json["next_due_at"] is not None
    return patient_id


# 09:00 in Chicago (CST, UTC-6) on two consecutive days.
DAY1 = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
DAY2 = DAY1 + dt.timedelta(days=1)
#: The HF check-in's yes/no questions after the weight: breath, pillows, swelling, dizzy, chest, fainted, confused.
SYMPTOM_QUESTIONS = 7


@pytest.mark.parametrize(
    ("language", "weight_prompt", "alert_words"),
    [("en", "weight today in pounds", "weight went up"), ("es", "libras", "subido de peso")],
)
def test_weight_gain_overnight_opens_an_urgent_escalation(
    client: FlaskClient,
    program: Any,
    drive: Callable[[str], Patient],
    language: str,
    weight_prompt: str,
    alert_words: str,
) -> None:
    phone = "+13125550142"
    patient_id = create_and_enroll(client, mrn="HF-1", phone=phone, language=language, anchor=DAY1.date())
    patient = drive(phone)

    patient.tick(DAY1)
    assert len(patient.texts()) == 1
    assert weight_prompt in patient.texts()[0]
    for body in ("179", *["no"] * SYMPTOM_QUESTIONS):
        patient.reply(body)
    assert len(patient.texts()) == 9  # the weight and 7 symptom prompts, and the thank-you
    assert client.get("/api/v1/escalations", headers=AUTH).json["escalations"] == []

    patient.tick(DAY2)
    assert weight_prompt in patient.texts()[9]
    patient.reply("183")
    # The sign is escalated and told at once, at the weight answer, while the check-in goes on.
    assert any(alert_words in t for t in patient.texts()[10:])
    [seen] = client.get("/api/v1/escalations?status=open", headers=AUTH).json["escalations"]
    assert seen["level"] == "URGENT"
    for _ in range(SYMPTOM_QUESTIONS):
        patient.reply("no")
    assert alert_words not in patient.texts()[-1]  # told once: not again with the thank-you
    assert sum(alert_words in t for t in patient.texts()) == 1

    answers = client.get(f"/api/v1/patients/{patient_id}/answers", headers=AUTH).json["answers"]
    weights = [(a["value"], a["unit"]) for a in answers if a["question"] == "weight"]
    assert weights == [(179.0, "lb"), (183.0, "lb")]
    assert [a["value"] for a in answers if a["question"] == "breath"] == [False, False]
    assert all(a["channel"] == "sms" for a in answers)

    escalations = client.get("/api/v1/escalations?status=open", headers=AUTH).json["escalations"]
    assert len(escalations) == 1
    escalation = escalations[0]
    assert escalation["level"] == "URGENT"
    assert escalation["reasons"] == ["weight_gain"]
    assert escalation["patient_id"] == patient_id
    assert escalation["triggers"][0]["detail"]["weight_rise"] == 4.0
    assert escalation["triggers"][0]["detail"]["sign_count"] == 1
    # URGENT: acknowledge within an hour of the reply that triggered it.
    assert dt.datetime.fromisoformat(escalation["sla_due_at"]) == DAY2 + dt.timedelta(hours=1)

    transcript = client.get(f"/api/v1/patients/{patient_id}/messages", headers=AUTH).json["messages"]
    assert [m["direction"] for m in transcript].count("inbound") == 2 * (1 + SYMPTOM_QUESTIONS)
    assert all(m["provider_sid"].startswith("SM") for m in transcript)


def test_breathless_at_rest_is_an_emergency_with_911_advice(
    client: FlaskClient, program: Any, drive: Callable[[str], Patient]
) -> None:
    phone = "+13125550143"
    create_and_enroll(client, mrn="HF-2", phone=phone, language="es", anchor=DAY1.date())
    patient = drive(phone)
    patient.tick(DAY1)
    for body in ("180", "si"):
        patient.reply(body)
    # "More short of breath than usual" is an URGENT task at once, told that a nurse will call.
    [urgent] = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    assert (urgent["level"], urgent["reasons"]) == ("URGENT", ["shortness_of_breath"])
    assert any("enfermera" in t for t in patient.texts())
    patient.reply("sí")
    assert "911" in patient.texts()[-1]
    escalations = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    by_level = {e["level"]: e for e in escalations}
    assert sorted(by_level) == ["EMERGENCY", "URGENT"]
    # Breathless at rest is its own EMERGENCY task, with the sign found before it in its picture.
    emergency = by_level["EMERGENCY"]
    assert emergency["reasons"][0] == "breathless_at_rest"
    assert emergency["triggers"][0]["detail"]["signs"] == ["shortness_of_breath", "breathless_at_rest"]
    assert by_level["URGENT"]["id"] == urgent["id"]


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_weight_at_0905_then_at_1630_the_next_day_is_a_one_day_rise(
    client: FlaskClient, program: Any, drive: Callable[[str], Patient], language: str
) -> None:
    """179 lb at 09:05, 183 lb at 16:30 the next day: more than 24 h apart, still yesterday's weight."""
    phone = "+13125550147" if language == "en" else "+13125550148"
    patient_id = create_and_enroll(client, mrn=f"HF-5{language}", phone=phone, language=language, anchor=DAY1.date())
    patient = drive(phone)
    patient.tick(DAY1)
    patient.set_time(DAY1 + dt.timedelta(minutes=5))  # 09:05 Chicago
    for body in ("179", *["no"] * SYMPTOM_QUESTIONS):
        patient.reply(body)
    patient.tick(DAY2)
    patient.tick(DAY2 + dt.timedelta(hours=4))  # the reminder at 13:00
    patient.set_time(DAY2 + dt.timedelta(hours=7, minutes=30))  # 16:30 Chicago
    before = len(patient.texts())
    patient.reply("183")
    alert = any(("weight went up" if language == "en" else "subido de peso") in t for t in patient.texts()[before:])
    for body in ["no"] * SYMPTOM_QUESTIONS:
        patient.reply(body)

    [escalation] = client.get("/api/v1/escalations?status=open", headers=AUTH).json["escalations"]
    assert (escalation["level"], escalation["patient_id"]) == ("URGENT", patient_id)
    assert escalation["reasons"] == ["weight_gain"]
    detail = escalation["triggers"][0]["detail"]
    assert (detail["weight_baseline"], detail["weight"], detail["weight_rise"]) == (179.0, 183.0, 4.0)
    assert alert  # told at the weight answer, before the next question


def test_tampered_signature_is_refused_and_nothing_is_stored(
    client: FlaskClient, program: Any, make_patient: Callable[..., Any], post_twilio: Callable[..., Any]
) -> None:
    patient = make_patient(phone="+13125550144")
    params = {"MessageSid": sid(), "From": patient.phone, "To": FROM_NUMBER, "Body": "183"}
    forged = post_twilio("/twilio/sms", params, token="not-the-auth-token")
    unsigned = client.post("/twilio/sms", data=params)
    assert forged.status_code == 403
    assert unsigned.status_code == 403
    messages = client.get(f"/api/v1/patients/{patient.id}/messages", headers=AUTH).json["messages"]
    assert messages == []


def test_same_message_sid_twice_is_processed_once(
    client: FlaskClient, program: Any, drive: Callable[[str], Patient]
) -> None:
    phone = "+13125550145"
    patient_id = create_and_enroll(client, mrn="HF-3", phone=phone, language="en", anchor=DAY1.date())
    patient = drive(phone)
    patient.tick(DAY1)
    duplicate = sid()
    patient.reply("181", message_sid=duplicate)
    patient.reply("181", message_sid=duplicate)
    messages = client.get(f"/api/v1/patients/{patient_id}/messages", headers=AUTH).json["messages"]
    answers = client.get(f"/api/v1/patients/{patient_id}/answers", headers=AUTH).json["answers"]
    assert [m["direction"] for m in messages].count("inbound") == 1
    assert len(answers) == 1
    assert len(patient.texts()) == 2  # the first prompt and one next question, not two


def test_stop_means_the_next_tick_sends_nothing_and_start_resumes(
    client: FlaskClient, program: Any, drive: Callable[[str], Patient]
) -> None:
    phone = "+13125550146"
    create_and_enroll(client, mrn="HF-4", phone=phone, language="en", anchor=DAY1.date())
    patient = drive(phone)
    patient.tick(DAY1)
    patient.reply("STOP")
    sent = patient.texts()
    assert "not get more messages" in sent[-1]  # confirmed once
    patient.reply("stop")
    assert patient.texts() == sent  # not confirmed twice
    patient.tick(DAY2)
    assert patient.texts() == sent
    patient.reply("START")
    assert "again" in patient.texts()[-1]
    patient.tick(DAY2 + dt.timedelta(days=1))
    assert "weight today" in patient.texts()[-1]
