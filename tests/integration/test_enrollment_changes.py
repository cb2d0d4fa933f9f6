"""Pause / resume / unenroll with a reason, shown on the patient's timeline (issue 10 item 4), and the
TCM work list with care managers' attempts over the API (item 5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import Discharge, Program, ScheduledTouch
from app.programs.tcm import open_discharge
from app.runtime import Runtime
from tests.conftest import API_TOKEN, PatientFactory

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)


def _enroll(client: FlaskClient, patient_id: int) -> dict[str, Any]:
    response = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"patient_id": patient_id, "campaign": "hf-remote-monitoring", "anchor_date": "2026-12-01"},
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _pending(rt: Runtime, enrollment_id: int) -> int:
    with rt.sessions() as session:
        return len(
            session.scalars(
                select(ScheduledTouch).where(
                    ScheduledTouch.enrollment_id == enrollment_id, ScheduledTouch.status == "pending"
                )
            ).all()
        )


def test_pause_resume_and_unenroll_with_reasons_on_the_timeline(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory
) -> None:
    rt.clock = lambda: NOW
    patient = make_patient()
    enrollment = _enroll(client, patient.id)
    assert _pending(rt, enrollment["id"]) > 0
    url = f"/api/v1/enrollments/{enrollment['id']}"
    paused = client.post(f"{url}/pause", headers=AUTH, json={"reason": "in rehab for two weeks", "actor": "rn@x.org"})
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    assert paused.get_json()["next_due_at"] is None
    assert _pending(rt, enrollment["id"]) == 0
    assert client.post(f"{url}/pause", headers=AUTH, json={"reason": "again"}).status_code == 409
    resumed = client.post(f"{url}/resume", headers=AUTH, json={"reason": "home again"})
    assert resumed.status_code == 200 and resumed.get_json()["status"] == "active"
    assert _pending(rt, enrollment["id"]) > 0
    ended = client.post(f"{url}/unenroll", headers=AUTH, json={"reason": "moved to hospice"})
    assert ended.status_code == 200 and ended.get_json()["status"] == "ended"
    assert _pending(rt, enrollment["id"]) == 0
    assert client.post(f"{url}/resume", headers=AUTH, json={"reason": "x"}).status_code == 409
    assert client.post(f"{url}/unenroll", headers=AUTH, json={"reason": "x"}).status_code == 409
    history = client.get(f"/api/v1/patients/{patient.id}/enrollments", headers=AUTH).get_json()
    assert [e["status"] for e in history["enrollments"]] == ["ended"]
    assert [(t["action"], t["reason"], t["actor"]) for t in history["timeline"]] == [
        ("created", "api", "api"),
        ("paused", "in rehab for two weeks", "rn@x.org"),
        ("resumed", "home again", "api"),
        ("ended", "moved to hospice", "api"),
    ]


def test_enrollment_changes_refuse_bad_input(client: FlaskClient, rt: Runtime, make_patient: PatientFactory) -> None:
    enrollment = _enroll(client, make_patient().id)
    url = f"/api/v1/enrollments/{enrollment['id']}/pause"
    assert client.post(url, json={"reason": "x"}).status_code == 401
    assert client.post(url, headers=AUTH, json={}).status_code == 422
    assert client.post(url, headers=AUTH, json={"reason": ""}).status_code == 422
    assert client.post(url, headers=AUTH, json={"reason": "a\x00b"}).status_code == 422
    assert client.post(url, headers=AUTH, json={"reason": "x" * 201}).status_code == 422
    assert client.post("/api/v1/enrollments/999999/pause", headers=AUTH, json={"reason": "x"}).status_code == 404
    assert client.get("/api/v1/patients/999999/enrollments", headers=AUTH).status_code == 404


def test_the_patient_page_shows_the_enrollment_history(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory
) -> None:
    from app.web.auth import create_user
    from tests.integration.staff_helpers import sign_in

    patient = make_patient()
    enrollment = _enroll(client, patient.id)
    client.post(f"/api/v1/enrollments/{enrollment['id']}/pause", headers=AUTH, json={"reason": "readmitted"})
    with rt.sessions() as session:
        from app.models import Patient, Program

        slug = session.scalars(select(Program.slug).join(Patient, Patient.program_id == Program.id)).first()
    create_user(rt, "rn@example.org", "correct-horse-battery", "care_manager", program=slug)
    sign_in(client, "rn@example.org", "correct-horse-battery")
    html = client.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "hf-remote-monitoring" in html and "readmitted" in html and "paused" in html


# -- TCM ----------------------------------------------------------------------------------------------


def _discharge(rt: Runtime, patient_id: int, when: dt.datetime, visit: str = "V1") -> int:
    with rt.sessions() as session, session.begin():
        from app.models import Patient

        patient = session.get(Patient, patient_id)
        assert patient is not None
        made = open_discharge(
            session, patient, visit_number=visit, discharged_at=when, tz="America/New_York", unit=None, diagnoses=[]
        )
        return made.id


def test_tcm_due_overdue_and_met_by_attempts(
    app: Flask, client: FlaskClient, rt: Runtime, make_patient: PatientFactory, program: Program
) -> None:
    friday = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)  # Friday 10:00 ET
    rt.clock = lambda: friday + dt.timedelta(hours=2)
    reached = _discharge(rt, make_patient().id, friday)
    tried = _discharge(rt, make_patient().id, friday)
    late = _discharge(rt, make_patient().id, dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC))  # before Thanksgiving
    assert client.get("/api/v1/tcm", headers=AUTH).status_code == 200
    due = client.get("/api/v1/tcm?status=due", headers=AUTH).get_json()["discharges"]
    assert {d["id"] for d in due} == {reached, tried}
    assert due[0]["deadline_at"] == "2026-12-09T04:59:59+00:00"  # Tuesday 23:59:59 ET
    overdue = client.get("/api/v1/tcm?status=overdue", headers=AUTH).get_json()["discharges"]
    assert [d["id"] for d in overdue] == [late]
    ok = client.post(f"/api/v1/tcm/{reached}/attempts", headers=AUTH, json={"outcome": "reached", "by": "rn@x.org"})
    assert ok.status_code == 201 and ok.get_json()["status"] == "met" and ok.get_json()["met_by"] == "reached"
    monday = "2026-12-07T09:00:00-05:00"
    one = client.post(
        f"/api/v1/tcm/{tried}/attempts",
        headers=AUTH,
        json={"outcome": "voicemail", "by": "rn@x.org", "at": "2026-12-04T11:30:00-05:00"},
    )
    assert one.get_json()["status"] == "due"
    rt.clock = lambda: dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)
    two = client.post(
        f"/api/v1/tcm/{tried}/attempts",
        headers=AUTH,
        json={"outcome": "no_answer", "method": "phone", "by": "lpn@x.org", "at": monday, "note": "rang 10 times"},
    )
    assert two.status_code == 201
    assert (two.get_json()["status"], two.get_json()["met_by"]) == ("met", "two_attempts")
    assert [a["by"] for a in two.get_json()["attempts"]] == ["rn@x.org", "lpn@x.org"]
    met = client.get("/api/v1/tcm?status=met", headers=AUTH).get_json()["discharges"]
    assert {d["id"] for d in met} == {reached, tried}
    listed = app.test_cli_runner().invoke(args=["tcm", "--status", "met"])
    assert listed.exit_code == 0 and "2 discharges" in listed.output and "met by two_attempts" in listed.output


def test_bot_conversations_never_count_and_attempts_are_validated(
    client: FlaskClient, rt: Runtime, make_patient: PatientFactory, program: Program
) -> None:
    rt.clock = lambda: NOW
    patient = make_patient()
    discharge_id = _discharge(rt, patient.id, NOW - dt.timedelta(hours=3))
    # The patient answers the bot's post-discharge check-in: the TCM clock does not move.
    started = client.post(f"/api/v1/patients/{patient.id}/conversations", headers=AUTH, json={"flow": "post-discharge"})
    assert started.status_code in (201, 409)
    assert client.get("/api/v1/tcm?status=due", headers=AUTH).get_json()["discharges"][0]["id"] == discharge_id
    url = f"/api/v1/tcm/{discharge_id}/attempts"
    for body, field in (
        ({"outcome": "texted", "by": "rn"}, "outcome"),
        ({"outcome": "reached", "by": "rn", "method": "sms"}, "method"),
        ({"outcome": "reached"}, "by"),
        ({"outcome": "reached", "by": "rn", "at": "2026-11-30T09:00:00"}, "at"),
        ({"outcome": "reached", "by": "rn", "at": "2027-01-01T09:00:00+00:00"}, "at"),
        ({"outcome": "reached", "by": "rn", "at": "2026-11-29T09:00:00+00:00"}, "at"),
    ):
        response = client.post(url, headers=AUTH, json=body)
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["error"]["fields"], (body, response.get_json())
    assert (
        client.post("/api/v1/tcm/999999/attempts", headers=AUTH, json={"outcome": "reached", "by": "rn"}).status_code
        == 404
    )
    assert client.get("/api/v1/tcm?status=late", headers=AUTH).status_code == 400
    assert client.get("/api/v1/tcm?program=nope", headers=AUTH).status_code == 400
    assert client.get("/api/v1/tcm").status_code == 401
    with rt.sessions() as session:
        assert session.scalars(select(Discharge)).one().attempts == []
