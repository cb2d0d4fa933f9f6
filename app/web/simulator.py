"""The patient simulator (demo and console channel): play the patient, see what the bot sends.

Replies go through exactly the same inbound path as a real SMS (keywords, conversation, inbox).
"""

from __future__ import annotations

import contextlib
import uuid

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.conversations.service import ConversationBusy, start_conversation
from app.messaging.inbound import receive_text
from app.models import Message, Patient
from app.runtime import Runtime
from app.web.auth import login_required

bp = Blueprint("simulator", __name__, url_prefix="/simulator")


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


@bp.get("")
@login_required
def page() -> str:
    rt = _rt()
    with rt.sessions() as session:
        patients = session.scalars(select(Patient).order_by(Patient.id)).all()
        selected_id = request.args.get("patient", type=int) or (patients[0].id if patients else None)
        selected = session.get(Patient, selected_id) if selected_id else None
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
        )


@bp.post("/<int:patient_id>/reply")
@login_required
def reply(patient_id: int) -> ResponseReturnValue:
    rt = _rt()
    body = request.form.get("body", "")
    with rt.sessions() as session, session.begin():
        patient = session.get(Patient, patient_id)
        if patient is None:
            abort(404)
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
@login_required
def start(patient_id: int) -> ResponseReturnValue:
    rt = _rt()
    flow_id = request.form.get("flow", "")
    if flow_id not in rt.content.startable_flows():
        abort(400)
    with rt.sessions() as session, session.begin():
        patient = session.get(Patient, patient_id)
        if patient is None:
            abort(404)
        with contextlib.suppress(ConversationBusy):
            start_conversation(session, rt, patient, flow_id, rt.now())
    return redirect(url_for("simulator.page", patient=patient_id))
