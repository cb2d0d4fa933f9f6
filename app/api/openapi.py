"""The OpenAPI 3.1 document of ``/api/v1``, served at ``GET /api/v1/openapi.json``.

Request and response bodies are the pydantic models' JSON Schemas (``schemas.py``: OpenAPI 3.1 uses
JSON Schema 2020-12, which pydantic emits), so the document cannot drift from what the API checks.
Paths, parameters and status codes are listed here, one entry per view in ``views.py``.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api import schemas

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    "400": "The body is not a JSON object, or a filter is bad.",
    "401": "No valid bearer token (or API_TOKEN is unset).",
    "404": "No such patient, enrollment, program, discharge or path.",
    "405": "Method not allowed.",
    "409": (
        "A conflict: no program set up, a flow cannot start now, a campaign needs express consent first, a slug"
        " taken, an enrollment in another state."
    ),
    "413": "The body is larger than 1 MiB.",
    "422": "A field is not valid; `fields` names each one.",
}
PATIENT_ID = {
    "name": "patient_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": schemas.MAX_ID},
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


def _operation(
    summary: str,
    ok: dict[str, type[BaseModel]],
    errors: tuple[str, ...],
    *,
    body: type[BaseModel] | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {"description": "OK" if status == "200" else "Created", "content": _json(model)}
        for status, model in ok.items()
    }
    for status in ("401", *errors):
        responses[status] = {"description": ERROR_STATUSES[status], "content": _json(schemas.ErrorOut)}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


MODELS: tuple[type[BaseModel], ...] = (
    schemas.PatientIn,
    schemas.EnrollmentIn,
    schemas.ConversationIn,
    schemas.PatientOut,
    schemas.EnrollmentOut,
    schemas.ConversationOut,
    schemas.MessagesOut,
    schemas.AnswersOut,
    schemas.EscalationsOut,
    schemas.TimelineOut,
    schemas.ErrorOut,
    schemas.ProgramIn,
    schemas.ProgramPatch,
    schemas.EnrollmentChangeIn,
    schemas.AttemptIn,
    schemas.ProgramOut,
    schemas.ProgramsOut,
    schemas.EnrollmentsOut,
    schemas.AdtOut,
    schemas.TcmOut,
    schemas.TcmListOut,
    schemas.CarePlanIn,
    schemas.CarePlanOut,
    schemas.CaregiverIn,
    schemas.CaregiverOut,
    schemas.CaregiversOut,
)
REQUEST_MODELS = {
    schemas.PatientIn,
    schemas.EnrollmentIn,
    schemas.ConversationIn,
    schemas.ProgramIn,
    schemas.ProgramPatch,
    schemas.EnrollmentChangeIn,
    schemas.AttemptIn,
    schemas.CarePlanIn,
    schemas.CaregiverIn,
}
ENROLLMENT_ID = {
    "name": "enrollment_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": schemas.MAX_ID},
}
DISCHARGE_ID = {
    "name": "discharge_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": schemas.MAX_ID},
}
SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
}


def _change(summary: str) -> dict[str, Any]:
    return _operation(
        summary,
        {"200": schemas.EnrollmentOut},
        ("400", "404", "409", "413", "422"),
        body=schemas.EnrollmentChangeIn,
        parameters=[ENROLLMENT_ID],
    )


def _adt_operation() -> dict[str, Any]:
    operation = _operation(
        "One HL7 v2 ADT message (ER7 text): the ACK (AA 200, AE 422, AR 400)",
        {"200": schemas.AdtOut},
        ("400", "413", "422"),
        parameters=[_query("program", {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}, "Program slug.")],
    )
    operation["requestBody"] = {
        "required": True,
        "description": "The message (ER7, segments ending with CR); application/hl7-v2 is accepted too.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return operation


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document as a dict (built once per process)."""
    _keys, definitions = models_json_schema(
        [(model, "validation" if model in REQUEST_MODELS else "serialization") for model in MODELS],
        ref_template=REF,
    )
    paths: dict[str, Any] = {
        "/patients": {
            "post": _operation(
                "Create or update a patient by MRN (idempotent)",
                {"200": schemas.PatientOut, "201": schemas.PatientOut},
                ("400", "409", "413", "422"),
                body=schemas.PatientIn,
            )
        },
        "/patients/{patient_id}": {
            "get": _operation("One patient", {"200": schemas.PatientOut}, ("404",), parameters=[PATIENT_ID])
        },
        "/enrollments": {
            "post": _operation(
                "Enroll a patient in a campaign (idempotent per campaign)",
                {"201": schemas.EnrollmentOut},
                ("400", "404", "409", "413", "422"),
                body=schemas.EnrollmentIn,
            )
        },
        "/patients/{patient_id}/conversations": {
            "post": _operation(
                "Start a flow now",
                {"201": schemas.ConversationOut},
                ("400", "404", "409", "413", "422"),
                body=schemas.ConversationIn,
                parameters=[PATIENT_ID],
            )
        },
        "/patients/{patient_id}/care-plan": {
            "get": _operation(
                "The patient's care plan", {"200": schemas.CarePlanOut}, ("404",), parameters=[PATIENT_ID]
            ),
            "put": _operation(
                "Replace the care plan (re-derives pending check-ins)",
                {"200": schemas.CarePlanOut},
                ("400", "404", "409", "413", "422"),
                body=schemas.CarePlanIn,
                parameters=[PATIENT_ID],
            ),
        },
        "/patients/{patient_id}/messages": {
            "get": _operation(
                "The patient's transcript, oldest first",
                {"200": schemas.MessagesOut},
                ("404",),
                parameters=[PATIENT_ID],
            )
        },
        "/patients/{patient_id}/answers": {
            "get": _operation(
                "The patient's answers, oldest first", {"200": schemas.AnswersOut}, ("404",), parameters=[PATIENT_ID]
            )
        },
        "/patients/{patient_id}/caregivers": {
            "get": _operation(
                "The patient's caregivers with their scope and consent record",
                {"200": schemas.CaregiversOut},
                ("404",),
                parameters=[PATIENT_ID],
            ),
            "post": _operation(
                "Record the patient's permission for a caregiver phone and its scope (201 new, 200 updated)",
                {"201": schemas.CaregiverOut, "200": schemas.CaregiverOut},
                ("400", "404", "413", "422"),
                body=schemas.CaregiverIn,
                parameters=[PATIENT_ID],
            ),
        },
        "/patients/{patient_id}/caregivers/{caregiver_id}": {
            "delete": _operation(
                "The patient withdrew the permission: nothing more goes to or is taken from this caregiver",
                {"200": schemas.CaregiverOut},
                ("404",),
                parameters=[
                    PATIENT_ID,
                    {
                        "name": "caregiver_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": schemas.MAX_ID},
                    },
                ],
            ),
        },
        "/patients/{patient_id}/timeline": {
            "get": _operation(
                "Scheduling facts, newest first: touches skipped or deferred and why, enrollments stopped, "
                "consent recorded",
                {"200": schemas.TimelineOut},
                ("404",),
                parameters=[PATIENT_ID],
            )
        },
        "/escalations": {
            "get": _operation(
                "The newest 500 escalations",
                {"200": schemas.EscalationsOut},
                ("400",),
                parameters=[
                    _query("status", {"type": "string", "enum": ["open", "acknowledged", "resolved"]}, "Filter."),
                    _query(
                        "level",
                        {"type": "string", "enum": ["EMERGENCY", "URGENT", "ROUTINE", "INFO"]},
                        "Filter (case-insensitive).",
                    ),
                    _query(
                        "patient_id",
                        {"type": "integer", "minimum": 1, "maximum": schemas.MAX_ID},
                        "Only this patient's escalations.",
                    ),
                ],
            )
        },
        "/enrollments/{enrollment_id}/pause": {"post": _change("Pause outreach with a reason")},
        "/enrollments/{enrollment_id}/resume": {"post": _change("Resume a paused enrollment")},
        "/enrollments/{enrollment_id}/unenroll": {"post": _change("End an enrollment with a reason")},
        "/patients/{patient_id}/enrollments": {
            "get": _operation(
                "The patient's enrollments and their timeline",
                {"200": schemas.EnrollmentsOut},
                ("404",),
                parameters=[PATIENT_ID],
            )
        },
        "/programs": {
            "get": _operation("Every program", {"200": schemas.ProgramsOut}, ()),
            "post": _operation(
                "Create a program",
                {"201": schemas.ProgramOut},
                ("400", "409", "413", "422"),
                body=schemas.ProgramIn,
            ),
        },
        "/programs/{slug}": {
            "get": _operation("One program", {"200": schemas.ProgramOut}, ("404",), parameters=[SLUG]),
            "patch": _operation(
                "Change a program",
                {"200": schemas.ProgramOut},
                ("400", "404", "413", "422"),
                body=schemas.ProgramPatch,
                parameters=[SLUG],
            ),
        },
        "/adt": {"post": _adt_operation()},
        "/tcm": {
            "get": _operation(
                "Discharges and their TCM clock (2 business days), soonest deadline first",
                {"200": schemas.TcmListOut},
                ("400",),
                parameters=[
                    _query("status", {"type": "string", "enum": ["due", "overdue", "met", "cancelled"]}, "Filter."),
                    _query("program", {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}, "Program slug."),
                ],
            )
        },
        "/tcm/{discharge_id}/attempts": {
            "post": _operation(
                "Log a care manager's interactive-contact attempt",
                {"201": schemas.TcmOut},
                ("400", "404", "413", "422"),
                body=schemas.AttemptIn,
                parameters=[DISCHARGE_ID],
            )
        },
        "/openapi.json": {
            "get": {
                "summary": "This document (no token needed)",
                "security": [],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {}}}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Outreach API",
            "version": "1",
            "description": (
                "Enrolling systems and reports. Bearer token `API_TOKEN`. Errors are "
                '`{"error": {"code", "message", "fields"}}`; unknown fields are ignored on input.'
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": definitions.get("$defs", {}),
        },
        "paths": paths,
    }
