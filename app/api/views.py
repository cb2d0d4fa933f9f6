"""API views: parse, call one service, render JSON."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as NoRoute

from app.api.errors import ApiError
from app.api.schemas import (
    MAX_ID,
    AttemptIn,
    CaregiverIn,
    CarePlanIn,
    ConversationIn,
    EnrollmentChangeIn,
    EnrollmentIn,
    EscalationQuery,
    PatientIn,
    ProgramIn,
    ProgramPatch,
    TcmQuery,
    field_errors,
    is_malformed,
)
from app.api.serializers import answer_json, conversation_json, enrollment_json, escalation_json, message_json
from app.careplan.service import CarePlanInvalid, Goal, Medication, PlanInput, care_plan_json, save_care_plan
from app.conversations.variables import InvalidVariables, clean_variables
from app.models import (
    Answer,
    AuditEvent,
    Caregiver,
    Discharge,
    Enrollment,
    Escalation,
    Message,
    Patient,
    Program,
    TimelineEvent,
)
from app.patients.api_tokens import TOKEN_PREFIX, ApiCaller, authenticate
from app.patients.caregivers import (
    InvalidCaregiver,
    caregiver_json,
    caregivers_of,
    clean_caregiver,
    grant_caregiver_permission,
    revoke_caregiver,
)
from app.patients.consent import InvalidConsent, consent_json
from app.patients.service import ValidationFailed, default_program, patient_json
from app.programs import enrollment as enrollments
from app.programs import tcm
from app.programs.adt import receive_adt
from app.programs.programs import (
    ProgramExists,
    ProgramInvalid,
    campaign_allowed,
    find_program,
    program_json,
    save_program,
)
from app.runtime import Runtime
from app.scheduling.enrollments import ConsentRequired, UnknownCampaign, enroll, save_patient
from app.scheduling.on_demand import MissingVariables, StartRefused, UnknownFlow, start_flow_now
from app.scheduling.reasons import reason_text

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
#: Short codes for the HTTP errors Werkzeug raises before (or instead of) a view: routing, body size.
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
PUBLIC_ENDPOINTS = {"api.openapi_document"}

M = TypeVar("M", bound=BaseModel)


class IdConverter(BaseConverter):
    """``<id:patient_id>``: ASCII digits naming a row id (1..2**31-1); anything else is no route (404).

    Werkzeug's ``int`` accepts any Unicode digit and any size; PostgreSQL's ``integer`` does not.
    """

    regex = r"[0-9]{1,10}"
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise NoRoute()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


@bp.record_once
def _install(state: Any) -> None:
    state.app.url_map.converters["id"] = IdConverter


def _runtime() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    rt = _runtime()
    token = rt.settings.api_token
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if not token and not given.startswith(TOKEN_PREFIX):
        raise ApiError(
            401, "api_disabled", "The API is off: set API_TOKEN or use a program token (outreach create-token)."
        )
    with rt.sessions() as session:
        caller = authenticate(session, given, token)
    if caller is None:
        raise ApiError(401, "unauthorized", "A valid bearer token is required.")
    if caller.role == "read" and request.method not in {"GET", "HEAD"}:
        raise ApiError(403, "forbidden", "This token may only read.")
    g.api_caller = caller


def _caller() -> ApiCaller:
    caller: ApiCaller = g.api_caller
    return caller


def _allow(program_id: int) -> None:
    """403 when the caller's token is scoped to other programs."""
    if not _caller().may_see(program_id):
        raise ApiError(403, "forbidden", "This token may not see this program's patients.")


def _global_only() -> None:
    if not _caller().is_global:
        raise ApiError(403, "forbidden", "Only the deployment's admin token may do this.")


@bp.after_request
def _audit(response: Response) -> Response:
    """An audit row for every answered API call that read or changed patient data: the endpoint and the
    token (``token_id``; None = the deployment's global token), not a person."""
    if request.endpoint in PUBLIC_ENDPOINTS or response.status_code >= 400 or request.endpoint is None:
        return response
    args = request.view_args or {}
    patient_id = args.get("patient_id")
    with _runtime().sessions() as session, session.begin():
        session.add(
            AuditEvent(
                user_id=None,
                action="api.read" if request.method == "GET" else "api.write",
                subject_type="patient" if isinstance(patient_id, int) else "api",
                subject_id=patient_id if isinstance(patient_id, int) else None,
                detail={
                    "endpoint": request.endpoint,
                    "status": response.status_code,
                    "token_id": getattr(g.get("api_caller"), "token_id", None),
                },
            )
        )
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return exc.response()


def _under_api(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    """Under ``/api/v1`` every HTTP error (no route 404, 405, 413, a 400 from Werkzeug, a 500) has the
    error shape of DESIGN §3; elsewhere (the care-manager UI) Werkzeug's own page is kept."""
    if not _under_api(request.path):
        page = current_app.extensions.get("outreach.error_page")
        return page(exc) if page is not None else exc
    status = exc.code or 500
    code = HTTP_CODES.get(status, "internal_error" if status >= 500 else "http_error")
    message = {
        404: "No such resource.",
        405: "This method is not allowed here.",
        413: "The request body is too large.",
    }.get(status, exc.description or exc.name)
    response, status = ApiError(status, code, message).response()
    if status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods or [])  # type: ignore[attr-defined]
    return response, status


def _parse(model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """The request's JSON body validated by ``model``: 400 if it is not a JSON object (not JSON, too
    deep, an array, another content type), 422 naming every bad field otherwise."""
    if not request.is_json:
        raise ApiError(400, "bad_request", "The body must be a JSON object (Content-Type: application/json).")
    try:
        return model.model_validate_json(request.get_data(cache=True), context=context)
    except ValidationError as exc:
        if is_malformed(exc):
            raise ApiError(400, "bad_request", "The body must be a JSON object.") from None
        raise ApiError(422, "invalid", "Some fields are not valid.", field_errors(exc)) from None


def _patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise ApiError(404, "not_found", "No such patient.")
    _allow(patient.program_id)
    return patient


def _program(session: Session, slug: str | None) -> Program:
    if slug:
        program = session.scalars(select(Program).where(Program.slug == slug)).first()
        if program is None:
            raise ApiError(422, "invalid", "Unknown program.", {"program": "unknown program"})
        _allow(program.id)
        return program
    scope = _caller().scope
    if scope is not None:  # a program token's default is its own program
        found = session.get(Program, min(scope))
        if found is not None:
            return found
    try:
        return default_program(session)
    except LookupError as exc:
        raise ApiError(409, "no_program", str(exc)) from None


def _variables(raw: dict[str, str] | None) -> dict[str, str] | None:
    try:
        return clean_variables(raw) if raw is not None else None
    except InvalidVariables as exc:
        raise ApiError(422, "invalid", "Bad variables.", {"variables": str(exc)}) from None


@bp.post("/patients")
def create_patient() -> tuple[Response, int]:
    """Create or update a patient by MRN: 201 created, 200 updated, 422 naming each bad field."""
    rt = _runtime()
    data = _parse(PatientIn, context={"thresholds": rt.content.threshold_defaults()})
    with rt.sessions() as session, session.begin():
        program = _program(session, data.program)
        try:
            patient, created = save_patient(
                session,
                rt,
                program,
                data.as_payload(),
                actor="api",
                now=rt.now(),
                consent=data.consent.model_dump(exclude_none=True) if data.consent else None,
                known_thresholds=rt.content.threshold_defaults(),
            )
        except ValidationFailed as exc:
            raise ApiError(422, "invalid", "Some fields are not valid.", exc.fields) from None
        except InvalidConsent as exc:
            raise ApiError(422, "invalid", "The consent record is not valid.", exc.fields) from None
        body = _patient_body(patient)
    return jsonify(body), 201 if created else 200


def _patient_body(patient: Patient) -> dict[str, Any]:
    """DESIGN §3's patient out, plus its consent record."""
    return {**patient_json(patient), "consent": consent_json(patient, patient.program)}


@bp.get("/patients/<id:patient_id>")
def get_patient(patient_id: int) -> Response:
    with _runtime().sessions() as session:
        return jsonify(_patient_body(_patient(session, patient_id)))


@bp.get("/patients/<id:patient_id>/timeline")
def patient_timeline(patient_id: int) -> Response:
    """Scheduling facts for staff, newest first (500 at most): why a touch was skipped or deferred."""
    with _runtime().sessions() as session:
        _patient(session, patient_id)
        rows = session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.patient_id == patient_id)
            .order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc())
            .limit(500)
        ).all()
        return jsonify(
            {
                "events": [
                    {
                        "id": row.id,
                        "kind": row.kind,
                        "code": row.code,
                        "text": {lang: reason_text(row.code, lang) for lang in ("en", "es")},
                        "at": row.at.isoformat(),
                        "enrollment_id": row.enrollment_id,
                        "detail": dict(row.detail or {}),
                    }
                    for row in rows
                ]
            }
        )


@bp.post("/enrollments")
def create_enrollment() -> tuple[Response, int]:
    """Enroll a patient in a campaign (idempotent per campaign): 201 with the enrollment."""
    data = _parse(EnrollmentIn)
    rt = _runtime()
    if data.patient_id is None and data.mrn is None:
        raise ApiError(422, "invalid", "Name the patient.", {"mrn": "mrn or patient_id is required"})
    variables = _variables(data.variables)
    with rt.sessions() as session, session.begin():
        patient: Patient | None
        if data.patient_id is not None:
            patient = session.get(Patient, data.patient_id)
        else:
            program = _program(session, data.program)
            patient = session.scalars(
                select(Patient).where(Patient.program_id == program.id, Patient.mrn == data.mrn)
            ).first()
        if patient is None:
            raise ApiError(404, "not_found", "No such patient.")
        _allow(patient.program_id)
        known = rt.content.campaign(data.campaign)  # an id or one of its aliases (post-discharge-tcm)
        if known is not None and not campaign_allowed(patient.program, known.id):
            raise ApiError(
                422, "invalid", "Not a campaign of this program.", {"campaign": "the program does not run it"}
            )
        now = rt.now()
        existed = session.scalars(
            select(Enrollment.id).where(
                Enrollment.patient_id == patient.id, Enrollment.campaign == data.campaign, Enrollment.status == "active"
            )
        ).first()
        try:
            # No anchor date: the patient's local today (enroll decides), never the UTC date.
            enrollment = enroll(session, rt, patient, data.campaign, data.anchor_date, now, variables)
        except UnknownCampaign:
            raise ApiError(
                422, "invalid", "Unknown campaign.", {"campaign": f"unknown campaign '{data.campaign}'"}
            ) from None
        except ConsentRequired as exc:
            raise ApiError(409, exc.code, exc.message, {"consent": exc.cap}) from None
        if existed is None:
            enrollments.note_event(session, patient.id, "enrollment.created", enrollment, "api", "api", now)
        body = enrollment_json(enrollment)
    return jsonify(body), 201


@bp.post("/patients/<id:patient_id>/conversations")
def start_conversation_now(patient_id: int) -> tuple[Response, int]:
    """Start a flow now ("check on this patient now"): 201 with the conversation, 409 with the reason."""
    data = _parse(ConversationIn)
    variables = _variables(data.variables) or {}
    rt = _runtime()
    with rt.sessions() as session, session.begin():
        patient = session.get(Patient, patient_id, with_for_update=True)
        if patient is None:
            raise ApiError(404, "not_found", "No such patient.")
        _allow(patient.program_id)
        caregiver_id: int | None = None
        if data.to == "caregiver":
            allowed = caregivers_of(session, patient.id)
            if not allowed:
                raise ApiError(409, "no_caregiver", "The patient has no caregiver with permission to get texts.")
            caregiver_id = allowed[0].id
        try:
            conversation = start_flow_now(
                session, rt, patient, data.flow, rt.now(), variables, caregiver_id=caregiver_id
            )
        except UnknownFlow:
            raise ApiError(422, "invalid", "Unknown flow.", {"flow": f"unknown flow '{data.flow}'"}) from None
        except MissingVariables as exc:
            raise ApiError(422, "invalid", "The flow needs variables.", {"variables": str(exc)}) from None
        except StartRefused as exc:
            fields = {"allowed_at": exc.allowed_at.isoformat()} if exc.allowed_at else None
            raise ApiError(409, exc.code, exc.message, fields) from None
        body = conversation_json(conversation)
    return jsonify(body), 201


# One rule for both methods: an out-of-range id is then no route (404) for PUT too, not a 405 from the
# GET rule's path matching before the id converter refuses it.
@bp.route("/patients/<id:patient_id>/care-plan", methods=["GET", "PUT"])
def care_plan(patient_id: int) -> Response:
    """GET: the patient's care plan (200, 404). PUT: replace it and re-derive the pending check-ins
    (200, 404, 409 consent_required, 422 naming each bad field)."""
    if request.method == "PUT":
        return _put_care_plan(patient_id)
    rt = _runtime()
    with rt.sessions() as session:
        return jsonify(care_plan_json(session, rt, _patient(session, patient_id)))


def _put_care_plan(patient_id: int) -> Response:
    data = _parse(CarePlanIn)
    rt = _runtime()
    plan = PlanInput(
        conditions=tuple(data.conditions),
        goals=tuple(Goal(g.text, g.weekly_check, g.confidence) for g in data.goals),
        thresholds=dict(data.thresholds),
        medications=tuple(Medication(m.name, m.dose, tuple(m.times)) for m in data.medications),
        monitoring=tuple(data.monitoring) if data.monitoring is not None else None,
    )
    with rt.sessions() as session, session.begin():
        patient = _patient(session, patient_id)
        try:
            body = save_care_plan(session, rt, patient, plan, data.changed_by, rt.now())
        except CarePlanInvalid as exc:
            raise ApiError(422, "invalid", "Some fields are not valid.", exc.fields) from None
        except ConsentRequired as exc:
            raise ApiError(409, exc.code, exc.message) from None
    return jsonify(body)


@bp.get("/patients/<id:patient_id>/messages")
def list_messages(patient_id: int) -> Response:
    with _runtime().sessions() as session:
        _patient(session, patient_id)
        rows = session.scalars(
            select(Message).where(Message.patient_id == patient_id).order_by(Message.created_at, Message.id)
        ).all()
        return jsonify({"messages": [message_json(m) for m in rows]})


# One rule for both methods (as care-plan): an out-of-range id is then no route (404) for POST too, not a
# 405 from the GET rule's path matching before the id converter refuses it.
@bp.route("/patients/<id:patient_id>/caregivers", methods=["GET", "POST"])
def caregivers(patient_id: int) -> Response | tuple[Response, int]:
    """GET: the patient's caregivers (200, 404). POST: see :func:`add_caregiver`."""
    if request.method == "POST":
        return add_caregiver(patient_id)
    return list_caregivers(patient_id)


def list_caregivers(patient_id: int) -> Response:
    with _runtime().sessions() as session:
        _patient(session, patient_id)
        rows = session.scalars(select(Caregiver).where(Caregiver.patient_id == patient_id).order_by(Caregiver.id))
        return jsonify({"caregivers": [caregiver_json(c) for c in rows]})


def add_caregiver(patient_id: int) -> tuple[Response, int]:
    """The patient's permission for a caregiver phone with a scope: 201 new, 200 updated, 422 per bad field."""
    rt = _runtime()
    data = _parse(CaregiverIn)
    with rt.sessions() as session, session.begin():
        patient = _patient(session, patient_id)
        try:
            clean = clean_caregiver(data.model_dump())
        except InvalidCaregiver as exc:
            raise ApiError(422, "invalid", "Some fields are not valid.", exc.fields) from None
        known = session.scalar(
            select(Caregiver.id).where(Caregiver.patient_id == patient.id, Caregiver.phone == clean["phone"])
        )
        caregiver = grant_caregiver_permission(
            session,
            patient,
            phone=clean["phone"],
            scopes=clean["scopes"],
            basis=clean["basis"],
            recorded_by=clean["recorded_by"] or "api",
            now=rt.now(),
            name=clean["name"],
            relationship=clean["relationship"],
            language=data.language,
        )
        body = caregiver_json(caregiver)
    return jsonify(body), 200 if known is not None else 201


@bp.delete("/patients/<id:patient_id>/caregivers/<id:caregiver_id>")
def remove_caregiver(patient_id: int, caregiver_id: int) -> Response:
    rt = _runtime()
    with rt.sessions() as session, session.begin():
        _patient(session, patient_id)
        caregiver = session.get(Caregiver, caregiver_id)
        if caregiver is None or caregiver.patient_id != patient_id:
            raise ApiError(404, "not_found", "No such caregiver for this patient.")
        revoke_caregiver(session, caregiver, recorded_by="api", now=rt.now())
        body = caregiver_json(caregiver)
    return jsonify(body)


@bp.get("/patients/<id:patient_id>/answers")
def list_answers(patient_id: int) -> Response:
    with _runtime().sessions() as session:
        _patient(session, patient_id)
        rows = session.scalars(
            select(Answer).where(Answer.patient_id == patient_id).order_by(Answer.answered_at, Answer.id)
        ).all()
        return jsonify({"answers": [answer_json(a) for a in rows]})


@bp.get("/escalations")
def list_escalations() -> Response:
    """The newest 500 escalations, filtered by ``status``, ``level`` and ``patient_id`` (400 if bad)."""
    try:
        filters = EscalationQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise ApiError(400, "bad_request", "Bad filters.", field_errors(exc)) from None
    query = select(Escalation).options(selectinload(Escalation.triggers)).order_by(Escalation.created_at.desc())
    if filters.status:
        query = query.where(Escalation.status == filters.status)
    if filters.level:
        query = query.where(Escalation.level == filters.level)
    if filters.patient_id:
        query = query.where(Escalation.patient_id == int(filters.patient_id))
    scope = _caller().scope
    if scope is not None:
        query = query.where(Escalation.patient_id.in_(select(Patient.id).where(Patient.program_id.in_(scope))))
    with _runtime().sessions() as session:
        return jsonify({"escalations": [escalation_json(e) for e in session.scalars(query.limit(500)).all()]})


def _change(enrollment_id: int, action: str) -> Response:
    data = _parse(EnrollmentChangeIn)
    rt = _runtime()
    now = rt.now()
    actor = data.actor or "api"
    with rt.sessions() as session, session.begin():
        enrollment = session.get(Enrollment, enrollment_id, with_for_update=True)
        if enrollment is None:
            raise ApiError(404, "not_found", "No such enrollment.")
        _allow(enrollment.patient.program_id)
        try:
            if action == "pause":
                enrollments.pause(session, enrollment, data.reason, actor, now)
            elif action == "resume":
                enrollments.resume(session, rt, enrollment, data.reason, actor, now)
            else:
                enrollments.unenroll(session, enrollment, data.reason, actor, now)
        except enrollments.EnrollmentRefused as exc:
            raise ApiError(409, exc.code, exc.message) from None
        body = enrollment_json(enrollment)
    return jsonify(body)


@bp.post("/enrollments/<id:enrollment_id>/pause")
def pause_enrollment(enrollment_id: int) -> Response:
    """Pause outreach with a reason (on the timeline): 200, 404, 409 if not active."""
    return _change(enrollment_id, "pause")


@bp.post("/enrollments/<id:enrollment_id>/resume")
def resume_enrollment(enrollment_id: int) -> Response:
    """Resume a paused enrollment (future touches only): 200, 404, 409 if not paused."""
    return _change(enrollment_id, "resume")


@bp.post("/enrollments/<id:enrollment_id>/unenroll")
def unenroll_enrollment(enrollment_id: int) -> Response:
    """End an enrollment with a reason: 200, 404, 409 if already ended."""
    return _change(enrollment_id, "unenroll")


@bp.get("/patients/<id:patient_id>/enrollments")
def list_enrollments(patient_id: int) -> Response:
    """The patient's enrollments and their history (created, paused, resumed, ended, with reasons)."""
    with _runtime().sessions() as session:
        _patient(session, patient_id)
        rows = session.scalars(
            select(Enrollment).where(Enrollment.patient_id == patient_id).order_by(Enrollment.id)
        ).all()
        return jsonify(
            {
                "enrollments": [enrollment_json(e) for e in rows],
                "timeline": enrollments.timeline(session, patient_id),
            }
        )


@bp.get("/programs")
def list_programs() -> Response:
    with _runtime().sessions() as session:
        query = select(Program).order_by(Program.id)
        scope = _caller().scope
        if scope is not None:
            query = query.where(Program.id.in_(scope))
        rows = session.scalars(query).all()
        return jsonify({"programs": [program_json(p) for p in rows]})


@bp.post("/programs")
def create_program() -> tuple[Response, int]:
    """A new program: 201, 409 if the slug is taken, 422 naming each bad field."""
    _global_only()
    data = _parse(ProgramIn)
    rt = _runtime()
    changes = data.changes()
    changes.pop("slug", None)
    with rt.sessions() as session, session.begin():
        try:
            program, _created = save_program(session, data.slug, changes, set(rt.content.campaigns), create=True)
        except ProgramExists:
            raise ApiError(409, "exists", "A program with this slug exists; PATCH it.") from None
        except ProgramInvalid as exc:
            raise ApiError(422, "invalid", "Some fields are not valid.", exc.fields) from None
        body = program_json(program)
    return jsonify(body), 201


@bp.patch("/programs/<slug>")
def update_program(slug: str) -> Response:
    """Change some of a program's fields: 200, 404, 422 naming each bad field."""
    _global_only()
    data = _parse(ProgramPatch)
    rt = _runtime()
    with rt.sessions() as session, session.begin():
        try:
            program, _created = save_program(session, slug, data.changes(), set(rt.content.campaigns), create=False)
        except LookupError:
            raise ApiError(404, "not_found", "No such program.") from None
        except ProgramInvalid as exc:
            raise ApiError(422, "invalid", "Some fields are not valid.", exc.fields) from None
        body = program_json(program)
    return jsonify(body)


@bp.get("/programs/<slug>")
def get_program(slug: str) -> Response:
    with _runtime().sessions() as session:
        program = find_program(session, slug)
        if program is None:
            raise ApiError(404, "not_found", "No such program.")
        _allow(program.id)
        return jsonify(program_json(program))


#: Content types an interface engine posts HL7 v2 (ER7, pipe-delimited) with.
HL7_TYPES = {"text/plain", "application/hl7-v2", "x-application/hl7-v2+er7", "application/edi-hl7"}


@bp.post("/adt")
def post_adt() -> tuple[Response, int]:
    """One HL7 v2 ADT message as the body. 200 with the ACK (AA); 422 (AE: the message cannot be used)
    or 400 (AR: not an HL7 ADT message) in the error shape, with ``ack_code`` and ``ack`` beside it.
    ``?program=slug`` picks the program (default: the mapping's facility, else the first program)."""
    if (request.mimetype or "") not in HL7_TYPES:
        raise ApiError(400, "bad_request", "Send the HL7 message as text/plain or application/hl7-v2.")
    slug = request.args.get("program") or None
    rt = _runtime()
    scope = _caller().scope
    with rt.sessions() as session:
        if slug is not None:
            found = find_program(session, slug)
            if found is None:
                raise ApiError(400, "bad_request", "Unknown program.", {"program": "unknown program"})
            _allow(found.id)
        elif scope is not None:  # a program token's messages go to its own program
            own = session.get(Program, min(scope))
            slug = own.slug if own is not None else None
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    outcome = receive_adt(rt, text, program_slug=slug)
    extra = {
        "ack_code": outcome.ack_code,
        "ack": outcome.ack,
        "event": outcome.event,
        "patient_id": outcome.patient_id,
        "duplicate": outcome.duplicate,
    }
    if outcome.ack_code == "AA":
        return jsonify({"detail": outcome.detail, **extra}), 200
    status = 422 if outcome.ack_code == "AE" else 400
    code = "hl7_error" if outcome.ack_code == "AE" else "hl7_rejected"
    response, _ = ApiError(status, code, outcome.detail).response()
    body = response.get_json()
    body.update(extra)
    return jsonify(body), status


@bp.get("/tcm")
def list_tcm() -> Response:
    """Discharges of the last 60 days with their TCM clock, soonest deadline first (400 on bad filters)."""
    try:
        filters = TcmQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise ApiError(400, "bad_request", "Bad filters.", field_errors(exc)) from None
    rt = _runtime()
    with rt.sessions() as session:
        program_id = None
        if filters.program:
            program = find_program(session, filters.program)
            if program is None:
                raise ApiError(400, "bad_request", "Unknown program.", {"program": "unknown program"})
            _allow(program.id)
            program_id = program.id
        elif _caller().scope is not None:
            program_id = min(_caller().scope or {0})
        rows = tcm.worklist(session, rt.now(), filters.status, program_id)
        return jsonify({"discharges": rows})


@bp.post("/tcm/<id:discharge_id>/attempts")
def log_attempt(discharge_id: int) -> tuple[Response, int]:
    """Log a care manager's contact attempt: 201 with the discharge and its clock; 404; 422."""
    data = _parse(AttemptIn)
    rt = _runtime()
    now = rt.now()
    with rt.sessions() as session, session.begin():
        discharge = session.get(Discharge, discharge_id, with_for_update=True)
        if discharge is None:
            raise ApiError(404, "not_found", "No such discharge.")
        _allow(discharge.program_id)
        try:
            tcm.record_attempt(
                session,
                discharge,
                outcome=data.outcome,
                method=data.method,
                attempted_by=data.by,
                attempted_at=(data.at or now).astimezone(dt.UTC),
                note=data.note,
                now=now,
            )
        except tcm.AttemptRefused as exc:
            raise ApiError(422, "invalid", "Some fields are not valid.", exc.fields) from None
        body = tcm.discharge_json(discharge, now)
    return jsonify(body), 201


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 document of this API (no token needed: it describes shapes, holds no data)."""
    from app.api.openapi import openapi_document as build

    return jsonify(build())
