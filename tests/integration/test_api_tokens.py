"""API tokens scoped to one program (issue 11 item 1): `outreach create-token`, hashed at rest, requests
limited to the program's patients (403 in the error shape otherwise), read-only tokens, revocation, and
the deployment's global API_TOKEN still seeing everything."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.cli import main as cli
from app.escalation.service import open_or_join
from app.models import ApiToken, AuditEvent, Discharge, Enrollment, Patient, Program
from app.runtime import Runtime
from tests.conftest import API_TOKEN

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(app: Flask, slug: str, *extra: str) -> str:
    result = app.test_cli_runner().invoke(cli, ["create-token", "--program", slug, *extra])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("otk_") and len(token) > 40
    return token


@pytest.fixture()
def two_programs(rt: Runtime, program: Program, make_patient: Callable[..., Patient]) -> dict[str, Any]:
    with rt.sessions() as s, s.begin():
        south = Program(slug="south-clinic", name="South Clinic", phone_display="555-0200")
        s.add(south)
    north_patient = make_patient(given_name="Rosa", family_name="Diaz")
    south_patient = make_patient(given_name="Omar", family_name="Haddad", program_id=south.id, mrn="S-1")
    now = dt.datetime.now(dt.UTC)
    with rt.sessions() as s, s.begin():
        for patient in (north_patient, south_patient):
            row = s.get(Patient, patient.id)
            assert row is not None
            open_or_join(
                s, row, level="URGENT", reason="weight_gain", rule_id="r", detail={}, conversation_id=None, now=now
            )
            s.add(Enrollment(patient_id=patient.id, campaign="hf-remote-monitoring", anchor_date=now.date()))
            s.add(
                Discharge(
                    patient_id=patient.id,
                    program_id=row.program_id,
                    visit_number=f"V{patient.id}",
                    discharged_at=now - dt.timedelta(hours=3),
                    discharge_date=now.date(),
                    deadline_at=now + dt.timedelta(days=2),
                )
            )
    return {"north": program, "south": south, "north_patient": north_patient, "south_patient": south_patient}


def test_a_program_token_sees_only_its_program(
    app: Flask, client: FlaskClient, rt: Runtime, two_programs: dict[str, Any]
) -> None:
    token = make_token(app, "north-clinic")
    auth = bearer(token)
    north, south = two_programs["north_patient"].id, two_programs["south_patient"].id
    for path in ("", "/timeline", "/messages", "/answers", "/enrollments"):
        assert client.get(f"/api/v1/patients/{north}{path}", headers=auth).status_code == 200, path
        refused = client.get(f"/api/v1/patients/{south}{path}", headers=auth)
        assert refused.status_code == 403, path
        assert refused.get_json()["error"]["code"] == "forbidden"
    escalations = client.get("/api/v1/escalations", headers=auth).get_json()["escalations"]
    assert {e["patient_id"] for e in escalations} == {north}
    assert [p["slug"] for p in client.get("/api/v1/programs", headers=auth).get_json()["programs"]] == ["north-clinic"]
    assert client.get("/api/v1/programs/south-clinic", headers=auth).status_code == 403
    assert {d["patient_id"] for d in client.get("/api/v1/tcm", headers=auth).get_json()["discharges"]} == {north}
    assert client.get("/api/v1/tcm?program=south-clinic", headers=auth).status_code == 403
    with rt.sessions() as s:
        south_enrollment = s.scalars(select(Enrollment.id).where(Enrollment.patient_id == south)).one()
        south_discharge = s.scalars(select(Discharge.id).where(Discharge.patient_id == south)).one()
    writes = [
        (
            "/api/v1/patients",
            {"mrn": "S-1", "given_name": "O", "family_name": "H", "phone": "+12025550199", "program": "south-clinic"},
        ),
        ("/api/v1/enrollments", {"patient_id": south, "campaign": "hf-remote-monitoring"}),
        ("/api/v1/enrollments", {"mrn": "S-1", "program": "south-clinic", "campaign": "hf-remote-monitoring"}),
        (f"/api/v1/patients/{south}/conversations", {"flow": "hf-daily-check"}),
        (f"/api/v1/enrollments/{south_enrollment}/pause", {"reason": "x"}),
        (f"/api/v1/tcm/{south_discharge}/attempts", {"outcome": "reached", "by": "rn"}),
        ("/api/v1/programs", {"slug": "x-clinic", "name": "X", "phone_display": "555"}),
    ]
    for path, body in writes:
        response = client.post(path, headers=auth, json=body)
        assert response.status_code == 403, (path, response.get_json())
        assert set(response.get_json()["error"]) == {"code", "message", "fields"}
    assert client.patch("/api/v1/programs/north-clinic", headers=auth, json={"name": "N"}).status_code == 403
    # Its own program: a new patient lands in it without naming it.
    created = client.post(
        "/api/v1/patients",
        headers=auth,
        json={"mrn": "N-9", "given_name": "A", "family_name": "B", "phone": "+12025550177"},
    )
    assert created.status_code == 201, created.get_json()
    with rt.sessions() as s:
        new = s.scalars(select(Patient).where(Patient.mrn == "N-9")).one()
        assert new.program_id == two_programs["north"].id
        token_id = s.scalars(select(ApiToken.id)).one()
        audited = s.scalars(select(AuditEvent).where(AuditEvent.action.startswith("api."))).all()
    assert audited and all(e.detail["token_id"] == token_id for e in audited)


def test_the_token_is_stored_hashed_and_can_be_revoked(
    app: Flask, client: FlaskClient, rt: Runtime, two_programs: dict[str, Any]
) -> None:
    token = make_token(app, "north-clinic", "--name", "EHR feed")
    with rt.sessions() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in (row.prefix, row.name)
        assert row.name == "EHR feed" and row.role == "write"
    assert client.get("/api/v1/programs", headers=bearer(token)).status_code == 200
    assert (
        client.get("/api/v1/programs", headers=bearer(token[:-1] + ("A" if token[-1] != "A" else "B"))).status_code
        == 401
    )
    revoked = app.test_cli_runner().invoke(cli, ["revoke-token", row.prefix])
    assert revoked.exit_code == 0, revoked.output
    response = client.get("/api/v1/programs", headers=bearer(token))
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_a_read_token_may_only_read(app: Flask, client: FlaskClient, two_programs: dict[str, Any]) -> None:
    auth = bearer(make_token(app, "north-clinic", "--role", "read"))
    north = two_programs["north_patient"].id
    assert client.get(f"/api/v1/patients/{north}", headers=auth).status_code == 200
    refused = client.post(f"/api/v1/patients/{north}/conversations", headers=auth, json={"flow": "hf-daily-check"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"


def test_create_token_refuses_an_unknown_program_or_role(app: Flask, two_programs: dict[str, Any]) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(cli, ["create-token", "--program", "nope"]).exit_code != 0
    assert runner.invoke(cli, ["create-token", "--program", "north-clinic", "--role", "admin"]).exit_code != 0


def test_the_global_token_still_sees_every_program(client: FlaskClient, two_programs: dict[str, Any]) -> None:
    for key in ("north_patient", "south_patient"):
        assert client.get(f"/api/v1/patients/{two_programs[key].id}", headers=ADMIN).status_code == 200
    assert len(client.get("/api/v1/escalations", headers=ADMIN).get_json()["escalations"]) == 2
    assert len(client.get("/api/v1/programs", headers=ADMIN).get_json()["programs"]) == 2


def test_without_a_global_token_program_tokens_still_work(
    app_config: dict[str, Any], database_url: str, two_programs: dict[str, Any], app: Flask
) -> None:
    from app import create_app

    token = make_token(app, "north-clinic")
    no_global = create_app({**app_config, "api_token": ""})
    try:
        with no_global.test_client() as other:
            assert other.get("/api/v1/programs", headers=bearer(token)).status_code == 200
            off = other.get("/api/v1/programs", headers=ADMIN)
            assert off.status_code == 401 and off.get_json()["error"]["code"] == "api_disabled"
    finally:
        no_global.extensions["outreach"].engine.dispose()
