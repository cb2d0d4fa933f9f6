"""The JSON API's contract (DESIGN §3: shapes, errors, idempotent upsert) and the operator CLI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.cli import main as cli
from app.config import ROOT
from app.models import Enrollment, Patient, User
from app.runtime import Runtime, clear_current
from tests.conftest import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ANA = {
    "mrn": "A-1",
    "given_name": "Ana",
    "family_name": "Lopez",
    "phone": "(312) 555-0111",
    "language": "es-MX",
    "timezone": "America/Chicago",
    "conditions": ["Heart_Failure"],
    "unknown_field": "ignored",
}


def test_the_api_needs_the_bearer_token(client: FlaskClient, program: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
        response = client.get("/api/v1/escalations", headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"


def test_posting_the_same_mrn_twice_updates_one_patient(client: FlaskClient, program: Any, rt: Runtime) -> None:
    first = client.post("/api/v1/patients", headers=AUTH, json=ANA)
    assert first.status_code == 201
    assert first.json["phone"] == "+13125550111"
    assert first.json["language"] == "es"
    assert first.json["conditions"] == ["heart_failure"]
    assert first.json["opted_out"] is False
    again = client.post("/api/v1/patients", headers=AUTH, json={**ANA, "given_name": "Ana María"})
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]
    assert client.get(f"/api/v1/patients/{first.json['id']}", headers=AUTH).json["given_name"] == "Ana María"
    with rt.sessions() as session:
        assert session.scalar(select(func.count(Patient.id))) == 1


def test_invalid_patients_get_every_problem_named(client: FlaskClient, program: Any) -> None:
    response = client.post(
        "/api/v1/patients",
        headers=AUTH,
        json={
            "mrn": "B-2",
            "given_name": "",
            "family_name": "Ng",
            "phone": "12",
            "language": "fr",
            "timezone": "Mars/Olympus",
            "preferred_channel": "fax",
            "birth_date": "03/01/1950",
        },
    )
    assert response.status_code == 422
    fields = response.json["error"]["fields"]
    assert set(fields) == {"given_name", "phone", "language", "timezone", "preferred_channel", "birth_date"}
    assert client.post("/api/v1/patients", headers=AUTH, data="not json").status_code == 400


def test_unknown_things_are_404_or_422(client: FlaskClient, program: Any) -> None:
    assert client.get("/api/v1/patients/999", headers=AUTH).status_code == 404
    assert client.get("/api/v1/patients/999/messages", headers=AUTH).status_code == 404
    assert client.post("/api/v1/enrollments", headers=AUTH, json={"mrn": "nobody", "campaign": "x"}).status_code == 404
    client.post("/api/v1/patients", headers=AUTH, json=ANA)
    bad = client.post("/api/v1/enrollments", headers=AUTH, json={"mrn": "A-1", "campaign": "no-such-campaign"})
    assert bad.status_code == 422 and "campaign" in bad.json["error"]["fields"]
    assert client.get("/api/v1/escalations?level=PANIC", headers=AUTH).status_code == 400


def test_import_patients_from_csv_reports_bad_rows_by_line(
    app: Flask, program: Any, rt: Runtime, tmp_path: Path
) -> None:
    csv_file = tmp_path / "patients.csv"
    csv_file.write_text(
        "mrn,given_name,family_name,phone,language,timezone,conditions\n"
        "C-1,Rosa,Diaz,312-555-0121,es,America/Chicago,heart_failure;diabetes\n"
        "C-2,Li,Wei,not-a-phone,en,America/New_York,\n"
        "C-1,Rosa,Díaz,312-555-0121,es,America/Chicago,heart_failure\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(cli, ["import-patients", str(csv_file)])
    assert result.exit_code == 1
    assert "created=1 updated=0 unchanged=0 failed=2" in result.output
    assert f"{csv_file}:3: phone" in result.output
    # The same MRN twice in one file: which row is right cannot be told, so the second fails.
    assert f"{csv_file}:4: mrn: repeats line 2" in result.output
    with rt.sessions() as session:
        rosa = session.scalars(select(Patient).where(Patient.mrn == "C-1")).one()
        assert (rosa.family_name, rosa.conditions) == ("Diaz", ["heart_failure", "diabetes"])


def test_enroll_and_create_user_from_the_command_line(app: Flask, program: Any, rt: Runtime, make_patient: Any) -> None:
    patient = make_patient(mrn="D-1")
    runner = app.test_cli_runner()
    enrolled = runner.invoke(cli, ["enroll", "D-1", "hf-remote-monitoring", "--anchor", "2099-01-01"])
    assert enrolled.exit_code == 0, enrolled.output
    assert "next due 2099-01-01" in enrolled.output
    assert runner.invoke(cli, ["enroll", "D-1", "nope", "--anchor", "2099-01-01"]).exit_code != 0
    assert runner.invoke(cli, ["enroll", "D-1", "hf-remote-monitoring", "--anchor", "01/01/2099"]).exit_code != 0
    short = runner.invoke(cli, ["create-user", "rn@example.org", "--role", "supervisor"], input="short\nshort\n")
    assert short.exit_code != 0 and "at least 12" in short.output
    made = runner.invoke(
        cli, ["create-user", "RN@example.org", "--role", "supervisor"], input="a-long-passphrase\na-long-passphrase\n"
    )
    assert made.exit_code == 0, made.output
    with rt.sessions() as session:
        user = session.scalars(select(User)).one()
        assert (user.email, user.role) == ("rn@example.org", "supervisor")
        assert user.password_hash.startswith("scrypt:")
        [enrollment] = session.scalars(select(Enrollment)).all()
        assert (enrollment.patient_id, enrollment.campaign) == (patient.id, "hf-remote-monitoring")
        assert enrollment.anchor_date == dt.date(2099, 1, 1)


def test_healthz_reports_database_and_queue(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "queue": "ok"}


def test_create_app_takes_the_environments_names(app_config: dict[str, Any]) -> None:
    """Issue 8 item 7 (DESIGN §3): ``create_app({"DATABASE_URL": ..., "TESTING": True})``, the Flask
    tutorial's style; other upper-case keys are Flask's own configuration."""
    config = {
        "DATABASE_URL": app_config["database_url"],
        "REDIS_URL": app_config["redis_url"],
        "API_TOKEN": "env-style-token-" + "y" * 16,
        "OUTREACH_CHANNEL": "console",
        "OUTREACH_SMS_RATE": "0",
        "SESSION_COOKIE_SECURE": "0",
        "TESTING": True,
        "MAX_CONTENT_LENGTH": 4096,
    }
    application = create_app(config)
    try:
        rt: Runtime = application.extensions["outreach"]
        assert rt.settings.database_url == app_config["database_url"]
        assert rt.settings.api_token == config["API_TOKEN"]
        assert (rt.settings.channel, rt.settings.sms_segments_per_second) == ("console", 0.0)
        assert rt.settings.session_cookie_secure is False and application.config["SESSION_COOKIE_SECURE"] is False
        assert application.testing is True
        assert application.config["MAX_CONTENT_LENGTH"] == 4096
        client = application.test_client()
        auth = {"Authorization": f"Bearer {config['API_TOKEN']}"}
        assert client.get("/api/v1/escalations", headers=auth).status_code == 200
        too_big = client.post("/api/v1/patients", headers=auth, data="x" * 5000, content_type="application/json")
        assert too_big.status_code == 413
    finally:
        application.extensions["outreach"].engine.dispose()
        clear_current()
    with pytest.raises(ValueError, match="unknown"):
        create_app({"database_url_typo": "sqlite://"})


def test_the_outreach_commands_are_on_app_cli(app: Flask, program: Any, make_patient: Any) -> None:
    """``app.test_cli_runner()`` reaches the commands without naming the ``outreach`` group."""
    for name in ("tick", "enroll", "import-patients", "lint-content", "test-flows", "db", "create-user"):
        assert name in app.cli.commands, name
    make_patient(mrn="E-1")
    runner = app.test_cli_runner()
    enrolled = runner.invoke(args=["enroll", "E-1", "hf-remote-monitoring", "--anchor", "2099-01-01"])
    assert enrolled.exit_code == 0, enrolled.output
    assert "next due 2099-01-01" in enrolled.output
    ticked = runner.invoke(args=["tick", "--now", "2026-11-25T10:00:00+00:00"])
    assert ticked.exit_code == 0, ticked.output


def test_flask_app_reaches_the_outreach_commands(database_url: str) -> None:
    """``flask --app app ...`` (Flask's own command) finds ``create_app`` and the commands on ``app.cli``."""
    env = {**os.environ, "DATABASE_URL": database_url, "OUTREACH_CHANNEL": "console"}
    env.pop("REDIS_URL", None)
    flask = Path(sys.executable).with_name("flask")
    listed = subprocess.run(
        [str(flask), "--app", "app", "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    for name in ("tick", "lint-content", "test-flows", "import-patients"):
        assert name in listed.stdout, name
    # A command that uses the app's settings (DATABASE_URL from the environment) and its database.
    upgraded = subprocess.run(
        [str(flask), "--app", "app", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database is up to date" in upgraded.stdout


def test_import_patients_refuses_what_the_columns_cannot_hold(
    app: Flask, program: Any, rt: Runtime, tmp_path: Path
) -> None:
    """The CSV import checks sizes and characters before the write, as the API does: a bad row is
    reported by line (never a crash, never stored on SQLite when PostgreSQL would refuse it)."""
    csv_file = tmp_path / "patients.csv"
    rows = [
        "mrn,given_name,family_name,phone,language,timezone,conditions",
        f"{'M' * 10_000},Rosa,Diaz,312-555-0121,es,America/Chicago,",
        "F-2,Li\x00,Wei,312-555-0122,en,America/New_York,",
        f"F-3,Li,Wei,312-555-0123,en,{'A' * 300},",
        "F-4,Ana,Ng,312-555-0124,en,America/Chicago,copd",
    ]
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import-patients", str(csv_file)])
    assert result.exit_code == 1
    assert "created=1 updated=0 unchanged=0 failed=3" in result.output
    for line, field in ((2, "mrn"), (3, "given_name"), (4, "timezone")):
        assert f"{csv_file}:{line}: {field}" in result.output
    with rt.sessions() as session:
        assert [p.mrn for p in session.scalars(select(Patient)).all()] == ["F-4"]
