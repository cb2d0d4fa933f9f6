"""API views: parse, call one service, render JSON."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.api.errors import ApiError
from app.api.serializers import answer_json, conversation_json, enrollment_json, escalation_json, message_json
from app.models import Answer, Escalation, Message, Patient, Program
from app.patients import ValidationFailed, default_program, patient_json, upsert_patient
from app.runtime import Runtime
from app.scheduling.enrollments import UnknownCampaign, enroll
from app.scheduling.on_demand import MissingVariables, StartRefused, UnknownFlow, start_flow_now
from app.variables import InvalidVariables, clean_variables

bp = Blueprint("api", __name__, url_prefix="/api/v1")
LEVELS = {"EMERGENCY", "URGENT", "ROUTINE", "INFO"}
STATUSES = {"open", "acknowledged", "resolved"}


def _runtime() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


@bp.before_request
def _authenticate() -> None:
    token = _runtime().settings.api_token
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if not token:
        raise ApiError(401, "api_disabled", "The API is off: set API_TOKEN to enable it.")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "unauthorized", "A valid bearer token is required.")


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return exc.response()


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    return data


def _patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise ApiError(404, "not_found", "No such patient.")
    return patient


def _program(session: Session, slug: Any) -> Program:
    if slug:
        program = session.scalars(select(Program).where(Program.slug == str(slug))).first()
        if program is None:
            raise ApiError(422, "invalid", "Unknown program.", {"program": "unknown program"})
        return program
    try:
        return default_program(session)
    except LookupError as exc:
        raise ApiError(409, "no_program", str(exc)) from None


@bp.post("/patients")
def create_patient() -> tuple[Response, int]:
    data = _json_body()
    rt = _runtime()
    with rt.sessions() as session, session.begin():
        program = _program(session, data.get("program"))
        try:
            patient, created = upsert_patient(
                session, program, data, actor="api", now=rt.now(), known_thresholds=rt.content.threshold_names()
            )
        except ValidationFailed as exc:
            raise ApiError(422, "invalid", "Some fields are not valid.", exc.fields) from None
        body = patient_json(patient)
    return jsonify(body), 201 if created else 200


@bp.get("/patients/<int:patient_id>")
def get_patient(patient_id: int) -> Response:
    with _runtime().sessions() as session:
        return jsonify(patient_json(_patient(session, patient_id)))


@bp.post("/enrollments")
def create_enrollment() -> tuple[Response, int]:
    data = _json_body()
    rt = _runtime()
    with rt.sessions() as session, session.begin():
        patient: Patient | None = None
        if data.get("patient_id") is not None:
            patient = session.get(Patient, data["patient_id"]) if isinstance(data["patient_id"], int) else None
        elif data.get("mrn"):
            program = _program(session, data.get("program"))
            patient = session.scalars(
                select(Patient).where(Patient.program_id == program.id, Patient.mrn == str(data["mrn"]))
            ).first()
        else:
            raise ApiError(422, "invalid", "Name the patient.", {"mrn": "mrn or patient_id is required"})
        if patient is None:
            raise ApiError(404, "not_found", "No such patient.")
        campaign = data.get("campaign")
        if not isinstance(campaign, str):
            raise ApiError(422, "invalid", "Name the campaign.", {"campaign": "required"})
        try:
            anchor = (
                dt.date.fromisoformat(data["anchor_date"])
                if data.get("anchor_date")
                else rt.now().astimezone(dt.UTC).date()
            )
        except (TypeError, ValueError):
            raise ApiError(422, "invalid", "Bad date.", {"anchor_date": "must be a date like 2026-11-25"}) from None
        try:
            variables = clean_variables(data.get("variables")) if "variables" in data else None
        except InvalidVariables as exc:
            raise ApiError(422, "invalid", "Bad variables.", {"variables": str(exc)}) from None
        try:
            enrollment = enroll(session, rt, patient, campaign, anchor, rt.now(), variables)
        except UnknownCampaign:
            raise ApiError(
                422, "invalid", "Unknown campaign.", {"campaign": f"unknown campaign '{campaign}'"}
            ) from None
        body = enrollment_json(enrollment)
    return jsonify(body), 201


@bp.post("/patients/<int:patient_id>/conversations")
def start_conversation_now(patient_id: int) -> tuple[Response, int]:
    """Start a flow now ("check on this patient now"): 201 with the conversation, 409 with the reason."""
    data = _json_body()
    flow_id = data.get("flow")
    rt = _runtime()
    with rt.sessions() as session, session.begin():
        patient = session.get(Patient, patient_id, with_for_update=True)
        if patient is None:
            raise ApiError(404, "not_found", "No such patient.")
        if not isinstance(flow_id, str) or not flow_id:
            raise ApiError(422, "invalid", "Name the flow.", {"flow": "required"})
        try:
            variables = clean_variables(data.get("variables"))
        except InvalidVariables as exc:
            raise ApiError(422, "invalid", "Bad variables.", {"variables": str(exc)}) from None
        try:
            conversation = start_flow_now(session, rt, patient, flow_id, rt.now(), variables)
        except UnknownFlow:
            raise ApiError(422, "invalid", "Unknown flow.", {"flow": f"unknown flow '{flow_id}'"}) from None
        except MissingVariables as exc:
            raise ApiError(422, "invalid", "The flow needs variables.", {"variables": str(exc)}) from None
        except StartRefused as exc:
            fields = {"allowed_at": exc.allowed_at.isoformat()} if exc.allowed_at else None
            raise ApiError(409, exc.code, exc.message, fields) from None
        body = conversation_json(conversation)
    return jsonify(body), 201


@bp.get("/patients/<int:patient_id>/messages")
def list_messages(patient_id: int) -> Response:
    with _runtime().sessions() as session:
        _patient(session, patient_id)
        rows = session.scalars(
            select(Message).where(Message.patient_id == patient_id).order_by(Message.created_at, Message.id)
        ).all()
        return jsonify({"messages": [message_json(m) for m in rows]})


@bp.get("/patients/<int:patient_id>/answers")
def list_answers(patient_id: int) -> Response:
    with _runtime().sessions() as session:
        _patient(session, patient_id)
        rows = session.scalars(
            select(Answer).where(Answer.patient_id == patient_id).order_by(Answer.answered_at, Answer.id)
        ).all()
        return jsonify({"answers": [answer_json(a) for a in rows]})


@bp.get("/escalations")
def list_escalations() -> Response:
    query = select(Escalation).options(selectinload(Escalation.triggers)).order_by(Escalation.created_at.desc())
    status = request.args.get("status")
    level = request.args.get("level")
    if status:
        if status not in STATUSES:
            raise ApiError(400, "bad_request", "Unknown status.", {"status": f"one of {sorted(STATUSES)}"})
        query = query.where(Escalation.status == status)
    if level:
        if level.upper() not in LEVELS:
            raise ApiError(400, "bad_request", "Unknown level.", {"level": f"one of {sorted(LEVELS)}"})
        query = query.where(Escalation.level == level.upper())
    if request.args.get("patient_id", "").isdigit():
        query = query.where(Escalation.patient_id == int(request.args["patient_id"]))
    with _runtime().sessions() as session:
        return jsonify({"escalations": [escalation_json(e) for e in session.scalars(query.limit(500)).all()]})
