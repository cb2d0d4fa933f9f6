"""POST /api/v1/patients/<id>/conversations: staff start a flow now (issue 7, item 9), on real PostgreSQL
and Redis, with the first prompt sent through the real worker to the local Twilio."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.models import Conversation, Message
from app.runtime import Runtime
from tests.conftest import API_TOKEN, PatientFactory, at
from tests.integration.sms_helpers import install_clock
from tests.support.fake_twilio import FakeTwilio

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
#: 10:00 in New York (the factory's default zone): inside 08:00-21:00.
MORNING = at("2026-11-25T10:00:00-05:00")


def _url(patient_id: int) -> str:
    return f"/api/v1/patients/{patient_id}/conversations"


def _outbound(rt: Runtime, patient_id: int) -> list[Message]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.patient_id == patient_id, Message.direction == "outbound")
            ).all()
        )


def test_a_flow_starts_now_and_its_first_prompt_is_sent_exactly_once(
    client: FlaskClient,
    rt: Runtime,
    make_patient: PatientFactory,
    run_jobs: Callable[[], int],
    fake_twilio: FakeTwilio,
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language="es")
    response = client.post(_url(patient.id), headers=AUTH, json={"flow": "phq9"})
    assert response.status_code == 201
    body = response.json
    assert set(body) >= {"id", "patient_id", "flow", "status", "started_at"}
    assert (body["patient_id"], body["flow"], body["status"]) == (patient.id, "phq9", "active")
    assert dt.datetime.fromisoformat(body["started_at"]) == MORNING
    with rt.sessions() as session:
        conversation = session.get(Conversation, body["id"])
        assert conversation is not None and conversation.status == "active"

    [queued] = _outbound(rt, patient.id)
    assert queued.conversation_id == body["id"]
    run_jobs()
    run_jobs()
    sent = [m for m in fake_twilio.messages if m["To"] == patient.phone]
    assert len(sent) == 1
    assert "1/9" in sent[0]["Body"]  # the Spanish opening with the first item
    assert "PARAR" in sent[0]["Body"]
    assert len(_outbound(rt, patient.id)) == 1

    again = client.post(_url(patient.id), headers=AUTH, json={"flow": "gad7"})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conversation_active"
    run_jobs()
    assert len([m for m in fake_twilio.messages if m["To"] == patient.phone]) == 1


def test_an_opted_out_patient_gets_nothing(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory, run_jobs: Callable[[], int]
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(opted_out=True)
    response = client.post(_url(patient.id), headers=AUTH, json={"flow": "phq2"})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "opted_out"
    assert response.json["error"]["message"]
    assert _outbound(rt, patient.id) == []
    with rt.sessions() as session:
        assert session.scalar(select(func.count(Conversation.id))) == 0


def test_outside_the_patients_quiet_hours_is_refused_with_the_next_allowed_time(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory
) -> None:
    patient = make_patient(timezone="America/Los_Angeles")
    # 10:00 in New York is 07:00 in Los Angeles: too early there.
    install_clock(rt, MORNING)
    response = client.post(_url(patient.id), headers=AUTH, json={"flow": "phq2"})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "quiet_hours"
    allowed = dt.datetime.fromisoformat(response.json["error"]["fields"]["allowed_at"])
    assert allowed == at("2026-11-25T08:00:00-08:00")
    assert _outbound(rt, patient.id) == []

    install_clock(rt, at("2026-11-25T21:00:00-08:00"))  # the window ends at 21:00
    assert client.post(_url(patient.id), headers=AUTH, json={"flow": "phq2"}).json["error"]["code"] == "quiet_hours"
    install_clock(rt, at("2026-11-25T08:00:00-08:00"))
    assert client.post(_url(patient.id), headers=AUTH, json={"flow": "phq2"}).status_code == 201


def test_a_program_that_narrows_its_hours_is_obeyed(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory, program: Any
) -> None:
    from app.models import Program

    with rt.sessions() as session, session.begin():
        row = session.get(Program, program.id)
        assert row is not None
        row.quiet_end_hour = 20
    patient = make_patient()
    install_clock(rt, at("2026-11-25T20:30:00-05:00"))
    response = client.post(_url(patient.id), headers=AUTH, json={"flow": "phq2"})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "quiet_hours"


def test_unknown_patient_unknown_or_missing_flow_and_no_token(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    missing_patient = client.post(_url(patient.id + 1000), headers=AUTH, json={"flow": "phq2"})
    assert missing_patient.status_code == 404
    assert missing_patient.json["error"]["code"] == "not_found"
    for payload in ({"flow": "no-such-flow"}, {}, {"flow": ""}, {"flow": 7}):
        response = client.post(_url(patient.id), headers=AUTH, json=payload)
        assert response.status_code == 422, payload
        assert "flow" in response.json["error"]["fields"]
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert client.post(_url(patient.id), headers=headers, json={"flow": "phq2"}).status_code == 401
    assert _outbound(rt, patient.id) == []


def test_an_internal_flow_cannot_be_started_from_the_api(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory
) -> None:
    # The "right now?" check is started only by the inbound path, for a red flag the patient mentioned; from
    # the API it would text a patient "Do you have chest pain right now?" out of nowhere.
    install_clock(rt, MORNING)
    patient = make_patient()
    internal = [flow_id for flow_id, flow in rt.content.flows.items() if flow.internal]
    assert "right-now-check" in internal
    for flow_id in internal:
        response = client.post(_url(patient.id), headers=AUTH, json={"flow": flow_id})
        assert response.status_code == 422, flow_id
        assert response.json["error"]["fields"] == {"flow": f"unknown flow '{flow_id}'"}
    assert _outbound(rt, patient.id) == []
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 0


def test_a_flow_whose_texts_need_variables_needs_them_given(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    refused = client.post(_url(patient.id), headers=AUTH, json={"flow": "appointment-reminder"})
    assert refused.status_code == 422
    assert "appointment_at" in refused.json["error"]["fields"]["variables"]
    started = client.post(
        _url(patient.id),
        headers=AUTH,
        json={"flow": "appointment-reminder", "variables": {"appointment_at": "2026-12-02T10:30:00-05:00"}},
    )
    assert started.status_code == 201
    [queued] = _outbound(rt, patient.id)
    assert "December 2, 2026" in queued.body


def test_two_requests_at_once_start_one_conversation(app: Flask, rt: Runtime, make_patient: PatientFactory) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        barrier.wait()
        statuses.append(app.test_client().post(_url(patient.id), headers=AUTH, json={"flow": "phq2"}).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
    assert len(_outbound(rt, patient.id)) == 1
