"""The JSON API never answers 500 for bad input (issue 8, item 6), on real PostgreSQL.

Every case here answered 500 (an HTML page) or was wrongly accepted before the request models: each
must now be a 4xx in the one error shape of DESIGN §3, naming the field at fault where there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from app import create_app
from app.migrations import upgrade
from app.models import Enrollment, Patient, Program
from app.runtime import Runtime, clear_current
from tests.conftest import API_TOKEN, PatientFactory

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ANA: dict[str, Any] = {
    "mrn": "A-1",
    "given_name": "Ana",
    "family_name": "Lopez",
    "phone": "(312) 555-0111",
    "language": "es",
    "timezone": "America/Chicago",
}


def _error(response: TestResponse, status: int) -> dict[str, Any]:
    """The response is ``status`` with the DESIGN §3 error shape (JSON, never HTML); returns the error."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    return error


def _names(error: dict[str, Any], field: str) -> bool:
    """The error names ``field`` itself or a part of it (``conditions.1``, ``thresholds.x``)."""
    return any(key == field or key.startswith(field + ".") for key in error["fields"])


def _patients(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count(Patient.id))) or 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "A" * 300),
        ("timezone", "America/../../etc/passwd"),
        ("timezone", "../../../etc/passwd"),
        ("given_name", "A" * 101),
        ("family_name", "B" * 5_000),
        ("mrn", "M" * 10_000),
        ("mrn", "A-1\x00"),
        ("given_name", "An\x00a"),
        ("family_name", "Lo\x1bpez"),
        ("phone", "3" * 500),
        ("phone", 3125550111),
        ("caregiver_phone", "not a phone"),
        ("language", "e" * 100),
        ("preferred_channel", "x" * 100),
        ("birth_date", "9999-12-31"),
        ("birth_date", "0001-01-01"),
        ("birth_date", 19500301),
        ("conditions", ["heart_failure", "x" * 1_000]),
        ("conditions", ["copd\x00"]),
        ("conditions", "copd"),
        ("given_name", 42),
        ("given_name", True),
        ("program", "p" * 1_000),
        ("program", "north\x00clinic"),
    ],
)
def test_a_bad_patient_field_is_422_naming_it(
    client: FlaskClient, program: Program, rt: Runtime, field: str, value: Any
) -> None:
    response = client.post("/api/v1/patients", headers=AUTH, json={**ANA, field: value})
    error = _error(response, 422)
    assert error["code"] == "invalid"
    assert _names(error, field), error
    assert _patients(rt) == 0


@pytest.mark.parametrize(
    "thresholds",
    [
        '{"weight_gain_1_day_lb": 1' + "0" * 400 + "}",
        '{"weight_gain_1_day_lb": 1e400}',
        '{"weight_gain_1_day_lb": NaN}',
        '{"weight_gain_1_day_lb": -Infinity}',
        '{"weight_gain_1_day_lb": true}',
        '{"weight_gain_1_day_lb": "3"}',
        '{"weight_gain_1_day_lb": 1e9}',
        '{"no_such_threshold": 3}',
        "[3]",
    ],
)
def test_thresholds_must_be_known_finite_and_sane(
    client: FlaskClient, program: Program, rt: Runtime, thresholds: str
) -> None:
    body = '{"mrn": "A-1", "given_name": "Ana", "family_name": "Lopez", "phone": "3125550111", "thresholds": '
    response = client.post(
        "/api/v1/patients", headers=AUTH, data=body + thresholds + "}", content_type="application/json"
    )
    error = _error(response, 422)
    assert _names(error, "thresholds"), error
    assert _patients(rt) == 0


def test_a_sane_threshold_is_kept(client: FlaskClient, program: Program) -> None:
    response = client.post("/api/v1/patients", headers=AUTH, json={**ANA, "thresholds": {"weight_gain_1_day_lb": 2}})
    assert response.status_code == 201, response.json
    assert response.json["thresholds"] == {"weight_gain_1_day_lb": 2.0}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"mrn": ' + "[" * 5_000 + "]" * 5_000 + "}",
        "not json",
        '{"mrn": "A-1",',
        "[1, 2]",
        '"a string"',
        "",
        "\x00",
        '{"mrn": "\\ud800"}',
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(client: FlaskClient, program: Program, body: str) -> None:
    for path in ("/api/v1/patients", "/api/v1/enrollments"):
        response = client.post(path, headers=AUTH, data=body, content_type="application/json")
        assert _error(response, 400)["code"] == "bad_request"


def test_a_body_that_is_not_json_at_all_is_400(client: FlaskClient, program: Program) -> None:
    response = client.post("/api/v1/patients", headers=AUTH, data={"mrn": "A-1"})
    assert _error(response, 400)["code"] == "bad_request"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"patient_id": True, "campaign": "hf-remote-monitoring"}, "patient_id"),
        ({"patient_id": 1.0, "campaign": "hf-remote-monitoring"}, "patient_id"),
        ({"patient_id": "1", "campaign": "hf-remote-monitoring"}, "patient_id"),
        ({"patient_id": 2**31, "campaign": "hf-remote-monitoring"}, "patient_id"),
        ({"patient_id": 10**30, "campaign": "hf-remote-monitoring"}, "patient_id"),
        ({"patient_id": -1, "campaign": "hf-remote-monitoring"}, "patient_id"),
        ({"mrn": "A-1\x00", "campaign": "hf-remote-monitoring"}, "mrn"),
        ({"mrn": "M" * 10_000, "campaign": "hf-remote-monitoring"}, "mrn"),
        ({"mrn": "A-1", "campaign": "hf-remote-monitoring", "program": "p\x00"}, "program"),
        ({"mrn": "A-1", "campaign": "c" * 1_000}, "campaign"),
        ({"mrn": "A-1", "campaign": 7}, "campaign"),
        ({"mrn": "A-1", "campaign": "hf-remote-monitoring", "anchor_date": "9999-12-31"}, "anchor_date"),
        ({"mrn": "A-1", "campaign": "hf-remote-monitoring", "anchor_date": "0001-01-01"}, "anchor_date"),
        ({"mrn": "A-1", "campaign": "hf-remote-monitoring", "anchor_date": 20261125}, "anchor_date"),
        ({"mrn": "A-1", "campaign": "hf-remote-monitoring", "variables": {"medication_name": "x\x00"}}, "variables"),
        (
            {"mrn": "A-1", "campaign": "hf-remote-monitoring", "variables": {"medication_name": "x" * 1_000}},
            "variables",
        ),
        ({"mrn": "A-1", "campaign": "hf-remote-monitoring", "variables": {"medication_name": {"a": 1}}}, "variables"),
        ({"mrn": "A-1", "campaign": "hf-remote-monitoring", "variables": [1]}, "variables"),
        ({"campaign": "hf-remote-monitoring"}, "mrn"),
    ],
)
def test_a_bad_enrollment_field_is_422_naming_it(
    client: FlaskClient, make_patient: PatientFactory, rt: Runtime, payload: dict[str, Any], field: str
) -> None:
    make_patient(mrn="A-1")
    error = _error(client.post("/api/v1/enrollments", headers=AUTH, json=payload), 422)
    assert _names(error, field), error
    with rt.sessions() as session:
        assert session.scalar(select(func.count(Enrollment.id))) == 0


def test_an_integer_patient_id_still_enrolls(client: FlaskClient, make_patient: PatientFactory) -> None:
    patient = make_patient(mrn="A-1")
    response = client.post(
        "/api/v1/enrollments",
        headers=AUTH,
        json={"patient_id": patient.id, "campaign": "hf-remote-monitoring", "anchor_date": "2026-11-25"},
    )
    assert response.status_code == 201, response.json
    assert response.json["patient_id"] == patient.id


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"flow": "f" * 1_000}, "flow"),
        ({"flow": "phq9\x00"}, "flow"),
        ({"flow": True}, "flow"),
        ({}, "flow"),
        ({"flow": "phq9", "variables": {"dose_time": "\x00"}}, "variables"),
        ({"flow": "phq9", "variables": "x"}, "variables"),
    ],
)
def test_a_bad_conversation_field_is_422_naming_it(
    client: FlaskClient, make_patient: PatientFactory, payload: dict[str, Any], field: str
) -> None:
    patient = make_patient()
    error = _error(client.post(f"/api/v1/patients/{patient.id}/conversations", headers=AUTH, json=payload), 422)
    assert _names(error, field), error


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/patients/{2**31}",
        f"/api/v1/patients/{10**30}",
        f"/api/v1/patients/{2**31}/messages",
        f"/api/v1/patients/{2**63}/answers",
        "/api/v1/patients/-1",
        "/api/v1/patients/abc",
        "/api/v1/patients/%C2%B2",
        "/api/v1/nowhere",
        "/api/v1/",
    ],
)
def test_unknown_paths_and_ids_are_json_404(client: FlaskClient, program: Program, path: str) -> None:
    assert _error(client.get(path, headers=AUTH), 404)["code"] == "not_found"


def test_a_conversation_for_an_id_past_2_31_is_404(client: FlaskClient, program: Program) -> None:
    response = client.post(f"/api/v1/patients/{2**31}/conversations", headers=AUTH, json={"flow": "phq9"})
    assert _error(response, 404)["code"] == "not_found"


@pytest.mark.parametrize(
    "query",
    ["patient_id=%C2%B2", "patient_id=abc", f"patient_id={2**31}", "patient_id=-1", "patient_id=1.0", "status=x%00"],
)
def test_bad_escalation_filters_are_400_naming_the_field(client: FlaskClient, program: Program, query: str) -> None:
    error = _error(client.get(f"/api/v1/escalations?{query}", headers=AUTH), 400)
    assert query.split("=")[0] in error["fields"], error


def test_a_good_patient_filter_still_filters(client: FlaskClient, make_patient: PatientFactory) -> None:
    patient = make_patient()
    response = client.get(f"/api/v1/escalations?patient_id={patient.id}&status=open&level=urgent", headers=AUTH)
    assert response.status_code == 200
    assert response.json == {"escalations": []}


@pytest.mark.parametrize(
    ("method", "path"),
    [("delete", "/api/v1/patients"), ("put", "/api/v1/patients/1"), ("post", "/api/v1/escalations")],
)
def test_a_wrong_method_is_json_405(client: FlaskClient, program: Program, method: str, path: str) -> None:
    response = getattr(client, method)(path, headers=AUTH)
    assert _error(response, 405)["code"] == "method_not_allowed"


def test_a_body_over_the_limit_is_json_413(client: FlaskClient, program: Program, rt: Runtime) -> None:
    big = '{"mrn": "' + "x" * (2 * 1024 * 1024) + '"}'
    response = client.post("/api/v1/patients", headers=AUTH, data=big, content_type="application/json")
    assert _error(response, 413)["code"] == "too_large"
    assert _patients(rt) == 0


def test_errors_outside_the_api_keep_their_own_pages(client: FlaskClient) -> None:
    """The JSON error shape is the API's: the care-manager UI's 404 is not turned into JSON."""
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype != "application/json"


@pytest.fixture()
def sqlite_app(app_config: dict[str, Any], tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    application = create_app({**app_config, "database_url": url})
    yield application
    rt: Runtime = application.extensions["outreach"]
    rt.engine.dispose()
    clear_current()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_same_limits_hold_on_sqlite_and_postgresql(
    request: pytest.FixtureRequest, app: Flask, backend: str
) -> None:
    """SQLite does not enforce VARCHAR lengths: validation before the write makes the demo refuse what
    production refuses, instead of storing a 10,000-character MRN that PostgreSQL would reject."""
    application = app if backend == "postgresql" else request.getfixturevalue("sqlite_app")
    rt: Runtime = application.extensions["outreach"]
    with rt.sessions() as session, session.begin():
        session.add(Program(slug="north", name="North", phone_display="555-0100"))
    client = application.test_client()
    for field, value in (("mrn", "M" * 10_000), ("given_name", "G" * 101), ("timezone", "T" * 65)):
        error = _error(client.post("/api/v1/patients", headers=AUTH, json={**ANA, field: value}), 422)
        assert field in error["fields"]
    assert client.post("/api/v1/patients", headers=AUTH, json={**ANA, "mrn": "M" * 64}).status_code == 201
    with rt.sessions() as session:
        assert session.scalar(select(func.count(Patient.id))) == 1


def test_an_id_path_is_one_rule_so_an_out_of_range_id_is_404_for_every_method(app: Flask, client: FlaskClient) -> None:
    # Two rules on one path (GET in one, POST in another) answer 405 for an id the converter refuses,
    # because Werkzeug matched the other rule's path first: schemathesis found it on /caregivers.
    rules: dict[str, int] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and "<id:" in rule.rule:
            rules[rule.rule] = rules.get(rule.rule, 0) + 1
    assert [path for path, count in rules.items() if count > 1] == []
    supported = {
        "/api/v1/patients/0/caregivers": ("get", "post"),
        "/api/v1/patients/99999999999/caregivers": ("get", "post"),
        "/api/v1/patients/0/care-plan": ("get", "put"),
    }
    for path, methods in supported.items():
        for method in methods:
            response = getattr(client, method)(path, json={}, headers=AUTH)
            assert response.status_code == 404, (method, path, response.get_json())
            assert response.get_json()["error"]["code"] == "not_found"
