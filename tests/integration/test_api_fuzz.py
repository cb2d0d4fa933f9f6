"""The JSON API fuzzed on real PostgreSQL (issue 8, item 6): no input makes it answer 500.

- schemathesis generates requests from the API's own OpenAPI document (``/api/v1/openapi.json``), data
  that fits it and data that does not, for every operation, and checks each response: never a server
  error, a documented status code and content type, and a body that matches the documented schema;
- hypothesis posts arbitrary JSON (deep, huge numbers, NaN, control characters, wrong types) and raw
  bytes to every endpoint that takes a body: the answer is a documented 2xx/4xx in the error shape.

Both are bounded and seeded (``derandomize``), so a run is the same every time and takes seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from typing import Any

import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.openapi import openapi_document
from app.models import Patient
from app.programs.tcm import open_discharge
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from tests.conftest import API_TOKEN, PatientFactory
from tests.support.hl7_messages import adt

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
#: Cases per operation and generation mode: 17 operations x 2 modes x 30 = 1,020 requests.
SCHEMATHESIS_EXAMPLES = 30
BODY_EXAMPLES = 150
FUZZ = settings(
    max_examples=SCHEMATHESIS_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
#: Every text variable a flow may need (app/conversations/variables.py), so any flow can start.
EVERY_VARIABLE = {"appointment_at": "2026-12-16T10:00:00-05:00", "medication_name": "metformin", "dose_time": "08:00"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_openapi_document_covers_every_api_route(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")  # no token: the document holds shapes, not data
    assert response.status_code == 200
    document = response.get_json()
    assert document == json.loads(json.dumps(openapi_document()))
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), "/api/v1" + re.sub(r"\{(\w+)\}", r"<\1>", path))
        for path, item in document["paths"].items()
        for method in item
    }
    routed = {
        (method, re.sub(r"<id:(\w+)>", r"<\1>", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert documented == routed
    assert ("POST", "/api/v1/patients/<patient_id>/conversations") in routed
    for schema in ("PatientIn", "EnrollmentIn", "ConversationIn", "ErrorOut"):
        assert schema in document["components"]["schemas"]
    patient_in = document["components"]["schemas"]["PatientIn"]["properties"]
    assert patient_in["mrn"]["maxLength"] == 64
    assert patient_in["given_name"]["maxLength"] == 100


def _fixes(rt: Runtime, patient_ids: list[int]) -> dict[str, dict[str, st.SearchStrategy[Any]]]:
    """What JSON Schema cannot say (a phone that exists, a known campaign, a patient that exists), per
    operation: half of the positive cases get these values so they reach the code past validation."""
    dates = st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2030, 12, 31)).map(dt.date.isoformat)
    return {
        "POST /patients": {
            "phone": st.integers(0, 9999).map(lambda n: f"+1312555{n:04d}"),
            "caregiver_phone": st.sampled_from([None, "", "(202) 555-0188"]),
            "timezone": st.sampled_from(["America/Chicago", "America/New_York", "Pacific/Honolulu", "UTC"]),
            "language": st.sampled_from(["en", "es", "es-MX", None]),
            "birth_date": st.none() | dates.filter(lambda d: d < "2020"),
            "thresholds": st.none()
            | st.dictionaries(st.sampled_from(sorted(rt.content.threshold_names())), st.floats(0, 500)),
            "program": st.sampled_from([None, "north-clinic"]),
        },
        "POST /enrollments": {
            "patient_id": st.sampled_from(patient_ids),
            "campaign": st.sampled_from(sorted(rt.content.campaigns)),
            "anchor_date": st.none() | dates,
            "variables": st.none() | st.just(EVERY_VARIABLE),
            "program": st.none(),
        },
        "POST /patients/{patient_id}/conversations": {
            "flow": st.sampled_from(sorted(rt.content.flows)),
            "variables": st.just(EVERY_VARIABLE),
        },
        "POST /programs": {
            "slug": st.integers(0, 10**6).map(lambda n: f"fuzz-{n}"),
            "phone_display": st.just("555-0100"),
            "sender_number": st.sampled_from([None, "", "(312) 555-0190"]),
            "messaging_service_sid": st.none(),
            "nurse_line": st.sampled_from([None, "312-555-0191"]),
            "on_call_phone": st.sampled_from([None, "312-555-0192"]),
            "supervisor_phone": st.none(),
            "timezone": st.sampled_from([None, "America/Chicago"]),
            "quiet_start_hour": st.sampled_from([None, 8, 9]),
            "quiet_end_hour": st.sampled_from([None, 20, 21]),
            "daily_cap": st.none(),
            "weekly_cap": st.none(),
            "campaigns": st.none() | st.just(sorted(rt.content.campaigns)[:1]),
        },
        "POST /tcm/{discharge_id}/attempts": {
            "at": st.none(),
            "by": st.just("rn@example.org"),
        },
    }


ADT_BODIES = [adt(), adt("A08", control_id="F-2"), adt("A01", control_id="F-3"), adt(phones="", mrn="F-9")]


def _enrollment_and_discharge(rt: Runtime, patient_id: int) -> tuple[int, int]:
    """Rows the positive cases of the path-parameter operations can reach."""
    with rt.sessions() as session, session.begin():
        patient = session.get(Patient, patient_id)
        assert patient is not None
        enrollment = enroll(session, rt, patient, "hf-remote-monitoring", rt.now().date(), rt.now())
        discharge = open_discharge(
            session,
            patient,
            visit_number="FUZZ-1",
            discharged_at=rt.now() - dt.timedelta(hours=1),
            tz="America/New_York",
            unit=None,
            diagnoses=[],
        )
        return enrollment.id, discharge.id


def _fixed(strategy: st.SearchStrategy[Any], fixes: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    def apply(pair: tuple[Any, dict[str, Any]]) -> Any:
        case, values = pair
        if isinstance(case.body, dict):
            case.body.update(values)
        return case

    return st.tuples(strategy, st.fixed_dictionaries(fixes)).map(apply)


def _fuzz(cases: st.SearchStrategy[Any], label: str, statuses: Counter[tuple[str, int]]) -> None:
    @FUZZ
    @given(case=cases)
    def run(case: Any) -> None:
        response = case.call(headers=AUTH)
        statuses[(label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_schemathesis_finds_no_server_error(app: Flask, rt: Runtime, make_patient: PatientFactory) -> None:
    patients = [make_patient(), make_patient(language="es", timezone="America/Chicago")]
    fixes = _fixes(rt, [p.id for p in patients])
    enrollment_id, discharge_id = _enrollment_and_discharge(rt, patients[0].id)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    statuses: Counter[tuple[str, int]] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [operation.as_strategy(generation_mode=mode)]
            if mode is GenerationMode.POSITIVE and "{patient_id}" in operation.path:
                # Random ids name no row; these reach the code behind the 404.
                strategies += [
                    operation.as_strategy(generation_mode=mode, path_parameters={"patient_id": p.id}) for p in patients
                ]
            for name, value in (
                ("enrollment_id", enrollment_id),
                ("discharge_id", discharge_id),
                ("slug", "north-clinic"),
            ):
                if mode is GenerationMode.POSITIVE and f"{{{name}}}" in operation.path:
                    strategies.append(operation.as_strategy(generation_mode=mode, path_parameters={name: value}))
            if mode is GenerationMode.POSITIVE and operation.path == "/adt":
                strategies.append(
                    st.sampled_from(ADT_BODIES).map(
                        lambda text, op=operation: op.Case(body=text, media_type="text/plain")
                    )
                )
            if mode is GenerationMode.POSITIVE and operation.label in fixes:
                strategies = [_fixed(s, fixes[operation.label]) for s in strategies] + strategies

            _fuzz(st.one_of(strategies), operation.label, statuses)
    operations = {label for label, _status in statuses}
    print(f"\nschemathesis: {sum(statuses.values())} cases, {len(operations)} operations: {sorted(statuses.items())}")
    # Every operation but the document itself (schemathesis does not fuzz the schema's own URL).
    assert len(operations) == sum(len(item) for item in openapi_document()["paths"].values()) - 1
    assert not [key for key in statuses if key[1] >= 500]
    # The fuzzing reached past validation: some requests were accepted, some refused field by field.
    assert any(status in (200, 201) and "POST" in label for label, status in statuses)
    assert any(status == 422 for _label, status in statuses)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | st.sampled_from(["", "\x00", "A" * 300, "9999-12-31", "America/Chicago", "(312) 555-0111", "2026-11-25"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "mrn",
    "given_name",
    "family_name",
    "phone",
    "language",
    "timezone",
    "preferred_channel",
    "conditions",
    "caregiver_phone",
    "birth_date",
    "thresholds",
    "program",
    "patient_id",
    "campaign",
    "anchor_date",
    "variables",
    "flow",
]
GOOD = {
    "mrn": "A-1",
    "given_name": "Ana",
    "family_name": "Lopez",
    "phone": "(312) 555-0111",
    "campaign": "hf-remote-monitoring",
    "flow": "phq9",
}
BODIES = st.one_of(
    # A good body with some fields replaced by anything: reaches each check past the others.
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5).map(lambda changes: {**GOOD, **changes}),
    JSON_VALUES.map(lambda value: value),
    st.integers(min_value=1, max_value=20_000).map(lambda depth: "[" * depth + "]" * depth),
    st.binary(max_size=64),
)
ANSWERS = {200, 201, 400, 404, 409, 422}


def test_any_json_body_gets_a_defined_answer(client: FlaskClient, make_patient: PatientFactory) -> None:
    patient = make_patient()
    paths = [
        "/api/v1/patients",
        "/api/v1/enrollments",
        f"/api/v1/patients/{patient.id}/conversations",
        "/api/v1/programs",
        "/api/v1/programs/north-clinic",
        "/api/v1/enrollments/1/pause",
        "/api/v1/tcm/1/attempts",
    ]
    seen: Counter[int] = Counter()

    @settings(
        max_examples=BODY_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(path=st.sampled_from(paths), body=BODIES)
    def post(path: str, body: Any) -> None:
        data = body if isinstance(body, str | bytes) else json.dumps(body)  # NaN and Infinity as JSON extensions
        method = client.patch if path.endswith("north-clinic") else client.post
        response = method(path, headers=AUTH, data=data, content_type="application/json")
        seen[response.status_code] += 1
        assert response.status_code in ANSWERS, (response.status_code, response.get_data(as_text=True)[:200])
        assert response.mimetype == "application/json"
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert set(error) == {"code", "message", "fields"}
            assert all(isinstance(v, str) for v in error["fields"].values())

    post()
    print(f"\nbodies: {sum(seen.values())} posts: {sorted(seen.items())}")
    assert seen[422] and seen[400]
