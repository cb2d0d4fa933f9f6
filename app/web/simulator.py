"""The patient simulator (demo and console channel): play the patient, see what the bot sends.

Replies go through exactly the same inbound path as a real SMS (keywords, conversation, inbox).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.service import ConversationBusy, start_conversation
from app.i18n import gettext_for
from app.messaging.inbound import receive_text
from app.models import AuditEvent, Message, Patient, User, utcnow
from app.patients.access import Scope, may_see, program_scope
from app.runtime import Runtime
from app.web import ui_language
from app.web.security import roles_required

bp = Blueprint("simulator", __name__, url_prefix="/simulator")


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


def _scope(session: Session) -> Scope:
    user = session.get(User, int(current_user.id))
    if user is None:
        abort(403)
    return program_scope(session, user)


def _patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        abort(404)
    if not may_see(_scope(session), patient):
        abort(403)
    return patient


@bp.get("")
@roles_required()
def page() -> str:
    rt = _rt()
    with rt.sessions() as session, session.begin():
        scope = _scope(session)
        query = select(Patient).order_by(Patient.id)
        if scope is not None:
            query = query.where(Patient.program_id.in_(scope))
        patients = session.scalars(query).all()
        selected_id = request.args.get("patient", type=int) or (patients[0].id if patients else None)
        selected = _patient(session, selected_id) if selected_id else None
        if selected is not None:
            session.add(
                AuditEvent(
                    user_id=int(current_user.id),
                    action="simulator.viewed",
                    subject_type="patient",
                    subject_id=selected.id,
                    at=utcnow(),
                )
            )
        messages = (
            session.scalars(
                select(Message).where(Message.patient_id == selected_id).order_by(Message.created_at, Message.id)
            ).all()
            if selected
            else []
        )
        return render_template(
            "simulator.html",
            patients=patients,
            selected=selected,
            messages=messages,
            flows=rt.content.startable_flows(),
            chosen_flow=request.args.get("flow", ""),
        )


@bp.post("/<int:patient_id>/reply")
@roles_required()
def reply(patient_id: int) -> ResponseReturnValue:
    rt = _rt()
    body = request.form.get("body", "")
    with rt.sessions() as session, session.begin():
        patient = _patient(session, patient_id)
        session.add(
            AuditEvent(
                user_id=int(current_user.id),
                action="simulator.replied",
                subject_type="patient",
                subject_id=patient.id,
                at=utcnow(),
            )
        )
        receive_text(
            session,
            rt,
            sid="SIM" + uuid.uuid4().hex,
            from_number=patient.phone,
            to_number="simulator",
            body=body,
            channel="console",
            now=rt.now(),
        )
    return redirect(url_for("simulator.page", patient=patient_id))


@bp.post("/<int:patient_id>/start")
@roles_required()
def start(patient_id: int) -> ResponseReturnValue:
    """Start a flow now; when nothing starts, say why (opted out, texts off, a conversation under way)."""
    rt = _rt()
    _ = gettext_for(ui_language())
    flow_id = request.form.get("flow", "")
    if flow_id not in rt.content.startable_flows():
        abort(400)
    with rt.sessions() as session, session.begin():
        patient = _patient(session, patient_id)
        session.add(
            AuditEvent(
                user_id=int(current_user.id),
                action="simulator.started",
                subject_type="patient",
                subject_id=patient.id,
                detail={"flow": flow_id},
                at=utcnow(),
            )
        )
        if patient.opted_out:
            flash(_("Nothing started: this patient opted out of texts."), "error")
        elif not patient.reachable:
            flash(_("Nothing started: texts are off for this patient (number to fix or inactive)."), "error")
        else:
            try:
                start_conversation(session, rt, patient, flow_id, rt.now())
            except ConversationBusy:
                flash(_("Nothing started: a conversation is already under way. Reply to it first."), "error")
    return redirect(url_for("simulator.page", patient=patient_id, flow=flow_id))
