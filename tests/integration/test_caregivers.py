"""Caregivers with the patient's permission and a scope (issue 12 item 6), through the API and signed
webhooks on PostgreSQL and Redis: the caregiver answers a check-in (recorded as given by the caregiver),
copies of reminders and of the emergency advice, STOP from a caregiver stops the caregiver only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from app.conversations.service import start_conversation
from app.models import Caregiver, Patient, TimelineEvent
from app.patients.caregivers import grant_caregiver_permission
from app.runtime import Runtime
from tests.integration.sms_helpers import AUTH, inbound_params, install_clock, run_worker, start_checkin, texts_to
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]
NOON = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)  # 12:00 in New York
CAREGIVER = "+12025550999"


def _text(post: Poster, rt: Runtime, phone: str, body: str) -> None:
    response = post("/twilio/sms", inbound_params(phone, body))
    assert response.status_code == 200
    run_worker(rt)


def _grant(rt: Runtime, patient: Patient, scopes: list[str], phone: str = CAREGIVER) -> int:
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        caregiver = grant_caregiver_permission(
            session, owner, phone=phone, scopes=scopes, basis="verbal", recorded_by="nurse@example.org", now=NOON
        )
        return caregiver.id


def test_api_records_the_permission_scope_and_consent_and_validates(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient()
    url = f"/api/v1/patients/{patient.id}/caregivers"
    body = {"phone": "(202) 555-0999", "scopes": ["answer", "reminders"], "consent_basis": "verbal",
            "recorded_by": "nurse@example.org", "name": "Luis", "relationship": "son", "language": "es"}  # fmt: skip
    created = client.post(url, json=body, headers=AUTH)
    assert created.status_code == 201, created.json
    assert created.json["phone"] == CAREGIVER
    assert created.json["scopes"] == ["answer", "reminders"]
    assert created.json["consent"]["basis"] == "verbal"
    assert created.json["consent"]["recorded_by"] == "nurse@example.org"
    again = client.post(url, json={**body, "scopes": ["escalations"]}, headers=AUTH)
    assert again.status_code == 200 and again.json["id"] == created.json["id"]
    assert again.json["scopes"] == ["escalations"]
    bad = client.post(url, json={"phone": "12", "scopes": ["everything"], "consent_basis": "nod"}, headers=AUTH)
    assert bad.status_code == 422
    assert {"phone", "scopes", "consent_basis"} <= {k.split(".")[0] for k in bad.json["error"]["fields"]}
    assert client.post("/api/v1/patients/999999/caregivers", json=body, headers=AUTH).status_code == 404
    listed = client.get(url, headers=AUTH).json["caregivers"]
    assert [c["id"] for c in listed] == [created.json["id"]]
    with rt.sessions() as session:
        codes = session.scalars(
            select(TimelineEvent.code).where(TimelineEvent.patient_id == patient.id, TimelineEvent.kind == "caregiver")
        ).all()
    assert codes == ["permission_granted", "permission_granted"]
    removed = client.delete(f"{url}/{created.json['id']}", headers=AUTH)
    assert removed.status_code == 200 and removed.json["revoked"] is True
    paths = client.get("/api/v1/openapi.json", headers=AUTH).json["paths"]
    assert {"get", "post"} <= set(paths["/patients/{patient_id}/caregivers"])


def test_caregiver_answering_a_check_in_is_recorded_as_given_by_the_caregiver(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, NOON)
    patient = make_patient()
    caregiver_id = _grant(rt, patient, ["answer"])
    start_checkin(rt, patient, NOON)
    run_worker(rt)
    _text(post_twilio, rt, CAREGIVER, "182")  # the caregiver answers the weight question
    _text(post_twilio, rt, patient.phone, "no")  # the patient answers the next one
    answers = client.get(f"/api/v1/patients/{patient.id}/answers", headers=AUTH).json["answers"]
    assert [(a["question"], a["given_by"], a.get("caregiver_id")) for a in answers] == [
        ("weight", "caregiver", caregiver_id),
        ("breath", "patient", None),
    ]
    # The reply (the next question) went back to the caregiver who answered.
    assert "short of breath" in texts_to(fake_twilio, CAREGIVER)[-1]
    messages = client.get(f"/api/v1/patients/{patient.id}/messages", headers=AUTH).json["messages"]
    inbound = [m for m in messages if m["direction"] == "inbound"]
    assert [m.get("caregiver_id") for m in inbound] == [caregiver_id, None]
    timeline = client.get(f"/api/v1/patients/{patient.id}/timeline", headers=AUTH).json["events"]
    [answered] = [e for e in timeline if e["code"] == "answered_for_patient"]
    assert answered["detail"]["caregiver_id"] == caregiver_id
    assert answered["text"]["es"] == "El cuidador respondió el control por el paciente."


def test_caregiver_without_the_answer_scope_goes_to_the_inbox_not_the_check_in(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, NOON)
    patient = make_patient()
    _grant(rt, patient, ["reminders"])
    start_checkin(rt, patient, NOON)
    run_worker(rt)
    _text(post_twilio, rt, CAREGIVER, "182")
    assert client.get(f"/api/v1/patients/{patient.id}/answers", headers=AUTH).json["answers"] == []
    messages = client.get(f"/api/v1/patients/{patient.id}/messages", headers=AUTH).json["messages"]
    [inbound] = [m for m in messages if m["direction"] == "inbound"]
    assert inbound["kind"] == "inbox" and inbound["needs_review"] is True


def test_copies_of_reminders_and_emergency_advice_go_to_scoped_caregivers_only(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, NOON)
    patient = make_patient()
    _grant(rt, patient, ["reminders", "escalations"])
    _grant(rt, patient, ["answer"], phone="+12025550998")
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        start_conversation(
            session, rt, owner, "med-reminder", NOON, variables={"medication_name": "metformin", "dose_time": "08:00"}
        )
    run_worker(rt)
    [copy] = texts_to(fake_twilio, CAREGIVER)
    assert "reminder" in copy and "Maria" in copy and "metformin" not in copy  # no more than consent allows
    assert texts_to(fake_twilio, "+12025550998") == []
    _text(post_twilio, rt, patient.phone, "1")  # taken: the reminder ends

    start_checkin(rt, patient, NOON + dt.timedelta(hours=1))
    run_worker(rt)
    for body in ("180", "no", "no", "no", "no", "yes"):  # chest pain now: EMERGENCY
        _text(post_twilio, rt, patient.phone, body)
    assert "911" in texts_to(fake_twilio, patient.phone)[-1]
    advice = texts_to(fake_twilio, CAREGIVER)[-1]
    assert "911" in advice and "chest" not in advice.lower()


def test_stop_from_a_caregiver_stops_the_caregiver_only(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, NOON)
    patient = make_patient(language="es")
    _grant(rt, patient, ["reminders"])
    _text(post_twilio, rt, CAREGIVER, "STOP")
    [confirmation] = texts_to(fake_twilio, CAREGIVER)
    assert "START" in confirmation
    with rt.sessions() as session:
        caregiver = session.scalars(select(Caregiver).where(Caregiver.phone == CAREGIVER)).one()
        owner = session.get(Patient, patient.id)
        assert caregiver.opted_out is True and owner is not None and owner.opted_out is False
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        start_conversation(
            session, rt, owner, "med-reminder", NOON, variables={"medication_name": "metformin", "dose_time": "08:00"}
        )
    run_worker(rt)
    assert texts_to(fake_twilio, patient.phone)  # the patient still gets the reminder
    assert len(texts_to(fake_twilio, CAREGIVER)) == 1  # and the caregiver who stopped gets no copy
    _text(post_twilio, rt, CAREGIVER, "STOP")  # confirmed once only
    assert len(texts_to(fake_twilio, CAREGIVER)) == 1
    _text(post_twilio, rt, CAREGIVER, "START")
    assert "PARAR" in texts_to(fake_twilio, CAREGIVER)[-1]  # in the caregiver's language (es)


def test_shared_phone_asks_which_person_is_answering_and_remembers_the_choice(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, NOON)
    shared = "+12025550777"
    maria = make_patient(phone=shared, given_name="Maria")
    luis = make_patient(phone=shared, given_name="Luis", language="es")
    start_checkin(rt, maria, NOON)
    start_checkin(rt, luis, NOON)
    run_worker(rt)
    before = len(texts_to(fake_twilio, shared))
    _text(post_twilio, rt, shared, "182")
    [question] = texts_to(fake_twilio, shared)[before:]
    assert "Who is answering? Reply 1 for Maria, 2 for Luis." in question
    assert "¿Quién responde? Responda 1 para Maria, 2 para Luis." in question  # Luis reads Spanish
    for patient in (maria, luis):  # held: nobody's answer yet
        assert client.get(f"/api/v1/patients/{patient.id}/answers", headers=AUTH).json["answers"] == []

    _text(post_twilio, rt, shared, "Luis")
    _text(post_twilio, rt, shared, "no")  # remembered for Luis's check-in: not asked again
    luis_answers = client.get(f"/api/v1/patients/{luis.id}/answers", headers=AUTH).json["answers"]
    assert [(a["question"], a["value"]) for a in luis_answers] == [("weight", 182), ("breath", False)]
    assert client.get(f"/api/v1/patients/{maria.id}/answers", headers=AUTH).json["answers"] == []
    assert not any("Who is answering" in t for t in texts_to(fake_twilio, shared)[before + 1 :])


def test_shared_phone_never_holds_a_red_flag(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, NOON)
    shared = "+12025550778"
    maria = make_patient(phone=shared, given_name="Maria")
    luis = make_patient(phone=shared, given_name="Luis")
    start_checkin(rt, maria, NOON)
    start_checkin(rt, luis, NOON)
    run_worker(rt)
    _text(post_twilio, rt, shared, "I have crushing chest pain right now")
    assert "911" in texts_to(fake_twilio, shared)[-1]
    assert not any("Who is answering" in t for t in texts_to(fake_twilio, shared))
    escalations = client.get("/api/v1/escalations?status=open", headers=AUTH).json["escalations"]
    assert [e["level"] for e in escalations] == ["EMERGENCY"]


def test_no_emergency_copy_to_a_caregiver_when_the_patient_reports_violence(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, NOON)
    patient = make_patient()
    _grant(rt, patient, ["escalations"])
    start_checkin(rt, patient, NOON)
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, "my husband says he will kill me")
    told = texts_to(fake_twilio, patient.phone)[-1]
    assert "911" in told and "1-800-799-7233" in told and "88788" in told and "husband" not in told
    assert texts_to(fake_twilio, CAREGIVER) == []  # the caregiver may be the person the patient fears


def test_caregiver_strain_is_asked_of_the_caregiver_and_recorded_as_their_answers(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    from app.models import Answer

    install_clock(rt, NOON)
    patient = make_patient()
    url = f"/api/v1/patients/{patient.id}/conversations"
    # No caregiver with permission yet: nothing is sent to anyone.
    refused = client.post(url, json={"flow": "caregiver-strain", "to": "caregiver"}, headers=AUTH)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "no_caregiver"
    caregiver_id = _grant(rt, patient, ["reminders"])  # not "answer": the questions are the caregiver's own
    started = client.post(url, json={"flow": "caregiver-strain", "to": "caregiver"}, headers=AUTH)
    assert started.status_code == 201, started.json
    run_worker(rt)
    assert texts_to(fake_twilio, patient.phone) == []
    [question] = texts_to(fake_twilio, CAREGIVER)
    assert "Caring for someone" in question

    _text(post_twilio, rt, patient.phone, "often")  # the patient's own text answers nothing of the caregiver's
    _text(post_twilio, rt, CAREGIVER, "often")
    assert "break" in texts_to(fake_twilio, CAREGIVER)[-1]
    _text(post_twilio, rt, CAREGIVER, "no")
    assert "help and support" in " ".join(texts_to(fake_twilio, CAREGIVER)[-2:])
    with rt.sessions() as session:
        answers = session.execute(
            select(Answer.question_id, Answer.value_text, Answer.given_by_caregiver_id).where(
                Answer.patient_id == patient.id, Answer.flow_id == "caregiver-strain"
            )
        ).all()
    assert sorted(answers) == [("break", "no", caregiver_id), ("worn_out", "often", caregiver_id)]
    [task] = client.get("/api/v1/escalations", headers=AUTH).json["escalations"]
    assert task["level"] == "ROUTINE" and task["reasons"][0] == "caregiver_strain"
    assert all("Caring for someone" not in t for t in texts_to(fake_twilio, patient.phone))
