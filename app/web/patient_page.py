"""The care-manager patient page (issue 11 item 3): who the patient is and how to reach them, open
escalations actionable in place (the queue's own actions), enrollments and next touches, the transcript
by conversation, answers by question text, trend charts (server-rendered SVG), calls logged (feeding the
TCM clock and the month's CCM minutes), a one-off text, pause/resume outreach and the care-team inbox.

Every view and action checks the viewer's programs (403 otherwise) and writes a staff audit row.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.escalation.queue import OUTCOMES, encode_seen
from app.flows import engine
from app.flows.model import Flow, Node
from app.i18n import gettext_for
from app.messaging.inbound import mark_reviewed
from app.messaging.staff_text import MAX_LENGTH, TextRefused, open_conversation_id, send_staff_text
from app.models import (
    Answer,
    AuditEvent,
    Call,
    CareCall,
    Conversation,
    Discharge,
    Enrollment,
    Escalation,
    Message,
    Patient,
    ScheduledTouch,
    TimelineEvent,
    TouchStatus,
    User,
)
from app.patients.access import may_see, program_scope
from app.patients.consent import consent_json
from app.programs import enrollment as enrollment_changes
from app.programs.care_calls import CCM_MONTHLY_MINUTES, MAX_MINUTES, NOTE_MAX, CallRefused, ccm_months, log_call
from app.programs.tcm import OUTCOMES as CALL_OUTCOMES
from app.programs.tcm import clock_of
from app.runtime import Runtime
from app.scheduling.reasons import reason_text
from app.web import ui_language
from app.web.charts import Chart, Threshold, scale_chart
from app.web.labels import status_label, zone
from app.web.security import audit_staff, roles_required, safe_target

bp = Blueprint("patient", __name__)

#: How far back the charts reach, and how many readings they draw at most.
CHART_DAYS = 120
CHART_POINTS = 400
#: SVG user units: about one unit per CSS pixel in a card column, so the 11-unit labels stay legible.
CHART_WIDTH = 360.0
CHART_HEIGHT = 200.0
TRANSCRIPT_MESSAGES = 150
TRANSCRIPT_CONVERSATIONS = 20
INBOX_ROWS = 200


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


def _viewer_zone() -> str:
    return str(getattr(current_user, "timezone", "UTC") or "UTC")


def _me(s: Session) -> User:
    user = s.get(User, int(current_user.id))
    if user is None:
        abort(403)
    return user


def _patient_for(s: Session, patient_id: int, *, lock: bool = False) -> tuple[Patient, User]:
    """The patient, if the signed-in user may see them (404 / 403 otherwise; a refusal is audited)."""
    patient = s.get(Patient, patient_id, with_for_update=lock)
    if patient is None:
        abort(404)
    me = _me(s)
    if not may_see(program_scope(s, me), patient):
        abort(403)
    return patient, me


def _back(patient_id: int, anchor: str) -> ResponseReturnValue:
    return redirect(url_for("queue.patient", patient_id=patient_id) + f"#{anchor}")


# --- labels (en/es) --------------------------------------------------------------------------------


def labels_for(language: str, rt: Runtime) -> dict[str, Any]:
    """The page's code-to-words helpers in ``language``."""
    _ = gettext_for(language)
    consent = {
        "express_written": _("written consent"),
        "express_oral": _("spoken consent"),
        "health_care_exemption": _("health-care exemption (no written consent)"),
        "program_enrollment": _("program enrollment (not recorded)"),
    }
    calls = {
        "reached": _("Reached"),
        "voicemail": _("Left a voicemail"),
        "no_answer": _("No answer"),
        "wrong_number": _("Wrong number"),
    }
    tcm = {"due": _("due"), "overdue": _("overdue"), "met": _("met"), "cancelled": _("cancelled")}
    channels = {"sms": _("text messages"), "voice": _("phone call"), "console": _("simulator")}
    conversation = {
        "active": _("in progress"),
        "completed": _("completed"),
        "expired": _("no reply"),
        "stopped": _("stopped"),
        "cancelled": _("cancelled"),
    }
    languages = {"en": _("English"), "es": _("Spanish")}
    call_states = {
        "queued": _("waiting to dial"),
        "dialing": _("dialing"),
        "ringing": _("ringing"),
        "in-progress": _("on the call"),
        "completed": _("answered"),
        "voicemail": _("went to voicemail"),
        "missed": _("not answered"),
        "failed": _("could not call"),
    }

    def flow_title(flow_id: str) -> str:
        flow = rt.content.flows.get(flow_id)
        return (flow.title.get(language) or flow.title.get("en") or flow_id) if flow is not None else flow_id

    return {
        "consent_label": lambda code: consent.get(code, str(code).replace("_", " ")),
        "call_outcome_label": lambda code: calls.get(code, code),
        "tcm_label": lambda code: tcm.get(code, code),
        "channel_label": lambda code: channels.get(code, code),
        "conversation_status_label": lambda code: conversation.get(code, str(code).replace("_", " ")),
        "language_name": lambda code: languages.get(code, code),
        "flow_title": flow_title,
        "call_status_label": lambda code: call_states.get(code, str(code)),
        "delivery_label": lambda code: _("said on the call") if code == "said" else status_label(code, language),
    }


# --- answers in plain language ---------------------------------------------------------------------


def question_text(flow: Flow | None, question_id: str, language: str, names: Mapping[str, str]) -> str:
    """The question as the patient read it (placeholders filled from ``names``), or the id when the flow
    or the question is unknown (an old flow version)."""
    if flow is None or question_id not in flow.nodes:
        return question_id
    node = flow.nodes[question_id]
    text = node.text.get(language) or node.text.get("en") or question_id
    text = _GREETING.sub("", text) or text  # "{program_name}: Hi {first_name}. " adds nothing here
    try:
        return text.format_map(_Blank(names))
    except (ValueError, IndexError):
        return text


#: The greeting a first question opens with (content/flows/*.yaml), left out on the patient page.
_GREETING = re.compile(r"^\{program_name\}:\s*(?:(?:Hi|Hello|Hola)\s+\{first_name\}[.,!]\s*)?")


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "…"


def answer_text(node: Node | None, kind: str, value: Any, unit: str | None, language: str) -> str:
    """An answer value in words: yes / no, the choice's label, a number with its unit, "not sure", "no
    answer"."""
    _ = gettext_for(language)
    if kind == "unanswered":
        return _("no answer")
    if kind == "unknown":
        return _("not sure")
    if value is None:
        return "—"
    if value is True:
        return _("yes")
    if value is False:
        return _("no")
    if node is not None and node.choices:
        for choice in node.choices:
            if choice.id == value or (isinstance(value, int | float) and choice.value == value):
                label = choice.label.get(language) or choice.label.get("en") or choice.id
                return f"{label} ({value:g})" if isinstance(value, int | float) else label
    if isinstance(value, float):
        return f"{value:g} {unit or ''}".strip()
    return str(value)


@dataclass
class ConversationView:
    id: int | None
    title: str
    channel: str
    status: str
    started_at: dt.datetime | None
    messages: list[Message] = field(default_factory=list)
    answers: list[tuple[Answer, str, str]] = field(default_factory=list)
    #: Phone calls of the conversation (a voice check-in), oldest first.
    calls: list[Call] = field(default_factory=list)


# --- charts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartView:
    key: str
    title: str
    unit: str
    chart: Chart | None
    thresholds: tuple[Threshold, ...]
    rows: tuple[tuple[str, float], ...]


def _thresholds(flow: Flow | None, patient: Patient) -> dict[str, float]:
    merged: dict[str, float] = dict(flow.thresholds) if flow is not None else {}
    for source in (patient.program.thresholds or {}, patient.thresholds or {}):
        merged.update({k: float(v) for k, v in source.items() if isinstance(v, int | float)})
    return merged


def weight_alert_lines(
    readings: Sequence[tuple[dt.datetime, float]], gain_day: float, gain_week: float, labels: tuple[str, str]
) -> list[Threshold]:
    """Where the next weigh-in alerts (content/flows/hf-daily-check.yaml): ``gain_day`` above the latest
    reading (the 1-day rule's baseline tomorrow) and ``gain_week`` above the lowest reading of the last 7
    days (the 7-day rule). ``readings`` in lb, any order; empty → no lines."""
    if not readings:
        return []
    ordered = sorted(readings, key=lambda r: r[0])
    latest_at, latest = ordered[-1]
    week = [v for at, v in ordered if at >= latest_at - dt.timedelta(days=7)]
    return [
        Threshold(labels[0], round(latest + gain_day, 1)),
        Threshold(labels[1], round(min(week) + gain_week, 1)),
    ]


def _charts(s: Session, rt: Runtime, patient: Patient, now: dt.datetime, language: str) -> list[ChartView]:
    _ = gettext_for(language)
    tz = zone(patient.timezone)
    since = now - dt.timedelta(days=CHART_DAYS)
    flows = rt.content.flows

    def readings(flow_id: str, question_id: str) -> list[tuple[dt.datetime, float]]:
        rows = s.execute(
            select(Answer.answered_at, Answer.value_number)
            .where(
                Answer.patient_id == patient.id,
                Answer.question_id == question_id,
                Answer.flow_id == flow_id,
                Answer.answered_at >= since,
                Answer.value_number.is_not(None),
            )
            .order_by(Answer.answered_at.desc())
            .limit(CHART_POINTS)
        ).all()
        return [(at.astimezone(tz), float(v)) for at, v in reversed(rows) if v is not None]

    def score_readings(flow_id: str) -> list[tuple[dt.datetime, float]]:
        flow = flows.get(flow_id)
        if flow is None:
            return []
        rows = s.execute(
            select(Answer.conversation_id, Answer.question_id, Answer.kind, Answer.value_number, Answer.answered_at)
            .where(Answer.patient_id == patient.id, Answer.flow_id == flow_id, Answer.answered_at >= since)
            .order_by(Answer.answered_at)
        ).all()
        by_conversation: dict[int, tuple[dt.datetime, dict[str, Any]]] = {}
        for conversation_id, question_id, kind, number, at in rows:
            last, values = by_conversation.get(conversation_id, (at, {}))
            values[question_id] = number if kind in {"number", "scale"} else None
            by_conversation[conversation_id] = (max(last, at), values)
        points = []
        for at, values in by_conversation.values():
            totals = engine.scores(flow, values)
            if totals:
                points.append((at.astimezone(tz), next(iter(totals.values()))))
        return points[-CHART_POINTS:]

    views: list[ChartView] = []

    def add(key: str, title: str, unit: str, points: list[tuple[dt.datetime, float]], lines: list[Threshold]) -> None:
        alert = max((t.value for t in lines), default=None) if key != "glucose" else None
        chart = scale_chart(points, lines, width=CHART_WIDTH, height=CHART_HEIGHT, alert_at=alert) if points else None
        rows = tuple((local.strftime("%Y-%m-%d %H:%M"), value) for local, value in points[-10:][::-1])
        views.append(ChartView(key, title, unit, chart, tuple(lines), rows))

    hf = flows.get("hf-daily-check")
    weight = readings("hf-daily-check", "weight")
    limits = _thresholds(hf, patient)
    add(
        "weight",
        _("Weight"),
        "lb",
        weight,
        weight_alert_lines(
            weight,
            limits.get("weight_gain_1_day_lb", 3.0),
            limits.get("weight_gain_7_days_lb", 5.0),
            (
                _("Alert: +%(lb)s lb in a day") % {"lb": f"{limits.get('weight_gain_1_day_lb', 3.0):g}"},
                _("Alert: +%(lb)s lb in a week") % {"lb": f"{limits.get('weight_gain_7_days_lb', 5.0):g}"},
            ),
        ),
    )
    dm = flows.get("diabetes-glucose-check")
    limits = _thresholds(dm, patient)
    add(
        "glucose",
        _("Blood sugar"),
        "mg/dL",
        readings("diabetes-glucose-check", "glucose"),
        [
            Threshold(_("Low"), limits.get("glucose_low_mgdl", 70.0)),
            Threshold(_("High: check ketones"), limits.get("glucose_high_mgdl", 240.0)),
            Threshold(_("Very high"), limits.get("glucose_very_high_mgdl", 300.0)),
        ],
    )
    limits = _thresholds(flows.get("phq9"), patient)
    add(
        "phq9",
        _("PHQ-9 score (depression)"),
        "",
        score_readings("phq9"),
        [
            Threshold(_("Moderate"), limits.get("phq9_routine_at", 10.0)),
            Threshold(_("Severe"), limits.get("phq9_urgent_at", 20.0)),
        ],
    )
    limits = _thresholds(flows.get("gad7"), patient)
    add(
        "gad7",
        _("GAD-7 score (anxiety)"),
        "",
        score_readings("gad7"),
        [Threshold(_("Severe"), limits.get("gad7_routine_at", 15.0))],
    )
    return views


# --- the page --------------------------------------------------------------------------------------


def _transcript(s: Session, rt: Runtime, patient: Patient, language: str) -> list[ConversationView]:
    """The patient's latest messages grouped by conversation (``None``: outside one), with each
    conversation's answers; the latest ``TRANSCRIPT_CONVERSATIONS`` conversations appear even when their
    messages are older than the last ``TRANSCRIPT_MESSAGES``. Newest conversation first."""
    messages = list(
        s.scalars(
            select(Message)
            .where(Message.patient_id == patient.id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(TRANSCRIPT_MESSAGES)
        ).all()
    )
    latest = s.scalars(
        select(Conversation)
        .where(Conversation.patient_id == patient.id)
        .order_by(Conversation.started_at.desc(), Conversation.id.desc())
        .limit(TRANSCRIPT_CONVERSATIONS)
    ).all()
    conversations = {c.id: c for c in latest}
    missing = {m.conversation_id for m in messages if m.conversation_id is not None} - set(conversations)
    if missing:
        conversations.update({c.id: c for c in s.scalars(select(Conversation).where(Conversation.id.in_(missing)))})
    answers = s.scalars(
        select(Answer).where(Answer.conversation_id.in_(list(conversations))).order_by(Answer.answered_at, Answer.id)
    ).all()
    _ = gettext_for(language)
    names = {"first_name": patient.given_name, "program_name": patient.program.name}
    views: dict[int | None, ConversationView] = {}
    for key, conversation in conversations.items():
        flow = rt.content.flows.get(conversation.flow_id)
        title = (
            (flow.title.get(language) or flow.title.get("en") or conversation.flow_id) if flow else conversation.flow_id
        )
        views[key] = ConversationView(key, title, conversation.channel, conversation.status, conversation.started_at)
    for message in reversed(messages):  # oldest first inside a conversation
        group = message.conversation_id
        if group not in views:
            views[group] = ConversationView(None, _("Outside a conversation"), message.channel, "", message.created_at)
        views[group].messages.append(message)
    for call in s.scalars(
        select(Call).where(Call.conversation_id.in_(list(conversations))).order_by(Call.created_at, Call.id)
    ):
        if call.conversation_id in views:
            views[call.conversation_id].calls.append(call)
    for answer in answers:
        view = views[answer.conversation_id]
        flow = rt.content.flows.get(answer.flow_id)
        node = flow.nodes.get(answer.question_id) if flow is not None else None
        view.answers.append(
            (
                answer,
                question_text(flow, answer.question_id, language, names),
                answer_text(node, answer.kind, answer.value, answer.unit, language),
            )
        )
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)

    def last_activity(view: ConversationView) -> dt.datetime:
        times = [view.started_at or floor]
        if view.messages:
            times.append(view.messages[-1].created_at)
        if view.answers:
            times.append(view.answers[-1][0].answered_at)
        return max(times)

    return sorted(views.values(), key=last_activity, reverse=True)


def render_patient(patient_id: int) -> ResponseReturnValue:
    """The patient page (``queue.patient``): audited as ``patient.viewed``; 403 (audited as
    ``patient.view_refused``) for a patient outside the viewer's programs."""
    from app.web.queue import session_undo

    rt = _rt()
    with rt.sessions() as s, s.begin():
        found = s.get(Patient, patient_id)
        allowed = found is not None and may_see(program_scope(s, _me(s)), found)
        if found is not None and not allowed:
            audit_staff(s, "patient.view_refused", "patient", patient_id)
    if found is None:
        abort(404)
    if not allowed:
        abort(403)
    language = ui_language()
    now = _rt().now()
    with rt.sessions() as s, s.begin():
        patient = s.get(Patient, patient_id)
        assert patient is not None
        audit_staff(s, "patient.viewed", "patient", patient_id)
        open_escalations = list(
            s.scalars(
                select(Escalation)
                .where(Escalation.patient_id == patient_id, Escalation.status != "resolved")
                .order_by(Escalation.created_at)
            ).all()
        )
        closed = s.scalars(
            select(Escalation)
            .where(Escalation.patient_id == patient_id, Escalation.status == "resolved")
            .order_by(Escalation.created_at.desc())
            .limit(50)
        ).all()
        enrollments = s.scalars(
            select(Enrollment).where(Enrollment.patient_id == patient_id).order_by(Enrollment.id)
        ).all()
        next_touches = s.execute(
            select(ScheduledTouch, Enrollment.campaign)
            .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
            .where(Enrollment.patient_id == patient_id, ScheduledTouch.status == TouchStatus.PENDING)
            .order_by(ScheduledTouch.scheduled_for)
            .limit(8)
        ).all()
        notes = s.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.patient_id == patient_id)
            .order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc())
            .limit(100)
        ).all()
        inbox = s.scalars(
            select(Message)
            .where(Message.patient_id == patient_id, Message.needs_review.is_(True))
            .order_by(Message.created_at.desc())
            .limit(100)
        ).all()
        cleared = s.execute(
            select(AuditEvent, Message)
            .join(Message, Message.id == AuditEvent.subject_id)
            .where(
                AuditEvent.action == "message.reviewed",
                AuditEvent.subject_type == "message",
                Message.patient_id == patient_id,
            )
            .order_by(AuditEvent.at.desc())
            .limit(20)
        ).all()
        discharges = s.scalars(
            select(Discharge)
            .where(Discharge.patient_id == patient_id)
            .order_by(Discharge.discharged_at.desc())
            .limit(3)
        ).all()
        program_zone = patient.program.timezone
        is_reply, _conversation = open_conversation_id(s, patient_id, now)
        staff = {u.id: u.email for u in s.scalars(select(User)).all()}
        return render_template(
            "patient.html",
            patient=patient,
            consent=consent_json(patient, patient.program),
            open_escalations=open_escalations,
            seen=encode_seen(open_escalations),
            open_ids=",".join(str(e.id) for e in open_escalations),
            any_unacknowledged=any(e.status == "open" for e in open_escalations),
            closed_escalations=closed,
            outcomes=OUTCOMES,
            enrollments=enrollments,
            enrollment_history=enrollment_changes.timeline(s, patient_id),
            next_touches=next_touches,
            schedule_notes=[(n.at, n.code, reason_text(n.code, language), n.detail) for n in notes],
            conversations=_transcript(s, rt, patient, language),
            charts=_charts(s, rt, patient, now, language),
            calls=s.scalars(
                select(CareCall).where(CareCall.patient_id == patient_id).order_by(CareCall.called_at.desc()).limit(50)
            ).all(),
            call_outcomes=CALL_OUTCOMES,
            max_minutes=MAX_MINUTES,
            call_note_max=NOTE_MAX,
            ccm=ccm_months(s, patient_id, program_zone, now),
            ccm_threshold=CCM_MONTHLY_MINUTES,
            tcm=[(d, clock_of(d, now)) for d in discharges],
            inbox=inbox,
            cleared=cleared,
            text_key=secrets.token_urlsafe(18),
            text_max=MAX_LENGTH,
            text_is_reply=is_reply,
            staff_by_id=staff,
            viewer_zone=_viewer_zone(),
            program_zone=program_zone,
            now=now,
            back=url_for("queue.patient", patient_id=patient_id),
            undo_offer=session_undo(),
            **labels_for(language, rt),
        )


# --- actions ---------------------------------------------------------------------------------------


def refusal_text(code: str, language: str) -> str:
    _ = gettext_for(language)
    texts = {
        "opted_out": _("Not sent: the patient opted out of texts."),
        "cannot_text": _("Not sent: this number cannot take texts."),
        "empty": _("Write the text first."),
        "too_long": _("The text is too long (at most %(n)s characters).") % {"n": MAX_LENGTH},
        "quiet_hours": _(
            "Not sent: it is outside texting hours where the patient lives (8:00 to 21:00), and this is not a reply."
        ),
        "bad_key": _("The form expired. Reload the page and try again."),
        "outcome": _("Choose how the call went."),
        "minutes": _("Minutes must be a whole number from 0 to %(n)s.") % {"n": MAX_MINUTES},
        "at": _("The call cannot be in the future."),
        "reason": _("Give a reason."),
        "note": _("The note is too long (at most %(n)s characters). Nothing was saved.") % {"n": NOTE_MAX},
    }
    return texts.get(code, code)


@bp.post("/patients/<int:patient_id>/calls")
@roles_required()
def log_call_attempt(patient_id: int) -> ResponseReturnValue:
    """Log a call (outcome, minutes, note): feeds the TCM clock of an open discharge and the CCM month."""
    language = ui_language()
    _ = gettext_for(language)
    now = _rt().now()
    raw_minutes = request.form.get("minutes", "").strip()
    minutes = int(raw_minutes) if raw_minutes.isdigit() and len(raw_minutes) < 5 else None
    with _rt().sessions() as s, s.begin():
        patient, me = _patient_for(s, patient_id, lock=True)
        try:
            call = log_call(
                s,
                patient,
                me,
                outcome=request.form.get("outcome", ""),
                minutes=minutes,
                note=request.form.get("note", ""),
                at=now,
                now=now,
            )
        except CallRefused as exc:
            for code in exc.fields:
                flash(refusal_text(code, language), "error")
            return _back(patient_id, "calls")
        audit_staff(
            s,
            "patient.call_logged",
            "patient",
            patient_id,
            call_id=call.id,
            outcome=call.outcome,
            minutes=call.minutes,
            contact_attempt_id=call.contact_attempt_id,
        )
        flash(_("Call logged."), "info")
    return _back(patient_id, "calls")


@bp.post("/patients/<int:patient_id>/text")
@roles_required()
def send_text(patient_id: int) -> ResponseReturnValue:
    """A one-off text (opt-out, the number, quiet hours unless a reply; exactly once per form key)."""
    language = ui_language()
    _ = gettext_for(language)
    now = _rt().now()
    body = request.form.get("body", "")[: MAX_LENGTH + 1]
    try:
        with _rt().sessions() as s, s.begin():
            patient, _me_user = _patient_for(s, patient_id, lock=True)
            try:
                result = send_staff_text(s, _rt(), patient, body, request.form.get("key", ""), now)
            except TextRefused as exc:
                audit_staff(s, "patient.text_refused", "patient", patient_id, code=exc.code)
                flash(refusal_text(exc.code, language), "error")
                return _back(patient_id, "text")
            if not result.duplicate:
                audit_staff(s, "patient.text_sent", "patient", patient_id, message_id=result.message.id)
    except IntegrityError:  # the same form posted twice at once: the other request queued it
        pass
    flash(_("Text queued. Its delivery status shows in the transcript."), "info")
    return _back(patient_id, "text")


@bp.post("/patients/<int:patient_id>/enrollments/<int:enrollment_id>/<action>")
@roles_required()
def change_enrollment(patient_id: int, enrollment_id: int, action: str) -> ResponseReturnValue:
    """Pause or resume outreach of one enrollment, with a reason (app/programs/enrollment.py)."""
    if action not in {"pause", "resume"}:
        abort(404)
    language = ui_language()
    _ = gettext_for(language)
    reason = request.form.get("reason", "").strip()[: enrollment_changes.REASON_MAX]
    if not reason:
        flash(refusal_text("reason", language), "error")
        return _back(patient_id, "enrollments")
    now = _rt().now()
    rt = _rt()
    with rt.sessions() as s, s.begin():
        patient, me = _patient_for(s, patient_id)
        enrollment = s.get(Enrollment, enrollment_id, with_for_update=True)
        if enrollment is None or enrollment.patient_id != patient.id:
            abort(404)
        try:
            if action == "pause":
                enrollment_changes.pause(s, enrollment, reason, me.email, now)
            else:
                enrollment_changes.resume(s, rt, enrollment, reason, me.email, now)
        except enrollment_changes.EnrollmentRefused as exc:
            flash(_("Nothing changed: %(why)s") % {"why": _enrollment_refusal(exc.code, language)}, "error")
            return _back(patient_id, "enrollments")
        audit_staff(s, f"patient.outreach_{action}d", "patient", patient_id, enrollment_id=enrollment_id)
        flash(_("Outreach paused.") if action == "pause" else _("Outreach resumed."), "info")
    return _back(patient_id, "enrollments")


def _enrollment_refusal(code: str, language: str) -> str:
    _ = gettext_for(language)
    return {
        "not_active": _("this enrollment is not active."),
        "not_paused": _("this enrollment is not paused."),
        "already_enrolled": _("the patient has another active enrollment in this campaign."),
    }.get(code, code)


@bp.post("/patients/<int:patient_id>/inbox/<int:message_id>/clear")
@roles_required()
def clear_inbox(patient_id: int, message_id: int) -> ResponseReturnValue:
    """A message flagged "needs review" was handled: it leaves the inbox (who and when are kept)."""
    language = ui_language()
    _ = gettext_for(language)
    with _rt().sessions() as s, s.begin():
        patient, me = _patient_for(s, patient_id)
        message = s.get(Message, message_id, with_for_update=True)
        if message is None or message.patient_id != patient.id:
            abort(404)
        if message.needs_review:
            mark_reviewed(s, message, me.id, _rt().now())
            flash(_("Marked as handled."), "info")
    back = safe_target(request.form.get("back"), "")
    return redirect(back) if back else _back(patient_id, "inbox")


@bp.get("/inbox")
@roles_required()
def inbox() -> ResponseReturnValue:
    """The care-team inbox: every message flagged "needs review" of the viewer's patients, oldest first
    (the longest waiting on top), and those handled since midnight with who and when. Audited."""
    now = _rt().now()
    tz = zone(_viewer_zone())
    local = now.astimezone(tz)
    midnight = dt.datetime.combine(local.date(), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    with _rt().sessions() as s, s.begin():
        scope = program_scope(s, _me(s))
        waiting_query = (
            select(Message, Patient)
            .join(Patient, Patient.id == Message.patient_id)
            .where(Message.needs_review.is_(True))
            .order_by(Message.created_at, Message.id)
            .limit(INBOX_ROWS)
        )
        handled_query = (
            select(AuditEvent, Message, Patient)
            .join(Message, Message.id == AuditEvent.subject_id)
            .join(Patient, Patient.id == Message.patient_id)
            .where(
                AuditEvent.action == "message.reviewed", AuditEvent.subject_type == "message", AuditEvent.at >= midnight
            )
            .order_by(AuditEvent.at.desc())
            .limit(INBOX_ROWS)
        )
        if scope is not None:
            waiting_query = waiting_query.where(Patient.program_id.in_(scope))
            handled_query = handled_query.where(Patient.program_id.in_(scope))
        waiting = s.execute(waiting_query).all()
        handled = s.execute(handled_query).all()
        audit_staff(s, "inbox.viewed", "inbox", None, message_ids=[m.id for m, _p in waiting][:300])
        staff = {u.id: u.email for u in s.scalars(select(User)).all()}
        return render_template(
            "inbox.html",
            waiting=waiting,
            handled=handled,
            staff_by_id=staff,
            viewer_zone=_viewer_zone(),
            now=now,
        )
