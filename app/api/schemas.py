"""Request models of the JSON API (pydantic v2): strict types, sizes bounded to the columns, sane ranges.

Every request body is parsed and checked here, before any query or write, so the API answers the same
on SQLite (which does not enforce ``VARCHAR`` lengths) as on PostgreSQL, and a bad value is a 4xx with
the field named instead of a database error. Response models document the shapes of DESIGN §3 for the
OpenAPI document (``openapi.py``); the views still render with ``serializers.py``.

Rules (issue 8, item 6):
- types are strict: no booleans or floats as ids, no numbers as strings, no strings as dates;
- text is stripped of surrounding white space and refused if it holds a control character (NUL, ESC,
  C1 controls, ...): PostgreSQL refuses NUL in text and JSON, and no field has a use for the others;
- lengths are the columns' (``app/models.py``), read from the mapped tables so they cannot drift;
- numbers are finite and within ±``THRESHOLD_LIMIT``; ids within PostgreSQL's ``integer`` (2**31-1);
- dates within ``DATE_MIN``..``DATE_MAX`` (birth dates not in the future);
- time zones are IANA names known to ``zoneinfo``; phones parse with ``phonenumbers``.
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import String

from app.conversations.variables import ALLOWED as VARIABLE_NAMES
from app.i18n import SUPPORTED_LANGUAGES
from app.models import Enrollment, Patient, Program
from app.patients.phones import InvalidPhone, to_e164
from app.patients.thresholds import THRESHOLD_ORDER, THRESHOLD_RANGES, threshold_problems

#: Largest id PostgreSQL's ``integer`` column holds; a larger one cannot name a row.
MAX_ID = 2**31 - 1
#: Clinical thresholds are small numbers (lb, mg/dL, score points); anything beyond this is a mistake.
THRESHOLD_LIMIT = 10_000.0
RANGES_TEXT = (
    "Allowed ranges (unit in the name: mgdl = mg/dL, lb = pounds): "
    + ", ".join(f"{name} {low:g}-{high:g}" for name, (low, high) in THRESHOLD_RANGES.items())
    + "; strictly increasing: "
    + "; ".join(" < ".join(chain) for chain in THRESHOLD_ORDER)
    + ". Otherwise 422."
)
#: Dates the API accepts: wide enough for any patient or campaign, narrow enough that schedule
#: arithmetic (anchor + offsets, time zones) never overflows ``datetime``.
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2199, 12, 31)
#: Text of an enrollment variable (a medication name, a time): the renderer keeps 100 characters.
VARIABLE_MAX = 100
#: How many conditions, thresholds or variables one request may carry.
MAX_ITEMS = 64
CONTROL_FREE = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"


def column_length(column: Any) -> int:
    """The ``VARCHAR`` length of a mapped column (``Patient.mrn`` → 64); raises TypeError if unbounded."""
    sql_type = column.property.columns[0].type
    if not isinstance(sql_type, String) or sql_type.length is None:
        raise TypeError(f"{column} has no length")
    return int(sql_type.length)


def _no_controls(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


NO_CONTROLS = AfterValidator(_no_controls)
#: The same rule for clients reading the OpenAPI document (and for schemathesis' generated data).
CONTROL_FREE_SCHEMA = Field(json_schema_extra={"pattern": CONTROL_FREE})


def _bounded(max_length: int, min_length: int = 1) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("must be an IANA time zone such as America/Chicago")
    return value


def _phone(value: str) -> str:
    try:
        return to_e164(value)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


def _language(value: str) -> str:
    if value.replace("_", "-").split("-")[0].lower() not in SUPPORTED_LANGUAGES:
        raise ValueError(f"must be one of {', '.join(SUPPORTED_LANGUAGES)}")
    return value


def _in_range(value: dt.date) -> dt.date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValueError(f"must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}")
    return value


def _not_future(value: dt.date) -> dt.date:
    # One day of slack: "today" somewhere east of UTC is already tomorrow here.
    if value > dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
        raise ValueError("must not be in the future")
    return value


PatientId = Annotated[int, Field(ge=1, le=MAX_ID)]
Mrn = Annotated[str, _bounded(column_length(Patient.mrn)), NO_CONTROLS, CONTROL_FREE_SCHEMA]
GivenName = Annotated[str, _bounded(column_length(Patient.given_name)), NO_CONTROLS, CONTROL_FREE_SCHEMA]
FamilyName = Annotated[str, _bounded(column_length(Patient.family_name)), NO_CONTROLS, CONTROL_FREE_SCHEMA]
Language = Annotated[str, _bounded(column_length(Patient.language)), NO_CONTROLS, AfterValidator(_language)]
TimeZone = Annotated[str, _bounded(column_length(Patient.timezone)), NO_CONTROLS, AfterValidator(_zone)]
Phone = Annotated[str, _bounded(40), NO_CONTROLS, AfterValidator(_phone), CONTROL_FREE_SCHEMA]
Condition = Annotated[str, _bounded(64), NO_CONTROLS, CONTROL_FREE_SCHEMA]
Slug = Annotated[str, _bounded(column_length(Program.slug)), NO_CONTROLS, CONTROL_FREE_SCHEMA]
Campaign = Annotated[str, _bounded(column_length(Enrollment.campaign)), NO_CONTROLS, CONTROL_FREE_SCHEMA]
FlowId = Annotated[str, _bounded(64), NO_CONTROLS, CONTROL_FREE_SCHEMA]
ThresholdName = Annotated[str, Field(min_length=1, max_length=64)]
ThresholdValue = Annotated[float, Field(ge=-THRESHOLD_LIMIT, le=THRESHOLD_LIMIT)]
AnyDate = Annotated[dt.date, AfterValidator(_in_range)]
BirthDate = Annotated[dt.date, AfterValidator(_in_range), AfterValidator(_not_future)]
VariableName = Annotated[str, Field(max_length=64)]
VariableText = Annotated[str, _bounded(VARIABLE_MAX, 0), NO_CONTROLS, CONTROL_FREE_SCHEMA]
Variables = Annotated[dict[VariableName, VariableText], Field(max_length=len(VARIABLE_NAMES))]


class RequestModel(BaseModel):
    """Strict, unknown fields ignored (DESIGN §3), no NaN or infinity anywhere."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class ConsentIn(RequestModel):
    """The patient's consent record (app/patients/consent.py)."""

    basis: Literal["express_written", "express_oral", "health_care_exemption"] = Field(
        description="express_written / express_oral: the program sets its own caps; health_care_exemption: "
        "at most 1 initiated text a day and 3 a week (FCC 15-72)."
    )
    date: AnyDate | None = Field(default=None, description="When the patient gave it. Default: today.")
    recorded_by: Annotated[str, _bounded(200), NO_CONTROLS, CONTROL_FREE_SCHEMA] | None = None
    channels: Annotated[list[Literal["sms", "voice"]], Field(min_length=1, max_length=2)] | None = None


class PatientIn(RequestModel):
    """``POST /patients``: create or update by MRN within the program (idempotent)."""

    mrn: Mrn
    given_name: GivenName
    family_name: FamilyName
    phone: Phone
    language: Language | None = Field(
        default=None, description="BCP 47 tag; its language must be supported (en, es). Default en."
    )
    timezone: TimeZone | None = Field(default=None, description="IANA time zone. Default America/New_York.")
    preferred_channel: Literal["sms", "voice"] | None = None
    conditions: Annotated[list[Condition], Field(max_length=MAX_ITEMS)] | None = None
    caregiver_phone: Annotated[Phone | None, BeforeValidator(_empty_is_none)] = None
    birth_date: BirthDate | None = None
    zip_code: Annotated[str | None, BeforeValidator(_empty_is_none)] = Field(
        default=None,
        pattern=r"^\d{5}(-\d{4})?$",
        description="US ZIP code (60614 or 60614-1234): picks the program's local resource lists.",
    )
    thresholds: (
        Annotated[
            dict[ThresholdName, ThresholdValue],
            Field(max_length=MAX_ITEMS),
        ]
        | None
    ) = Field(default=None, description="The care plan's overrides of a flow's clinical thresholds. " + RANGES_TEXT)
    program: Annotated[Slug | None, BeforeValidator(_empty_is_none)] = Field(
        default=None, description="Program slug (default: the first program)."
    )
    consent: ConsentIn | None = Field(default=None, description="Record (or change) the consent record.")

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float] | None, info: ValidationInfo) -> dict[str, float] | None:
        known = (info.context or {}).get("thresholds")
        if value and known is not None and (unknown := sorted(set(value) - set(known))):
            # A misspelt threshold would silently change nothing: refuse it.
            raise ValueError(f"unknown thresholds: {', '.join(unknown)}")
        if value and (problems := threshold_problems(value, known if isinstance(known, Mapping) else None)):
            # A value that switches an alert off, or crossed bands (app/patients/thresholds.py).
            raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
        return value

    def as_payload(self) -> dict[str, Any]:
        """The dict ``app.patients.service.upsert_patient`` takes (dates as ISO text, absent fields left out)."""
        data = self.model_dump(exclude_none=True, exclude={"program", "consent"})
        if self.birth_date is not None:
            data["birth_date"] = self.birth_date.isoformat()
        return data


LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Local time, HH:MM.")]
ModuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,31}$")]


class GoalIn(RequestModel):
    """A goal the patient chose, checked weekly with "how sure are you that you can do it?" (0-10)."""

    text: Annotated[str, _bounded(300), NO_CONTROLS, CONTROL_FREE_SCHEMA] = Field(
        description='In the patient\'s words, e.g. "walk 10 minutes a day".'
    )
    weekly_check: bool = True
    confidence: Annotated[int, Field(ge=0, le=10)] | None = Field(
        default=None, description="The patient's last answer, 0 (not at all sure) to 10 (totally sure)."
    )


class MedicationIn(RequestModel):
    name: Annotated[str, _bounded(100), NO_CONTROLS, CONTROL_FREE_SCHEMA]
    dose: Annotated[str, _bounded(100), NO_CONTROLS, CONTROL_FREE_SCHEMA] | None = None
    times: Annotated[list[LocalTime], Field(max_length=12)] = Field(
        default_factory=list, description="Dose times: they feed the medication reminders' dose_times."
    )


class CarePlanIn(RequestModel):
    """``PUT /patients/<id>/care-plan``: the whole plan (it replaces the one before). Changing it re-derives
    the patient's pending check-ins (sent ones are kept)."""

    changed_by: Annotated[str, _bounded(200), NO_CONTROLS, CONTROL_FREE_SCHEMA] = Field(
        description="Who made the change (kept on the plan, on each threshold change and in the audit log)."
    )
    conditions: Annotated[list[Condition], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)
    goals: Annotated[list[GoalIn], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)
    thresholds: Annotated[dict[ThresholdName, ThresholdValue], Field(max_length=MAX_ITEMS)] = Field(
        default_factory=dict,
        description="Overrides of the flows' clinical thresholds (weight_gain_1_day_lb: 2), only for a condition "
        "the plan monitors. " + RANGES_TEXT,
    )
    medications: Annotated[list[MedicationIn], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)
    monitoring: Annotated[list[ModuleId], Field(max_length=MAX_ITEMS)] | None = Field(
        default=None,
        description="Modules the daily check-in composes (hf, diabetes, copd); null: those of the conditions.",
    )


class EnrollmentIn(RequestModel):
    """``POST /enrollments``: name the patient by ``patient_id`` or by ``mrn`` (within ``program``)."""

    patient_id: PatientId | None = None
    mrn: Annotated[Mrn | None, BeforeValidator(_empty_is_none)] = None
    program: Annotated[Slug | None, BeforeValidator(_empty_is_none)] = None
    campaign: Campaign
    anchor_date: AnyDate | None = Field(default=None, description="Default: today in the patient's time zone.")
    variables: Variables | None = None


class ConversationIn(RequestModel):
    """``POST /patients/<id>/conversations``: start a flow now."""

    flow: FlowId
    variables: Variables | None = None
    #: Who the flow is for: the patient, or the patient's caregiver (a flow about the caregiver, such as
    #: ``caregiver-strain``: texted to the caregiver's phone, answers recorded as given by the caregiver).
    to: Literal["patient", "caregiver"] = "patient"


class EscalationQuery(BaseModel):
    """``GET /escalations`` filters; query strings, so digits are parsed here, strictly."""

    model_config = ConfigDict(extra="ignore")

    status: Annotated[Literal["open", "acknowledged", "resolved"] | None, BeforeValidator(_empty_is_none)] = None
    level: Annotated[
        Literal["EMERGENCY", "URGENT", "ROUTINE", "INFO"] | None,
        BeforeValidator(lambda v: _empty_is_none(v.upper() if isinstance(v, str) else v)),
    ] = Field(default=None, description="Case-insensitive.")
    patient_id: Annotated[
        Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")] | None, BeforeValidator(_empty_is_none)
    ] = Field(default=None, description="A patient id (1..2147483647).")

    @field_validator("patient_id")
    @classmethod
    def _id_in_range(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= int(value) <= MAX_ID:
            raise ValueError(f"must be between 1 and {MAX_ID}")
        return value


Reason = Annotated[str, _bounded(200), NO_CONTROLS, CONTROL_FREE_SCHEMA]
ProgramName = Annotated[str, _bounded(column_length(Program.name)), NO_CONTROLS, CONTROL_FREE_SCHEMA]
PhoneDisplay = Annotated[str, _bounded(column_length(Program.phone_display)), NO_CONTROLS, CONTROL_FREE_SCHEMA]
MessagingServiceSid = Annotated[str, StringConstraints(pattern=r"^MG[0-9a-fA-F]{32}$")]
Hour = Annotated[int, Field(ge=0, le=24)]
Cap = Annotated[int, Field(ge=1, le=100)]
CampaignList = Annotated[list[Campaign], Field(max_length=MAX_ITEMS)]
ProgramSlug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


def _nullable_phone(value: Any) -> Any:
    return None if value == "" else value


OptionalPhone = Annotated[Phone | None, BeforeValidator(_nullable_phone)]


class ProgramFields(RequestModel):
    """What a program sets; absent fields keep their values (PATCH) or defaults (POST)."""

    name: ProgramName | None = None
    phone_display: PhoneDisplay | None = Field(default=None, description="The number patients call, as shown in texts.")
    sender_number: OptionalPhone = Field(default=None, description="The program's own sending number (E.164).")
    messaging_service_sid: Annotated[MessagingServiceSid | None, BeforeValidator(_empty_is_none)] = Field(
        default=None, description="Or a Twilio Messaging Service (MG...), not both."
    )
    nurse_line: OptionalPhone = Field(default=None, description="The nurse line patients are transferred to.")
    on_call_phone: OptionalPhone = Field(default=None, description="Paged by SMS for every EMERGENCY.")
    supervisor_phone: OptionalPhone = None
    timezone: TimeZone | None = Field(default=None, description="The program's business-day clock (TCM).")
    quiet_start_hour: Hour | None = Field(default=None, description="08-20; outreach starts at this local hour.")
    quiet_end_hour: Hour | None = Field(default=None, description="09-21; outreach stops at this local hour.")
    express_consent: bool | None = Field(
        default=None, description="False: TCPA health-care exemption, capped at 1 a day and 3 a week (FCC 15-72)."
    )
    daily_cap: Cap | None = None
    weekly_cap: Cap | None = None
    campaigns: CampaignList | None = Field(default=None, description="Campaigns the program runs (empty: all).")
    consent_before_outreach: bool | None = Field(
        default=None, description="True: only the welcome flow goes out until the patient gives express consent."
    )

    def changes(self) -> dict[str, Any]:
        """The fields the request named (an explicit null clears an optional field)."""
        return {key: getattr(self, key) for key in self.model_fields_set}


class ProgramIn(ProgramFields):
    """``POST /programs``: a new program (409 if the slug is taken)."""

    slug: ProgramSlug
    name: ProgramName
    phone_display: PhoneDisplay


class ProgramPatch(ProgramFields):
    """``PATCH /programs/<slug>``: change some fields."""


class EnrollmentChangeIn(RequestModel):
    """``POST /enrollments/<id>/pause|resume|unenroll``: why (shown on the patient's timeline), and who."""

    reason: Reason
    actor: Reason | None = Field(default=None, description="Who decided (default: api).")


class TcmQuery(BaseModel):
    """``GET /tcm`` filters."""

    model_config = ConfigDict(extra="ignore")

    status: Annotated[Literal["due", "overdue", "met", "cancelled"] | None, BeforeValidator(_empty_is_none)] = None
    program: Annotated[ProgramSlug | None, BeforeValidator(_empty_is_none)] = None


class AttemptIn(RequestModel):
    """``POST /tcm/<id>/attempts``: a care manager's interactive-contact attempt (bots never count)."""

    outcome: Literal["reached", "voicemail", "no_answer", "wrong_number"]
    method: Literal["phone", "video", "in_person"] = "phone"
    by: Reason = Field(description="Who made the attempt.")
    at: dt.datetime | None = Field(default=None, description="When (ISO 8601 with offset); default now.")
    note: Annotated[str, _bounded(2000, 0), NO_CONTROLS, CONTROL_FREE_SCHEMA] | None = None

    @field_validator("at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("give a time zone offset")
            if not DATE_MIN <= value.date() <= DATE_MAX:
                raise ValueError("out of range")
        return value


# -- responses (documentation of DESIGN §3's shapes) --------------------------------------------------


class ProgramOut(BaseModel):
    id: int
    slug: str
    name: str
    phone_display: str
    sender_number: str | None
    messaging_service_sid: str | None
    nurse_line: str | None
    on_call_phone: str | None
    supervisor_phone: str | None
    timezone: str
    quiet_start_hour: int
    quiet_end_hour: int
    express_consent: bool
    daily_cap: int | None
    weekly_cap: int | None
    campaigns: list[str]
    consent_before_outreach: bool = False


class ProgramsOut(BaseModel):
    programs: list[ProgramOut]


class AdtOut(BaseModel):
    """The HL7 ACK of an accepted message (AA), also as text."""

    ack_code: Literal["AA"]
    detail: str
    ack: str
    event: str
    patient_id: int | None
    duplicate: bool


class EnrollmentEventOut(BaseModel):
    at: dt.datetime
    action: str
    enrollment_id: int | None
    campaign: str | None
    reason: str
    actor: str


class AttemptOut(BaseModel):
    id: int
    outcome: str
    method: str
    by: str
    at: dt.datetime
    note: str | None


class TcmOut(BaseModel):
    id: int
    patient_id: int
    program_id: int
    mrn: str
    visit_number: str
    discharged_at: dt.datetime
    discharge_date: dt.date
    deadline_at: dt.datetime
    status: Literal["due", "overdue", "met", "cancelled"]
    met_by: Literal["reached", "two_attempts"] | None
    met_at: dt.datetime | None
    unit: str | None
    diagnoses: list[str]
    readmitted_at: dt.datetime | None
    attempts: list[AttemptOut]


class TcmListOut(BaseModel):
    discharges: list[TcmOut]


class GoalOut(BaseModel):
    text: str
    weekly_check: bool
    confidence: int | None
    #: When the confidence was given (ISO 8601; the weekly goal check's answer or the plan save).
    confidence_at: str | None = None


class ThresholdOut(BaseModel):
    name: str
    value: float
    default: float | None = Field(description="The flow's default, which this override replaces.")
    changed_by: str | None
    changed_at: str | None


class MedicationOut(BaseModel):
    name: str
    dose: str | None
    times: list[str]


class CarePlanOut(BaseModel):
    patient_id: int
    revision: int = Field(description="0: no plan saved yet.")
    updated_by: str | None
    updated_at: str | None
    conditions: list[str]
    goals: list[GoalOut]
    thresholds: list[ThresholdOut]
    medications: list[MedicationOut]
    monitoring: list[str] | None
    monitored_modules: list[str] = Field(description="What the daily check-in asks now, in order.")


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str]


class ErrorOut(BaseModel):
    error: ErrorDetail


class ConsentOut(BaseModel):
    basis: str = Field(description="The basis the caps follow (the program's when none was recorded).")
    recorded: bool
    date: dt.date | None
    recorded_by: str | None
    channels: list[str]
    capped: bool = Field(description="True when the 1-a-day / 3-a-week exemption caps apply.")


class TimelineEventOut(BaseModel):
    id: int
    kind: str
    code: str
    text: dict[str, str] = Field(description="Plain-language reason, by language (en, es).")
    at: dt.datetime
    enrollment_id: int | None
    detail: dict[str, Any]


class TimelineOut(BaseModel):
    events: list[TimelineEventOut]


class PatientOut(BaseModel):
    id: int
    mrn: str
    given_name: str
    family_name: str
    phone: str
    language: str
    timezone: str
    preferred_channel: str
    conditions: list[str]
    caregiver_phone: str | None
    birth_date: dt.date | None
    status: str
    opted_out: bool
    #: Pressed 9 on a call: no more calls (texts go on).
    voice_opted_out: bool
    thresholds: dict[str, float]
    consent: ConsentOut
    zip_code: str | None = None
    #: Asked by the welcome flow (None: not asked yet): morning | afternoon | evening.
    preferred_time: str | None = None
    interpreter_needed: bool | None = None
    caregiver_may_receive: bool | None = None


class EnrollmentOut(BaseModel):
    id: int
    patient_id: int
    campaign: str
    anchor_date: dt.date
    status: str
    next_due_at: dt.datetime | None
    variables: dict[str, str]


class EnrollmentsOut(BaseModel):
    enrollments: list[EnrollmentOut]
    timeline: list[EnrollmentEventOut]


class ConversationOut(BaseModel):
    id: int
    patient_id: int
    flow: str
    flow_version: str
    status: str
    started_at: dt.datetime | None


class CaregiverIn(RequestModel):
    """``POST /patients/<id>/caregivers``: the patient's permission for a caregiver phone, with its scope
    (app/patients/caregivers.py). The same phone again updates the scope and the consent record."""

    phone: Phone
    scopes: Annotated[list[Literal["reminders", "answer", "escalations"]], Field(min_length=1, max_length=3)] = Field(
        description="reminders: copies of reminders (no health details); answer: may answer check-ins for the "
        "patient (answers record the caregiver); escalations: the 911 / 988 advice of an emergency."
    )
    consent_basis: Literal["patient_text", "verbal", "written"] = Field(
        description="How the patient gave permission: by text (the welcome), aloud to staff, or signed."
    )
    recorded_by: Annotated[str, _bounded(200), NO_CONTROLS, CONTROL_FREE_SCHEMA] | None = None
    name: Annotated[str, _bounded(100), NO_CONTROLS, CONTROL_FREE_SCHEMA] | None = None
    relationship: Annotated[str, _bounded(40), NO_CONTROLS, CONTROL_FREE_SCHEMA] | None = None
    language: Literal["en", "es"] | None = None


class CaregiverConsentOut(BaseModel):
    basis: str
    recorded_by: str
    recorded_at: str


class CaregiverOut(BaseModel):
    id: int
    patient_id: int
    phone: str
    name: str | None
    relationship: str | None
    language: str
    scopes: list[str]
    consent: CaregiverConsentOut
    opted_out: bool
    revoked: bool


class CaregiversOut(BaseModel):
    caregivers: list[CaregiverOut]


class MessageOut(BaseModel):
    id: int
    direction: Literal["inbound", "outbound"]
    channel: str
    body: str
    status: str
    created_at: dt.datetime | None
    kind: str
    segments: int | None
    encoding: str | None
    needs_review: bool | None
    flow: str | None = None
    provider_sid: str | None = None
    error_code: str | None = None
    caregiver_id: int | None = Field(default=None, description="From (inbound) or to (outbound) this caregiver.")


class MessagesOut(BaseModel):
    messages: list[MessageOut]


class AnswerOut(BaseModel):
    flow: str
    question: str
    value: Any
    raw: str
    answered_at: dt.datetime | None
    channel: str
    kind: str
    unit: str | None = None
    given_by: Literal["patient", "caregiver"] = "patient"
    caregiver_id: int | None = Field(default=None, description="The caregiver who answered for the patient.")


class AnswersOut(BaseModel):
    answers: list[AnswerOut]


class TriggerOut(BaseModel):
    rule: str
    level: str
    detail: Any
    created_at: dt.datetime | None


class EscalationOut(BaseModel):
    id: int
    patient_id: int
    level: Literal["EMERGENCY", "URGENT", "ROUTINE", "INFO"]
    reasons: list[str]
    status: Literal["open", "acknowledged", "resolved"]
    created_at: dt.datetime | None
    sla_due_at: dt.datetime | None
    triggers: list[TriggerOut]
    acknowledged_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    outcome: str | None = None


class EscalationsOut(BaseModel):
    escalations: list[EscalationOut]


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{"thresholds.weight_gain_1_day_lb": "Input should be a finite number", ...}``: one message per
    field (the first), keyed by the dotted path; ``Value error, `` prefixes dropped."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        fields.setdefault(key, message)
    return fields


def is_malformed(exc: ValidationError) -> bool:
    """True when the body is not a JSON object at all (unparsable, too deep, an array): a 400, not a 422."""
    return any(error["type"] in ("json_invalid", "model_type", "model_attributes_type") for error in exc.errors())
