"""Issue 12 items 1-2 end to end: API → enroll in care-assessment → tick → the real twilio client → signed
replies → the patient record, tasks, resource texts and the schedule, on PostgreSQL, Redis and a real RQ
worker."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.cli import main as cli
from app.models import Enrollment, Patient, Program, ScheduledTouch
from app.runtime import Runtime
from tests.conftest import API_TOKEN, FROM_NUMBER
from tests.support.fake_twilio import FakeTwilio

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CHICAGO = "America/Chicago"
#: Enrolled at 09:00 in Chicago (CST, UTC-6) on day 0; the touches go out at 10:00.
ENROLLED = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)
DAY0_10AM = ENROLLED + dt.timedelta(hours=1)
DAY2_10AM = DAY0_10AM + dt.timedelta(days=2)
_sids = itertools.count(1)


class Phone:
    """One patient's phone: what it received (through the fake Twilio server) and what it sends (signed)."""

    def __init__(
        self, app: Flask, rt: Runtime, fake: FakeTwilio, post: Callable[..., Any], run_jobs: Callable[[], int]
    ):
        self.app, self.rt, self.fake, self.post, self.run_jobs = app, rt, fake, post, run_jobs
        self.number = ""

    def tick(self, when: dt.datetime) -> None:
        self.rt.clock = lambda: when
        result = self.app.test_cli_runner().invoke(cli, ["tick", "--now", when.isoformat()])
        assert result.exit_code == 0, result.output
        self.run_jobs()

    def texts(self) -> list[str]:
        return [m["Body"] for m in self.fake.messages if m["To"] == self.number]

    def reply(self, *bodies: str) -> None:
        for body in bodies:
            response = self.post(
                "/twilio/sms",
                {
                    "MessageSid": f"SM{next(_sids):032x}",
                    "From": self.number,
                    "To": FROM_NUMBER,
                    "Body": body,
                    "NumMedia": "0",
                },
            )
            assert response.status_code == 200
            self.run_jobs()


@pytest.fixture()
def phone(
    app: Flask, rt: Runtime, fake_twilio: FakeTwilio, post_twilio: Callable[..., Any], run_jobs: Callable[[], int]
) -> Phone:
    rt.clock = lambda: ENROLLED
    return Phone(app, rt, fake_twilio, post_twilio, run_jobs)


def enroll(client: FlaskClient, phone: Phone, *, number: str, language: str = "en", **extra: Any) -> int:
    phone.number = number
    response = client.post(
        "/api/v1/patients",
        headers=AUTH,
        json={
            "mrn": f"CM-{number[-4:]}",
            "given_name": "Rosa",
            "family_name": "Diaz",
            "phone": number,
            "language": language,
            "timezone": CHICAGO,
            "conditions": ["heart_failure"],
            **extra,
        },
    )
    assert response.status_code == 201, response.json
    response = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"mrn": f"CM-{number[-4:]}", "campaign": "care-assessment", "anchor_date": "2026-12-07"},
    )
    assert response.status_code == 201, response.json
    return int(response.json["patient_id"])


def pending(rt: Runtime, patient_id: int) -> dict[str, dt.datetime]:
    """touch id → local scheduled time of the patient's pending touches."""
    with rt.sessions() as session:
        rows = session.execute(
            select(ScheduledTouch.touch_id, ScheduledTouch.scheduled_for)
            .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
            .where(Enrollment.patient_id == patient_id, ScheduledTouch.status == "pending")
        ).all()
    from zoneinfo import ZoneInfo

    return {touch: when.astimezone(ZoneInfo(CHICAGO)).replace(tzinfo=None) for touch, when in rows}


def welcome(phone: Phone, *answers: str) -> None:
    phone.tick(DAY0_10AM)
    assert "No one watches this line" in phone.texts()[-1] or "Nadie vigila esta linea" in phone.texts()[-1]
    phone.reply(*answers)


def test_welcome_answers_update_the_record_and_the_schedule_moves_to_the_evening(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    patient_id = enroll(client, phone, number="+13125550301")
    assert pending(rt, patient_id)["social-needs"] == dt.datetime(2026, 12, 9, 10, 0)
    phone.tick(DAY0_10AM)
    [hello] = phone.texts()
    assert "North Clinic" in hello and "911" in hello and "988" in hello and "Reply STOP" in hello
    assert "No one watches this line all the time" in hello

    phone.reply("1", "evening", "yes", "no")

    body = client.get(f"/api/v1/patients/{patient_id}", headers=AUTH).json
    assert body["consent"]["basis"] == "express_written"  # a typed reply (content/consent.yaml)
    assert body["consent"]["recorded"] is True
    assert body["consent"]["channels"] == ["sms", "voice"]
    assert body["consent"]["capped"] is False
    assert (body["preferred_time"], body["caregiver_may_receive"], body["interpreter_needed"]) == (
        "evening",
        True,
        False,
    )
    # The schedule was derived again: the next check-ins come at 18:00 local, the patient's evening.
    schedule = pending(rt, patient_id)
    assert schedule["social-needs"] == dt.datetime(2026, 12, 9, 18, 0)
    assert schedule["falls"] == dt.datetime(2026, 12, 12, 18, 0)
    codes = [e["code"] for e in client.get(f"/api/v1/patients/{patient_id}/timeline", headers=AUTH).json["events"]]
    assert {"express_written", "preferred_time", "caregiver_may_receive", "interpreter_needed"} <= set(codes)
    assert "schedule_changed" in codes


def test_messages_only_and_an_interpreter_in_spanish(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    patient_id = enroll(client, phone, number="+13125550302", language="es")
    welcome(phone, "solo mensajes", "cualquier hora", "no", "sí")
    body = client.get(f"/api/v1/patients/{patient_id}", headers=AUTH).json
    assert (body["consent"]["basis"], body["consent"]["channels"]) == ("express_written", ["sms"])
    assert (body["preferred_time"], body["caregiver_may_receive"], body["interpreter_needed"]) == (None, False, True)
    assert "Gracias" in phone.texts()[-1]
    assert pending(rt, patient_id)["social-needs"] == dt.datetime(2026, 12, 9, 10, 0)


def test_caregiver_yes_with_a_known_phone_grants_the_caregiver_reminders(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    patient_id = enroll(client, phone, number="+13125550304", caregiver_phone="(312) 555-0399")
    welcome(phone, "1", "morning", "yes", "no")
    [caregiver] = client.get(f"/api/v1/patients/{patient_id}/caregivers", headers=AUTH).json["caregivers"]
    assert (caregiver["phone"], caregiver["scopes"], caregiver["consent"]["basis"]) == (
        "+13125550399",
        ["reminders"],
        "patient_text",
    )
    assert "welcome" in caregiver["consent"]["recorded_by"]
    assert client.get("/api/v1/escalations", headers=AUTH).json["escalations"] == []
    codes = [e["code"] for e in client.get(f"/api/v1/patients/{patient_id}/timeline", headers=AUTH).json["events"]]
    assert "permission_granted" in codes


def test_caregiver_yes_without_a_phone_opens_a_routine_task_to_collect_it(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    patient_id = enroll(client, phone, number="+13125550305", language="es")
    welcome(phone, "1", "mañana", "sí", "no")
    assert client.get(f"/api/v1/patients/{patient_id}/caregivers", headers=AUTH).json["caregivers"] == []
    [task] = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    assert (task["level"], task["reasons"], task["patient_id"]) == ("ROUTINE", ["caregiver_phone_needed"], patient_id)


def test_caregiver_no_grants_nothing_and_opens_nothing(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    patient_id = enroll(client, phone, number="+13125550306", caregiver_phone="(312) 555-0398")
    welcome(phone, "1", "morning", "no", "no")
    assert client.get(f"/api/v1/patients/{patient_id}/caregivers", headers=AUTH).json["caregivers"] == []
    assert client.get("/api/v1/escalations", headers=AUTH).json["escalations"] == []


@pytest.mark.parametrize("answers", [(), ("4",)], ids=["no answer", "said no"])
def test_nothing_but_the_welcome_goes_out_before_consent_where_the_program_requires_it(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone, answers: tuple[str, ...]
) -> None:
    with rt.sessions() as session, session.begin():
        stored = session.get(Program, program.id)
        assert stored is not None
        stored.consent_before_outreach = True
    patient_id = enroll(client, phone, number="+13125550303")
    welcome(phone, *answers)
    phone.tick(DAY0_10AM + dt.timedelta(hours=6))  # the welcome's one reminder, when unanswered
    sent = len(phone.texts())
    assert sent == 2  # the welcome and its reminder, or the welcome and the "we will not" reply
    phone.tick(DAY2_10AM)
    assert len(phone.texts()) == sent  # no social-needs screen
    events = client.get(f"/api/v1/patients/{patient_id}/timeline", headers=AUTH).json["events"]
    skipped = [e for e in events if e["kind"] == "touch_skipped"]
    if answers:  # "no" cancelled the pending touches at once (see the test below)
        assert skipped == []
    else:
        assert [(e["code"], e["detail"]["flow"]) for e in skipped] == [("awaiting_consent", "social-needs")]
        assert "consent" in skipped[0]["text"]["en"]
    body = client.get(f"/api/v1/patients/{patient_id}", headers=AUTH).json
    assert body["consent"]["recorded"] is False
    tasks = [(e["level"], e["reasons"]) for e in client.get("/api/v1/escalations", headers=AUTH).json["escalations"]]
    assert tasks == ([("ROUTINE", ["outreach_declined"])] if answers else [])


def test_after_consent_the_gated_program_goes_on(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    with rt.sessions() as session, session.begin():
        stored = session.get(Program, program.id)
        assert stored is not None
        stored.consent_before_outreach = True
    enroll(client, phone, number="+13125550304")
    welcome(phone, "2", "1", "no", "no")
    phone.tick(DAY2_10AM)
    assert "Where do you live" in phone.texts()[-1]


def test_a_positive_food_answer_opens_a_routine_social_needs_task_with_the_local_resource_text(
    client: FlaskClient, rt: Runtime, phone: Phone
) -> None:
    with rt.sessions() as session, session.begin():
        session.add(
            Program(
                slug="example-clinic", name="Example Clinic", phone_display="555-0100", uses_healthcare_exemption=False
            )
        )
    patient_id = enroll(client, phone, number="+13125550305", zip_code="60614", program="example-clinic")
    welcome(phone, "1", "1", "no", "no")
    phone.tick(DAY2_10AM)
    assert "Where do you live" in phone.texts()[-1]
    phone.reply("1")
    assert client.get("/api/v1/escalations", headers=AUTH).json["escalations"] == []
    phone.reply("often")
    # The program's own list for ZIP codes 606xx (content/resources.yaml), in the same text as the next question.
    assert "North Side food pantry at 555-0142" in phone.texts()[-1]
    assert "care team will contact you" in phone.texts()[-1]
    [task] = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    assert (task["level"], task["reasons"], task["patient_id"]) == ("ROUTINE", ["social_need_food"], patient_id)
    phone.reply("3", "no", "2", "no")  # no other need; not safe to answer the private questions here
    escalations = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    assert sorted(e["reasons"][0] for e in escalations) == ["safety_screen_by_call", "social_need_food"]
    assert all(e["level"] == "ROUTINE" for e in escalations)
    # The follow-up asks two weeks later whether the patient got connected.
    assert pending(rt, patient_id)["social-needs-followup"] == dt.datetime(2026, 12, 23, 10, 0)
    phone.tick(DAY2_10AM + dt.timedelta(days=14))
    assert "Did you get the help you needed" in phone.texts()[-1]
    phone.reply("no")
    reasons = sorted(e["reasons"][0] for e in client.get("/api/v1/escalations", headers=AUTH).json["escalations"])
    assert "social_needs_not_connected" in reasons


def test_a_positive_food_answer_in_spanish_gets_211_by_default(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    enroll(client, phone, number="+13125550306", language="es", zip_code="10001")
    welcome(phone, "1", "1", "no", "no")
    phone.tick(DAY2_10AM)
    phone.reply("1", "3", "a veces")
    assert "Para ayuda con comida, llame al 211" in phone.texts()[-1]
    [task] = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    assert (task["level"], task["reasons"]) == ("ROUTINE", ["social_need_food"])


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_positive_safety_answer_is_urgent_gives_the_hotline_and_no_text_echoes_it(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone, language: str
) -> None:
    patient_id = enroll(client, phone, number="+13125550307", language=language)
    welcome(phone, "1", "1", "no", "no")
    phone.tick(DAY2_10AM)
    yes = "yes" if language == "en" else "si"
    phone.reply("1", "3", "3", "no", "2", yes)
    before = len(phone.texts())
    # HITS 3 + 3 + 3 + 5 = 14 (positive at 11), found at the last answer.
    phone.reply("3", "3", "3", "all the time" if language == "en" else "muy seguido")
    [task] = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    assert (task["level"], task["reasons"], task["patient_id"]) == ("URGENT", ["interpersonal_safety"], patient_id)
    after = phone.texts()[before:]
    last = after[-1]
    assert "1-800-799-7233" in last and "88788" in last and "911" in last
    # Nothing the patient answered is repeated in any text: no score, no answer label, no act asked about.
    said = "\n".join(phone.texts()[before + 3 :]).lower()  # what followed the last safety answer
    for echoed in (
        "14",
        "all the time",
        "muy seguido",
        "hurt",
        "insult",
        "threat",
        "yell",
        "swear",
        "lastim",
        "insult",
        "amenaz",
        "grit",
    ):
        assert echoed not in said, echoed
    for text in phone.texts():
        assert "you said" not in text.lower() and "usted dijo" not in text.lower()


def test_in_a_gated_program_the_first_touch_of_any_campaign_is_the_welcome(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone
) -> None:
    with rt.sessions() as session, session.begin():
        stored = session.get(Program, program.id)
        assert stored is not None
        stored.consent_before_outreach = True
    phone.number = "+13125550308"
    response = client.post(
        "/api/v1/patients",
        headers=AUTH,
        json={"mrn": "CM-HF", "given_name": "Rosa", "family_name": "Diaz", "phone": phone.number, "timezone": CHICAGO},
    )
    assert response.status_code == 201, response.json
    response = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"mrn": "CM-HF", "campaign": "hf-remote-monitoring", "anchor_date": "2026-12-08"},
    )
    assert response.status_code == 201, response.json
    patient_id = int(response.json["patient_id"])
    day1_9am = dt.datetime(2026, 12, 8, 15, 0, tzinfo=dt.UTC)
    phone.tick(day1_9am)
    [hello] = phone.texts()
    assert "No one watches this line" in hello and "weight" not in hello
    events = client.get(f"/api/v1/patients/{patient_id}/timeline", headers=AUTH).json["events"]
    assert [(e["kind"], e["code"]) for e in events if e["kind"] == "touch_replaced"] == [
        ("touch_replaced", "welcome_first")
    ]
    phone.reply("1", "1", "no", "no")
    phone.tick(day1_9am + dt.timedelta(days=1))
    assert "weight" in phone.texts()[-1]  # consent given: the check-ins go on


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_to_messages_and_calls_stops_all_automated_outreach(
    client: FlaskClient, program: Program, rt: Runtime, phone: Phone, language: str
) -> None:
    patient_id = enroll(client, phone, number="+13125550309", language=language)
    assert "social-needs" in pending(rt, patient_id)
    welcome(phone, "4")
    closing = phone.texts()[-1]
    if language == "en":
        assert "We will not send you any more messages or calls" in closing and "reply START" in closing
    else:
        assert "No le vamos a enviar mas mensajes ni llamadas" in closing and "responda START" in closing
    body = client.get(f"/api/v1/patients/{patient_id}", headers=AUTH).json
    assert body["consent"]["recorded"] is False
    assert pending(rt, patient_id) == {}
    with rt.sessions() as session:
        touches = session.execute(
            select(ScheduledTouch.touch_id, ScheduledTouch.status, ScheduledTouch.outcome)
            .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
            .where(Enrollment.patient_id == patient_id, ScheduledTouch.touch_id == "social-needs")
        ).all()
        assert [(t.status, t.outcome) for t in touches] == [("cancelled", "outreach_declined")]
        patient = session.get(Patient, patient_id)
        assert patient is not None and patient.opted_out and patient.voice_opted_out
        assert patient.opted_out_at is not None and patient.voice_opted_out_at is not None
    events = client.get(f"/api/v1/patients/{patient_id}/timeline", headers=AUTH).json["events"]
    [stopped] = [e for e in events if e.get("code") == "outreach_stopped"]
    assert stopped["detail"]["reason"] == "welcome_declined" and stopped["detail"]["touches_cancelled"] >= 1
    tasks = [(e["level"], e["reasons"]) for e in client.get("/api/v1/escalations", headers=AUTH).json["escalations"]]
    assert tasks == [("ROUTINE", ["outreach_declined"])]
    sent = len(phone.texts())
    phone.tick(DAY2_10AM)
    assert len(phone.texts()) == sent  # nothing more goes out
