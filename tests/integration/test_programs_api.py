"""Several programs in one deployment (issue 10 item 6): ``/api/v1/programs`` (auth, validation, 4xx),
the CLI, patients belonging to a program, texts carrying that program's name."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import Program
from app.runtime import Runtime
from tests.conftest import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SOUTH = {
    "slug": "south-plan",
    "name": "South Health Plan",
    "phone_display": "555-0200",
    "sender_number": "(312) 555-0190",
    "nurse_line": "312-555-0191",
    "on_call_phone": "312-555-0192",
    "timezone": "America/Chicago",
    "quiet_start_hour": 9,
    "quiet_end_hour": 20,
    "campaigns": ["hf-remote-monitoring"],
}


def test_programs_need_the_token(client: FlaskClient, program: Program) -> None:
    assert client.get("/api/v1/programs").status_code == 401
    assert client.post("/api/v1/programs", json=SOUTH).status_code == 401
    assert client.patch("/api/v1/programs/north-clinic", json={"name": "X"}).status_code == 401


def test_create_list_get_and_patch_a_program(client: FlaskClient, program: Program, rt: Runtime) -> None:
    created = client.post("/api/v1/programs", headers=AUTH, json=SOUTH)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["sender_number"] == "+13125550190" and body["nurse_line"] == "+13125550191"
    assert (body["quiet_start_hour"], body["quiet_end_hour"], body["timezone"]) == (9, 20, "America/Chicago")
    assert body["express_consent"] is False and (body["daily_cap"], body["weekly_cap"]) == (1, 3)
    listed = client.get("/api/v1/programs", headers=AUTH).get_json()["programs"]
    assert [p["slug"] for p in listed] == ["north-clinic", "south-plan"]
    assert client.post("/api/v1/programs", headers=AUTH, json=SOUTH).status_code == 409
    patched = client.patch(
        "/api/v1/programs/south-plan",
        headers=AUTH,
        json={
            "express_consent": True,
            "daily_cap": 2,
            "weekly_cap": 10,
            "sender_number": None,
            "messaging_service_sid": "MG" + "a" * 32,
        },
    )
    assert patched.status_code == 200, patched.get_json()
    data = patched.get_json()
    assert (data["express_consent"], data["daily_cap"], data["weekly_cap"]) == (True, 2, 10)
    assert data["sender_number"] is None and data["messaging_service_sid"] == "MG" + "a" * 32
    assert data["name"] == "South Health Plan"  # untouched fields stay
    assert client.get("/api/v1/programs/south-plan", headers=AUTH).get_json() == data
    assert client.get("/api/v1/programs/nope", headers=AUTH).status_code == 404
    assert client.patch("/api/v1/programs/nope", headers=AUTH, json={"name": "X"}).status_code == 404


def test_program_rules_are_422_naming_each_field(client: FlaskClient, program: Program) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({**SOUTH, "quiet_start_hour": 7}, "quiet_start_hour"),  # earlier than 08:00 (47 CFR 64.1200)
        ({**SOUTH, "quiet_end_hour": 22}, "quiet_end_hour"),
        ({**SOUTH, "quiet_start_hour": 12, "quiet_end_hour": 11}, "quiet_end_hour"),
        ({**SOUTH, "daily_cap": 5}, "daily_cap"),  # the health-care exemption allows 1 a day
        ({**SOUTH, "campaigns": ["no-such-campaign"]}, "campaigns"),
        ({**SOUTH, "messaging_service_sid": "MG" + "0" * 32}, "sender_number"),  # not both
        ({**SOUTH, "messaging_service_sid": "PN123"}, "messaging_service_sid"),
        ({**SOUTH, "nurse_line": "12"}, "nurse_line"),
        ({**SOUTH, "timezone": "Mars/Olympus"}, "timezone"),
        ({**SOUTH, "slug": "Bad Slug"}, "slug"),
        ({k: v for k, v in SOUTH.items() if k != "name"}, "name"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/programs", headers=AUTH, json=body)
        assert response.status_code == 422, (field, response.get_json())
        assert field in response.get_json()["error"]["fields"], (field, response.get_json())
    assert client.patch("/api/v1/programs/north-clinic", headers=AUTH, json={"name": None}).status_code == 422
    assert client.post("/api/v1/programs", headers=AUTH, data="[]", content_type="application/json").status_code == 400


def test_patients_belong_to_a_program_and_enrollment_respects_its_campaigns(
    client: FlaskClient, program: Program
) -> None:
    assert client.post("/api/v1/programs", headers=AUTH, json=SOUTH).status_code == 201
    patient = {
        "mrn": "S-1",
        "given_name": "Ana",
        "family_name": "Lopez",
        "phone": "312-555-0111",
        "program": "south-plan",
    }
    made = client.post("/api/v1/patients", headers=AUTH, json=patient)
    assert made.status_code == 201
    same_mrn_north = client.post("/api/v1/patients", headers=AUTH, json={**patient, "program": "north-clinic"})
    assert same_mrn_north.status_code == 201  # an MRN is unique per program, not per deployment
    refused = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"patient_id": made.get_json()["id"], "campaign": "post-discharge-tcm"},
    )
    assert refused.status_code == 422 and "campaign" in refused.get_json()["error"]["fields"]
    # A daily check-in needs more than the health-care exemption allows: refused until consent is recorded.
    needs_consent = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"mrn": "S-1", "program": "south-plan", "campaign": "hf-remote-monitoring"},
    )
    assert needs_consent.status_code == 409
    consent = {"basis": "express_written", "date": "2026-11-01", "recorded_by": "rn@example.org", "channels": ["sms"]}
    assert client.post("/api/v1/patients", headers=AUTH, json={**patient, "consent": consent}).status_code in (200, 201)
    ok = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"mrn": "S-1", "program": "south-plan", "campaign": "hf-remote-monitoring"},
    )
    assert ok.status_code == 201


def test_texts_carry_the_programs_name(
    client: FlaskClient, program: Program, rt: Runtime, post_twilio: Any, run_jobs: Any, fake_twilio: Any
) -> None:
    assert client.post("/api/v1/programs", headers=AUTH, json=SOUTH).status_code == 201
    patient = {
        "mrn": "S-2",
        "given_name": "Ana",
        "family_name": "Lopez",
        "phone": "312-555-0112",
        "program": "south-plan",
    }
    assert client.post("/api/v1/patients", headers=AUTH, json=patient).status_code == 201
    response = post_twilio("/twilio/sms", {"From": "+13125550112", "Body": "HELP", "MessageSid": "SM" + "1" * 32})
    assert response.status_code == 200
    run_jobs()
    sent = fake_twilio.messages
    assert any("South Health Plan" in m["Body"] for m in sent), sent
    # ... from the program's own number, not the deployment's TWILIO_FROM_NUMBER.
    assert {m.get("From") for m in sent} == {"+13125550190"}, sent
    # A Messaging Service instead: Twilio picks the number from the service's pool.
    service = "MG" + "b" * 32
    patched = client.patch(
        "/api/v1/programs/south-plan", headers=AUTH, json={"sender_number": None, "messaging_service_sid": service}
    )
    assert patched.status_code == 200
    post_twilio("/twilio/sms", {"From": "+13125550112", "Body": "HELP", "MessageSid": "SM" + "2" * 32})
    run_jobs()
    assert fake_twilio.messages[-1].get("MessagingServiceSid") == service, fake_twilio.messages[-1]


def test_the_cli_creates_and_lists_programs_with_the_new_fields(app: Flask, rt: Runtime) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=[
            "create-program",
            "west",
            "West Clinic",
            "--phone",
            "555-0300",
            "--on-call",
            "312-555-0193",
            "--sender",
            "312-555-0194",
            "--nurse-line",
            "312-555-0195",
            "--timezone",
            "America/Denver",
            "--quiet-hours",
            "9-20",
            "--campaign",
            "hf-remote-monitoring",
            "--express-consent",
            "--daily-cap",
            "2",
            "--weekly-cap",
            "7",
        ]
    )
    assert made.exit_code == 0, made.output
    with rt.sessions() as session:
        west = session.scalars(select(Program).where(Program.slug == "west")).one()
        assert (west.sender_number, west.nurse_line, west.timezone) == (
            "+13125550194",
            "+13125550195",
            "America/Denver",
        )
        assert (west.quiet_start_hour, west.quiet_end_hour, west.daily_cap, west.weekly_cap) == (9, 20, 2, 7)
        assert west.campaigns == ["hf-remote-monitoring"] and not west.uses_healthcare_exemption
    listed = runner.invoke(args=["list-programs"])
    assert "west" in listed.output and "+13125550194" in listed.output
    bad = runner.invoke(args=["create-program", "west", "West", "--phone", "1", "--quiet-hours", "6-22"])
    assert bad.exit_code != 0 and "quiet_start_hour" in bad.output
    capped = runner.invoke(args=["create-program", "east", "East", "--phone", "1", "--daily-cap", "3"])
    assert capped.exit_code != 0 and "FCC 15-72" in capped.output
