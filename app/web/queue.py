"""Queue and patient timeline pages; every patient view and escalation action is audited."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.escalation.queue import OUTCOMES, ActionRefused, acknowledge, open_queue, resolve
from app.i18n import gettext_for
from app.messaging.inbound import flagged_unknown_senders, mark_reviewed
from app.models import Answer, AuditEvent, Enrollment, Escalation, Message, Patient, utcnow
from app.programs.enrollment import timeline as enrollment_timeline
from app.runtime import Runtime
from app.web import ui_language
from app.web.auth import login_required

bp = Blueprint("queue", __name__)


def refusal_text(code: str, language: str) -> str:
    _ = gettext_for(language)
    texts = {
        "not_open": _("Someone already acknowledged this escalation."),
        "already_resolved": _("This escalation is already resolved."),
        "outcome_required": _("Choose an outcome before you resolve."),
    }
    return texts.get(code, code)


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


@bp.get("/")
@login_required
def home() -> ResponseReturnValue:
    return redirect(url_for("queue.index"))


@bp.get("/queue")
@login_required
def index() -> str:
    with _rt().sessions() as session:
        items = open_queue(session)
        unknown = flagged_unknown_senders(session)
        return render_template("queue.html", items=items, unknown=unknown, now=utcnow(), outcomes=OUTCOMES)


@bp.post("/inbox/<int:message_id>/reviewed")
@login_required
def reviewed(message_id: int) -> ResponseReturnValue:
    """A flagged text from an unknown number was dealt with: it leaves the queue (audited)."""
    with _rt().sessions() as session, session.begin():
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.direction != "inbound":
            abort(404)
        mark_reviewed(session, message, g.user.id, utcnow())
    return redirect(url_for("queue.index"))


@bp.post("/escalations/<int:escalation_id>/<action>")
@login_required
def act(escalation_id: int, action: str) -> ResponseReturnValue:
    now = utcnow()
    with _rt().sessions() as session, session.begin():
        escalation = session.get(Escalation, escalation_id, with_for_update=True)
        if escalation is None:
            abort(404)
        try:
            if action == "acknowledge":
                acknowledge(session, escalation, g.user.id, now)
            elif action == "resolve":
                resolve(
                    session, escalation, g.user.id, request.form.get("outcome", ""), request.form.get("note", ""), now
                )
            else:
                abort(404)
        except ActionRefused as exc:
            flash(refusal_text(exc.code, ui_language()), "error")
    return redirect(request.form.get("back") or url_for("queue.index"))


@bp.get("/patients/<int:patient_id>")
@login_required
def patient(patient_id: int) -> str:
    with _rt().sessions() as session, session.begin():
        found = session.get(Patient, patient_id)
        if found is None:
            abort(404)
        session.add(
            AuditEvent(
                user_id=g.user.id, action="patient.viewed", subject_type="patient", subject_id=patient_id, at=utcnow()
            )
        )
        messages = session.scalars(
            select(Message)
            .where(Message.patient_id == patient_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(200)
        ).all()
        answers = session.scalars(
            select(Answer).where(Answer.patient_id == patient_id).order_by(Answer.answered_at.desc()).limit(200)
        ).all()
        escalations = session.scalars(
            select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.created_at.desc())
        ).all()
        enrollment_rows = session.scalars(
            select(Enrollment).where(Enrollment.patient_id == patient_id).order_by(Enrollment.id)
        ).all()
        return render_template(
            "patient.html",
            enrollments=enrollment_rows,
            enrollment_history=enrollment_timeline(session, patient_id),
            patient=found,
            messages=messages,
            answers=answers,
            escalations=escalations,
            outcomes=OUTCOMES,
            now=utcnow(),
        )
