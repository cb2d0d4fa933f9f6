"""The persistence schema: SQL is the source of truth for every schedule, conversation, message,
answer and escalation (Redis only carries job ids).

Times are stored as timezone-aware UTC. Each patient carries an IANA time zone for local rules.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from app.db import Base


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware datetimes as UTC and always hands back aware UTC datetimes, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PatientStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class Program(Base):
    """A care program (a transitional-care team, a CCM practice, a health plan) that enrolls patients."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone_display: Mapped[str] = mapped_column(String(40))
    quiet_start_hour: Mapped[int] = mapped_column(Integer, default=8)
    quiet_end_hour: Mapped[int] = mapped_column(Integer, default=21)
    #: TCPA health-care exemption caps (FCC 15-72) apply unless the program holds express consent.
    uses_healthcare_exemption: Mapped[bool] = mapped_column(Boolean, default=True)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Paged by SMS at once for every EMERGENCY, again if nobody acknowledges; then the supervisor.
    on_call_phone: Mapped[str | None] = mapped_column(String(20))
    supervisor_phone: Mapped[str | None] = mapped_column(String(20))
    #: The program's own sender: a number (E.164) or a Twilio Messaging Service (MG...); NULL = the
    #: deployment's TWILIO_FROM_NUMBER / TWILIO_MESSAGING_SERVICE_SID.
    sender_number: Mapped[str | None] = mapped_column(String(20))
    messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    #: The number patients call to reach a nurse (E.164); voice calls transfer here.
    nurse_line: Mapped[str | None] = mapped_column(String(20))
    #: The program's business-day clock (TCM deadlines) and the default zone of patients enrolled by ADT.
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    #: Campaigns this program runs (enrollment in any other is refused); empty = every campaign.
    campaigns: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Initiated-outreach caps for programs with express consent (NULL = none beyond the exemption's).
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    weekly_cap: Mapped[int | None] = mapped_column(Integer)
    #: Only the ``welcome`` flow goes out until the patient has given express consent (the welcome asks
    #: for it; app/scheduling/sweeper.py skips every other touch with reason ``awaiting_consent``).
    consent_before_outreach: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("program_id", "mrn", name="uq_patients_program_mrn"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    mrn: Mapped[str] = mapped_column(String(64))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    preferred_channel: Mapped[str] = mapped_column(String(10), default="sms")
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)
    caregiver_phone: Mapped[str | None] = mapped_column(String(20))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=PatientStatus.ACTIVE)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Set when a send fails with 21211/21614: staff must fix the number before outreach resumes.
    phone_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The patient pressed 9 on a call ("to stop these calls, press 9"): no more calls; texts go on.
    voice_opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    voice_opted_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The number cannot take texts (Twilio 21614, not a mobile number): outreach goes by voice.
    sms_capable: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_basis: Mapped[str | None] = mapped_column(String(40))
    consent_recorded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consent_recorded_by: Mapped[str | None] = mapped_column(String(200))
    #: The consent record (app/patients/consent.py): basis express_written | express_oral |
    #: health_care_exemption (legacy rows: program_enrollment, read through the program's flag), the date
    #: the patient gave it, who recorded it, and the channels it covers (["sms", "voice"]).
    consent_date: Mapped[dt.date | None] = mapped_column(Date)
    consent_channels: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: What the welcome flow asked (app/patients/record_updates.py): the time of day check-ins go out
    #: (morning | afternoon | evening; NULL = the campaign's own times), whether an interpreter is needed,
    #: whether a caregiver may also get messages (NULL = not asked yet).
    preferred_time: Mapped[str | None] = mapped_column(String(16))
    interpreter_needed: Mapped[bool | None] = mapped_column(Boolean)
    caregiver_may_receive: Mapped[bool | None] = mapped_column(Boolean)
    #: US ZIP code: picks the program's local resource lists (content/resources.yaml) by prefix.
    zip_code: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    program: Mapped[Program] = relationship()

    @property
    def reachable(self) -> bool:
        return not self.opted_out and not self.phone_invalid and self.status == PatientStatus.ACTIVE


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    campaign: Mapped[str] = mapped_column(String(64))
    anchor_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: Bumped whenever the anchor changes, so re-derived occurrences get new keys.
    schedule_version: Mapped[int] = mapped_column(Integer, default=1)
    #: Values the campaign's texts use: appointment_at (ISO 8601), medication_name, dose_time ("08:00").
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    next_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What the pending occurrences were derived from (campaign version, time zone, times, anchor): when
    #: it no longer matches, they are derived again (app/scheduling/enrollments.py schedule_basis).
    schedule_basis: Mapped[str | None] = mapped_column(String(300))
    #: Dates of events that anchor touches or stop the campaign: {"positive_screen": "2026-12-01"}.
    events: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Why the enrollment is no longer active (readmitted, opted_out, goal_met...).
    status_reason: Mapped[str | None] = mapped_column(String(64))

    patient: Mapped[Patient] = relationship()


class TouchStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class ScheduledTouch(Base):
    """One occurrence of a campaign touch (a daily check-in on one day, say).

    ``occurrence_key`` is unique: the same occurrence may be swept many times and is started once.
    """

    __tablename__ = "scheduled_touches"
    __table_args__ = (Index("ix_touches_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"), index=True)
    touch_id: Mapped[str] = mapped_column(String(64))
    flow_id: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: The time the schedule asked for; ``due_at`` may move later (quiet hours), this does not.
    scheduled_for: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    stale_after_minutes: Mapped[int] = mapped_column(Integer, default=720)
    occurrence_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=TouchStatus.PENDING)
    outcome: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))

    enrollment: Mapped[Enrollment] = relationship()


class TimelineEvent(Base):
    """A scheduling fact staff see on the patient's timeline: a touch skipped or deferred and why, an
    enrollment refused or stopped, a consent recorded. ``code`` is a reason code; its plain-language en/es
    text comes from app/scheduling/reasons.py."""

    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_events_patient_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    touch_row_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_touches.id"))
    #: touch_skipped | touch_deferred | touch_replaced (the welcome went first) | enrollment_refused |
    #: enrollment_stopped | schedule_rederived | consent_recorded | record_updated
    kind: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Conversation(Base):
    """A patient's run through one flow, pinned to the flow version it started on."""

    __tablename__ = "conversations"
    __table_args__ = (
        # One active conversation per patient, enforced by the database for every worker.
        Index(
            "uq_conversations_one_active",
            "patient_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index("ix_conversations_status_wake", "status", "wake_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    flow_id: Mapped[str] = mapped_column(String(64))
    flow_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    result: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The enrollment's variables as they were when the conversation started.
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The channel the conversation runs on: ``sms`` (texts) or ``voice`` (a call; nothing is texted).
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    #: When the engine next wants a timeout input (reminder, then expiry).
    wake_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()


class FlowVersion(Base):
    """The exact source of every flow version a conversation was pinned to, so an edited file never
    changes a conversation already under way."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow_id", "version", name="uq_flow_versions"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_status_created", "direction", "status", "created_at"),
        # The patient page's transcript: a patient's latest messages without sorting all of them.
        Index("ix_messages_patient_created", "patient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    direction: Mapped[str] = mapped_column(String(10))  # inbound | outbound
    channel: Mapped[str] = mapped_column(String(10))  # sms | voice | console
    #: What the message is for: prompt, reply, system, page (to staff), inbox (kept for staff).
    kind: Mapped[str] = mapped_column(String(16), default="prompt")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Outbound only: unique intent key written before the provider is called (exactly once).
    send_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    from_number: Mapped[str | None] = mapped_column(String(20))
    #: Outbound: the program's own sender (E.164 number or a Messaging Service MG...); NULL = the deployment's.
    sender: Mapped[str | None] = mapped_column(String(34))
    to_number: Mapped[str | None] = mapped_column(String(20))
    segments: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(8))
    error_code: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    flow_id: Mapped[str | None] = mapped_column(String(64))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Why staff should look at an inbound text (app/flows/routing.py OutsidePlan.flags): red_flag:<reason>,
    #: confirm:<reason>, symptom:<reason>, opt_out_request. NULL when nothing was found.
    flags: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Outbound: when the next send is due. Inbound: when the next processing attempt is due (status
    #: ``retry``, app/messaging/inbound.py); NULL once processed or given up.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Inbound only: when triage screened the raw text outside its normal processing (the safety net after
    #: a failed step, or while it waits behind an earlier failed text), so that is done once per message.
    screened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Inbound: sent by this caregiver (for the patient ``patient_id``); outbound: sent to this caregiver.
    caregiver_id: Mapped[int | None] = mapped_column(ForeignKey("caregivers.id"))


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_patient_question", "patient_id", "question_id", "answered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    flow_id: Mapped[str] = mapped_column(String(64))
    question_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # number | yes_no | choice | scale | text | unanswered
    value_number: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(16))
    raw: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(10))
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: Who gave the answer: NULL = the patient; else the caregiver who answered on the patient's behalf.
    given_by_caregiver_id: Mapped[int | None] = mapped_column(ForeignKey("caregivers.id"))

    @property
    def value(self) -> Any:
        if self.kind == "yes_no":
            return self.value_text == "yes" if self.value_text is not None else None
        if self.kind in {"number", "scale"}:
            return self.value_number
        return self.value_text


class EscalationStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_status_level", "status", "level"),
        Index("ix_escalations_resolved_at", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    level: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(64))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=EscalationStatus.OPEN)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sla_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    #: Pages sent for this escalation (on-call, re-page, supervisor) and when the last one went.
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    last_paged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The staff member working it (claimed or assigned in the queue); NULL = nobody yet.
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    triggers: Mapped[list[EscalationTrigger]] = relationship(
        back_populates="escalation", order_by="EscalationTrigger.id"
    )


class EscalationTrigger(Base):
    """Why an escalation exists: the rule that fired and the answers that made it fire."""

    __tablename__ = "escalation_triggers"

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    rule_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    escalation: Mapped[Escalation] = relationship(back_populates="triggers")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default="care_manager")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Part of the session cookie's identity: bumped on sign-out and on a password change, so every
    #: session issued before no longer loads (server-side invalidation).
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: The zone this user reads times in (IANA).
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York", server_default="America/New_York")

    memberships: Mapped[list[UserProgram]] = relationship(back_populates="user", order_by="UserProgram.id")


class UserProgram(Base):
    """A user works for a program (and, inside it, optionally a team): they see only its patients."""

    __tablename__ = "user_programs"
    __table_args__ = (
        UniqueConstraint("user_id", "program_id", name="uq_user_programs"),
        Index("ix_user_programs_program", "program_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    team: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(back_populates="memberships")
    program: Mapped[Program] = relationship()


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallStatus(enum.StrEnum):
    """A call's life (``calls.status``): our intent ``queued`` (waiting for its try, ``next_try_at``),
    ``dialing`` (claimed: a worker is calling the REST API, lease ``updated_at``), ``ringing`` (Twilio took
    it, ``call_sid`` set), ``in-progress`` (answered by a person), then one final state."""

    QUEUED = "queued"
    DIALING = "dialing"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    VOICEMAIL = "voicemail"
    MISSED = "missed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Call(Base):
    """One phone call with a patient (outbound check-in, or an inbound call), exactly once per ``call_key``.

    Outbound: the row is written first (intent), then a job places it (``attempts`` counts REST create
    calls, fenced like texts); busy / no answer / failed → another try (``tries``) at ``next_try_at``.
    ``step`` counts the Gather turns applied; ``turns`` keeps the answer given to each step (the pure
    ``app.flows.voice.Turn`` as a dict), so a replayed Gather request gets the same TwiML and is applied once.
    """

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_status_next_try", "status", "next_try_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    #: checkin (a flow by phone) | inbound
    purpose: Mapped[str] = mapped_column(String(16), default="checkin")
    direction: Mapped[str] = mapped_column(String(10), default="outbound")
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.QUEUED)
    call_key: Mapped[str] = mapped_column(String(200), unique=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    to_number: Mapped[str | None] = mapped_column(String(20))
    from_number: Mapped[str | None] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    answered_by: Mapped[str | None] = mapped_column(String(32))
    last_call_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(64))
    next_try_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    step: Mapped[int] = mapped_column(Integer, default=0)
    #: What to say when the call is answered (the flow's opening, computed when the conversation started).
    opening: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: The voice turn answered to each Gather step, by step number (str): replays get the same TwiML.
    turns: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Voice-only state between turns: ``reprompted`` (silence once at this step), ``confirm`` (speech
    #: heard with low confidence, waiting for 1 / 2), ``menu``, ``after`` (what the last turn was).
    pending: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    language: Mapped[str] = mapped_column(String(16), default="en")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AdtMessage(Base):
    """One HL7 v2 ADT message received (HTTP or MLLP) and the ACK it got: a redelivered message (same
    sender and control id, MSH-3/4 + MSH-10) is answered with the same ACK and changes nothing.
    No message text is kept here (it is PHI and the interface engine keeps it)."""

    __tablename__ = "adt_messages"
    __table_args__ = (UniqueConstraint("sender", "control_id", name="uq_adt_messages_sender_control"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(200))
    control_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(8))
    ack_code: Mapped[str] = mapped_column(String(2))
    #: Why an AE/AR was sent (field and reason, never a value from the message); what was done for AA.
    detail: Mapped[str] = mapped_column(String(400), default="")
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Discharge(Base):
    """A hospital discharge and its TCM clock (DESIGN §4.2, CPT 99495/99496): interactive contact is due
    by the end of the 2nd business day after the discharge date (``deadline_at``)."""

    __tablename__ = "discharges"
    __table_args__ = (
        UniqueConstraint("patient_id", "visit_number", name="uq_discharges_patient_visit"),
        Index("ix_discharges_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    #: PV1-19 (or a generated key when the feed sends none).
    visit_number: Mapped[str] = mapped_column(String(64))
    discharged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    discharge_date: Mapped[dt.date] = mapped_column(Date)
    unit: Mapped[str | None] = mapped_column(String(64))
    diagnoses: Mapped[list[str]] = mapped_column(JSON, default=list)
    deadline_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: open | cancelled (A11/A13). Due / overdue / met are derived from the attempts (app/programs/tcm.py).
    status: Mapped[str] = mapped_column(String(16), default="open")
    readmitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The enrollments this discharge made (an A13 "cancel discharge" ends them again).
    enrollment_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    patient: Mapped[Patient] = relationship()
    attempts: Mapped[list[ContactAttempt]] = relationship(order_by="ContactAttempt.attempted_at")


class ContactAttempt(Base):
    """A care manager's interactive-contact attempt for a discharge (a call, a video visit, in person):
    reached, voicemail, no_answer or wrong_number, by whom and when. Bot touches are never recorded here."""

    __tablename__ = "contact_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    discharge_id: Mapped[int] = mapped_column(ForeignKey("discharges.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16), default="phone")
    attempted_by: Mapped[str] = mapped_column(String(200))
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CareCall(Base):
    """A call a care manager made to a patient (or caregiver), logged from the patient page: the outcome
    (reached, voicemail, no_answer, wrong_number), the minutes of care-management time it took (CCM,
    CPT 99490: 20 minutes per calendar month) and, when the patient has an open discharge, the TCM contact
    attempt it fed (``contact_attempt_id``)."""

    __tablename__ = "care_calls"
    __table_args__ = (Index("ix_care_calls_patient_called", "patient_id", "called_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    #: Care-management minutes (0-240) counted towards the month's CCM total.
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    called_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    contact_attempt_id: Mapped[int | None] = mapped_column(ForeignKey("contact_attempts.id"))


class ApiToken(Base):
    """A JSON API token scoped to one program (issue 11 item 1): its requests see only that program's
    patients. Only the SHA-256 of the token is stored (tokens are 256-bit random, so a fast hash is
    enough); ``prefix`` (its first characters) names it in lists and audit rows. ``role``: ``read`` (GET
    only) or ``write``. A revoked token (``revoked_at`` set) is refused."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="write")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    program: Mapped[Program] = relationship()


class CarePlan(Base):
    """A patient's care plan (issue 12 item 3): which monitoring modules the daily check-in composes
    (``monitoring``: module ids like ``hf``, content/flows/chronic-care-check.yaml), who changed it last and
    when. Its conditions are ``patients.conditions`` and its thresholds ``patients.thresholds`` (what the
    engine reads); goals, medications and threshold changes are rows of their own."""

    __tablename__ = "care_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), unique=True)
    #: Module ids the check-ins follow; None: the modules of the patient's conditions.
    monitoring: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CarePlanGoal(Base):
    """A goal the patient chose ("walk 10 minutes a day"): checked weekly with a 0-10 confidence question."""

    __tablename__ = "care_plan_goals"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(300))
    weekly_check: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The patient's last answer to "how sure are you that you can do it?", 0-10.
    confidence: Mapped[int | None] = mapped_column(Integer)
    #: When that answer was given (the weekly goal check's reply, or the plan save that set it).
    confidence_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CarePlanMedication(Base):
    """A medication of the plan with its dose times ("08:00", "20:00"), which feed medication-adherence."""

    __tablename__ = "care_plan_medications"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    dose: Mapped[str | None] = mapped_column(String(100))
    times: Mapped[list[str]] = mapped_column(JSON, default=list)


class ThresholdChange(Base):
    """One change of a patient's clinical threshold override: from, to (None: back to the default), who, when."""

    __tablename__ = "threshold_changes"
    __table_args__ = (Index("ix_threshold_changes_patient_name", "patient_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    name: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[float | None] = mapped_column(Float)
    new_value: Mapped[float | None] = mapped_column(Float)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CaregiverScope(enum.StrEnum):
    """What a caregiver may do, as the patient allowed (issue 12 item 6)."""

    #: Copies of the patient's reminders (medication, appointment) with no more than the consent allows.
    REMINDERS = "reminders"
    #: Answer the patient's check-ins on their behalf (the answers record who gave them).
    ANSWER = "answer"
    #: The 911 / 988 advice the patient is given when a check-in finds an emergency.
    ESCALATIONS = "escalations"


class Caregiver(Base):
    """A caregiver's (proxy's) phone with the patient's permission, its scope and the consent behind it."""

    __tablename__ = "caregivers"
    __table_args__ = (UniqueConstraint("patient_id", "phone", name="uq_caregivers_patient_phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    relationship_to_patient: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(16), default="en")
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: How the patient's permission was given (``patient_text``, ``verbal``, ``written``) and by whom recorded.
    consent_basis: Mapped[str] = mapped_column(String(40))
    consent_recorded_by: Mapped[str] = mapped_column(String(200))
    consent_recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: The caregiver texted STOP: nothing more goes to this number for this patient (the patient is unaffected).
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The patient (or staff) withdrew the permission.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.opted_out

    def allows(self, scope: str) -> bool:
        return self.active and scope in (self.scopes or [])


class LessonDelivery(Base):
    """One education topic going to a patient part by part (issue 12 item 5): sent on a schedule (an
    education touch), after a check-in (a trigger) or by staff; ``parts_sent`` grows with each MORE."""

    __tablename__ = "lesson_deliveries"
    __table_args__ = (Index("ix_lessons_patient_status", "patient_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    topic: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    #: ``schedule`` | ``trigger``; ``source_key`` makes it once per occurrence or per check-in and topic.
    cause: Mapped[str] = mapped_column(String(16))
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    parts_total: Mapped[int] = mapped_column(Integer)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    #: ``waiting`` (deferred to ``due_at``: texting hours), ``open`` (more parts to ask for), ``done``.
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SharedPhoneChoice(Base):
    """Who is answering from a shared phone (issue 12 item 6): ``asking`` holds the text that came in
    while two patients of the number were in a check-in; ``chosen`` remembers the answer for that
    patient's conversation (later texts from the number go to it while it is active)."""

    __tablename__ = "shared_phone_choices"
    __table_args__ = (Index("ix_shared_phone_choices_phone", "phone", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    #: ``asking`` | ``chosen`` | ``replaced`` (a later question took its place).
    status: Mapped[str] = mapped_column(String(16), default="asking")
    #: The patients asked about, in the question's order (ids).
    candidates: Mapped[list[int]] = mapped_column(JSON, default=list)
    held_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
