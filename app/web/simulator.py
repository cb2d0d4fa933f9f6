"""The patient simulator (demo and console channel): play the patient, see what the bot sends.

Text mode: replies go through exactly the same inbound path as a real SMS (keywords, conversation, inbox).
Phone mode (``?mode=phone``): a check-in started as a call and answered at once; what the caller hears is
shown as text, and the keypad, a phrase to "say" (with an optional confidence) or silence go through the
Gather webhook's own service (app/messaging/call_turns.py), so read-backs, 9, 911 and the nurse behave as
on a real call. Keys of a number (``# to end``) are collected here until ``#``, as the phone does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.service import ConversationBusy, active_conversation, start_conversation
from app.flows import voice as v
from app.i18n import gettext_for
from app.messaging.call_turns import SIMULATED, GatherResult, simulated_gather, start_simulated_call
from app.messaging.inbound import receive_text
from app.models import Answer, Call, Escalation, Message, Patient, User
from app.patients.access import Scope, may_see, program_scope
from app.runtime import Runtime
from app.web import ui_language
from app.web.security import audit_staff, roles_required

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

#: Where the keys of a number are kept until "#" (the Flask session: ``{call id: "18"}``).
_KEYS = "sim_keys"
_KEYPAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")


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
    phone = request.args.get("mode") == "phone"
    with rt.sessions() as db, db.begin():
        scope = _scope(db)
        query = select(Patient).order_by(Patient.id)
        if scope is not None:
            query = query.where(Patient.program_id.in_(scope))
        patients = db.scalars(query).all()
        selected_id = request.args.get("patient", type=int) or (patients[0].id if patients else None)
        selected = _patient(db, selected_id) if selected_id else None
        if selected is not None:
            audit_staff(db, "simulator.viewed", "patient", selected.id)
        messages = list(
            db.scalars(
                select(Message).where(Message.patient_id == selected_id).order_by(Message.created_at, Message.id)
            ).all()
            if selected
            else []
        )
        call = _last_call(db, selected_id) if phone and selected else None
        turn = _current_turn(call)
        answers: tuple[Answer, ...] = ()
        escalations: tuple[Escalation, ...] = ()
        if call is not None:
            messages = [m for m in messages if m.channel == "voice" and m.created_at >= call.created_at]
            answers = tuple(
                db.scalars(
                    select(Answer)
                    .where(Answer.patient_id == call.patient_id, Answer.answered_at >= call.created_at)
                    .order_by(Answer.id)
                ).all()
            )
            escalations = tuple(
                db.scalars(
                    select(Escalation)
                    .where(Escalation.patient_id == call.patient_id, Escalation.created_at >= call.created_at)
                    .order_by(Escalation.id)
                ).all()
            )
        return render_template(
            "simulator.html",
            patients=patients,
            selected=selected,
            messages=messages,
            flows=rt.content.startable_flows(),
            chosen_flow=request.args.get("flow", ""),
            phone=phone,
            call=call,
            turn=turn,
            keys=session.get(_KEYS, {}).get(str(call.id), "") if call is not None else "",
            keypad=_KEYPAD,
            answers=answers,
            escalations=escalations,
        )


def _last_call(db: Session, patient_id: int | None) -> Call | None:
    return db.scalars(
        select(Call).where(Call.patient_id == patient_id, Call.purpose == SIMULATED).order_by(Call.id.desc()).limit(1)
    ).first()


def _current_turn(call: Call | None) -> v.Turn | None:
    """The last turn the caller heard (what the page shows and how the keypad listens)."""
    if call is None or not call.turns:
        return None
    stored = call.turns.get(str(call.step - 1))
    return v.Turn.from_dict(stored) if stored else None


@bp.post("/<int:patient_id>/reply")
@roles_required()
def reply(patient_id: int) -> ResponseReturnValue:
    rt = _rt()
    body = request.form.get("body", "")
    with rt.sessions() as db, db.begin():
        patient = _patient(db, patient_id)
        audit_staff(db, "simulator.replied", "patient", patient.id)
        receive_text(
            db,
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
    with rt.sessions() as db, db.begin():
        patient = _patient(db, patient_id)
        audit_staff(db, "simulator.started", "patient", patient.id, flow=flow_id)
        if patient.opted_out:
            flash(_("Nothing started: this patient opted out of texts."), "error")
        elif not patient.reachable:
            flash(_("Nothing started: texts are off for this patient (number to fix or inactive)."), "error")
        else:
            try:
                start_conversation(db, rt, patient, flow_id, rt.now())
            except ConversationBusy:
                flash(_("Nothing started: a conversation is already under way. Reply to it first."), "error")
    return redirect(url_for("simulator.page", patient=patient_id, flow=flow_id))


@bp.post("/<int:patient_id>/call")
@roles_required()
def call_start(patient_id: int) -> ResponseReturnValue:
    """Phone mode: start the chosen check-in as a call, answered at once."""
    rt = _rt()
    _ = gettext_for(ui_language())
    flow_id = request.form.get("flow", "")
    if flow_id not in rt.content.startable_flows():
        abort(400)
    with rt.sessions() as db, db.begin():
        patient = _patient(db, patient_id)
        audit_staff(db, "simulator.called", "patient", patient.id, flow=flow_id)
        try:
            start_simulated_call(db, rt, patient, flow_id, rt.now())
        except ConversationBusy:
            flash(_busy_text(db, patient, _), "error")
    return redirect(url_for("simulator.page", patient=patient_id, mode="phone", flow=flow_id))


def _busy_text(db: Session, patient: Patient, _: Callable[[str], str]) -> str:
    """Why "Call now" started nothing: the open call (its check-in named, it stays on the page), or a
    conversation going on by text."""
    open_one = active_conversation(db, patient.id)
    if open_one is not None and open_one.channel == "voice":
        return _("Nothing started: the %(flow)s call is still open. Finish it first (it is shown below).") % {
            "flow": open_one.flow_id
        }
    return _("Nothing started: a conversation is already under way. Reply to it first.")


def _simulated_call(patient_id: int, call_id: int) -> v.Turn | None:
    """The simulator's call ``call_id`` of a patient the user may see (404 / 403), and its current turn."""
    with _rt().sessions() as db:
        _patient(db, patient_id)
        call = db.get(Call, call_id)
        if call is None or call.patient_id != patient_id or call.purpose != SIMULATED:
            abort(404)
        return _current_turn(call)


@bp.post("/<int:patient_id>/call/<int:call_id>/key")
@roles_required()
def call_key(patient_id: int, call_id: int) -> ResponseReturnValue:
    """One key of the keypad. A question answered by one key gets it at once; a number's keys are kept
    until "#" (Twilio's ``finishOnKey``), then sent together."""
    rt = _rt()
    key = request.form.get("key", "")
    if key not in _KEYPAD:
        abort(400)
    turn = _simulated_call(patient_id, call_id)
    if turn is None or turn.gather is None:
        return redirect(url_for("simulator.page", patient=patient_id, mode="phone"))
    kept: dict[str, str] = dict(session.get(_KEYS, {}))
    typed = kept.pop(str(call_id), "")
    send = True
    if turn.gather.num_digits == 1:
        digits: str | None = key
    elif key == turn.gather.finish_on_key:
        digits = typed or None
    else:
        kept[str(call_id)] = (typed + key)[:32]
        digits, send = None, False
    session[_KEYS] = kept
    if send:
        simulated_gather(rt, patient_id, call_id, GatherResult(digits, None, None), rt.now())
    return redirect(url_for("simulator.page", patient=patient_id, mode="phone"))


@bp.post("/<int:patient_id>/call/<int:call_id>/say")
@roles_required()
def call_say(patient_id: int, call_id: int) -> ResponseReturnValue:
    """A phrase "said" (``speech``, an optional ``confidence`` 0-1), or silence (``silent``, or nothing said)."""
    rt = _rt()
    speech = None if request.form.get("silent") else (request.form.get("speech", "").strip()[:500] or None)
    raw = request.form.get("confidence", "").strip()
    confidence: str | None = None
    if raw:
        try:
            level = float(raw)
        except ValueError:
            abort(400)
        if not 0.0 <= level <= 1.0:
            abort(400)
        confidence = f"{level:g}"
    _simulated_call(patient_id, call_id)
    kept = dict(session.get(_KEYS, {}))
    kept.pop(str(call_id), None)
    session[_KEYS] = kept
    simulated_gather(rt, patient_id, call_id, GatherResult(None, speech, confidence), rt.now())
    return redirect(url_for("simulator.page", patient=patient_id, mode="phone"))
