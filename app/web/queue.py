"""The queue (live, one row per patient episode), its actions, the resolved-today view and the patient
page. Every view that shows PHI and every action is audited; every patient outside the viewer's programs
answers 403."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.escalation.levels import EscalationLevel
from app.escalation.queue import (
    OUTCOMES,
    ActionRefused,
    Episode,
    QueueFilter,
    acknowledge,
    assign,
    check_fresh,
    encode_seen,
    last_change,
    open_episodes,
    parse_seen,
    resolve,
    resolved_since,
    undo,
)
from app.i18n import gettext_for
from app.messaging.inbound import flagged_unknown_senders, mark_reviewed
from app.models import (
    AuditEvent,
    Escalation,
    Message,
    Patient,
    Program,
    User,
    utcnow,
)
from app.patients.access import ASSIGN_ROLES, Scope, colleagues, may_see, program_scope, teammate_ids
from app.runtime import Runtime
from app.web import ui_language
from app.web.labels import STAFF_ZONES, change_text, local_time, zone
from app.web.security import audit_staff, roles_required, safe_target

bp = Blueprint("queue", __name__)
UNDO_KEY = "_undo"


def refusal_text(code: str, language: str) -> str:
    _ = gettext_for(language)
    texts = {
        "not_open": _("Someone already acknowledged this escalation."),
        "already_resolved": _("This escalation is already resolved."),
        "outcome_required": _("Choose an outcome before you resolve."),
        "nothing_to_undo": _("This can no longer be undone: it is too old or someone changed it since."),
        "not_allowed": _("Only a supervisor can assign work to someone else."),
        "stale": _("This item changed since you loaded the page (a new sign or a higher level). Nothing was done."),
    }
    return texts.get(code, code)


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


def _me(session: Session) -> User:
    user = session.get(User, int(current_user.id))
    if user is None:
        abort(403)
    return user


def _filters() -> QueueFilter:
    level = request.args.get("level", "")
    program = request.args.get("program", "")
    return QueueFilter(
        mine=request.args.get("mine") == "1",
        team=request.args.get("team") == "1",
        level=level if level in EscalationLevel.__members__ else None,
        program_id=int(program) if program.isdigit() and len(program) < 10 else None,
        overdue=request.args.get("overdue") == "1",
        search=request.args.get("q", "")[:100],
    )


def _viewer_zone() -> str:
    return str(getattr(current_user, "timezone", "UTC") or "UTC")


def _local_midnight(now: dt.datetime) -> dt.datetime:
    tz = zone(_viewer_zone())
    local = now.astimezone(tz)
    return dt.datetime.combine(local.date(), dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def _queue_context(session: Session) -> dict[str, Any]:
    """Everything the queue page and its live rows need, read once."""
    me = _me(session)
    scope = program_scope(session, me)
    now = utcnow()
    filters = _filters()
    view = "resolved" if request.args.get("view") == "resolved" else "open"
    episodes: list[Episode] = []
    resolved: list[Escalation] = []
    if view == "open":
        episodes = open_episodes(
            session,
            scope=scope,
            filters=filters,
            user_id=me.id,
            team_ids=teammate_ids(session, me),
            now=now,
        )
    else:
        resolved = list(resolved_since(session, scope=scope, since=_local_midnight(now)))
    programs_query = select(Program).order_by(Program.name)
    if scope is not None:
        programs_query = programs_query.where(Program.id.in_(scope))
    staff = colleagues(session, scope)
    return {
        "episodes": episodes,
        "resolved": resolved,
        "unknown": flagged_unknown_senders(session) if view == "open" else [],
        "now": now,
        "outcomes": OUTCOMES,
        "filters": filters,
        "view": view,
        "programs": session.scalars(programs_query).all(),
        "staff": staff,
        "staff_by_id": {u.id: u.email for u in staff},
        "can_assign": me.role in ASSIGN_ROLES,
        "me_id": me.id,
        "encode_seen": encode_seen,
        "viewer_zone": _viewer_zone(),
        "levels": [level.value for level in EscalationLevel if level != EscalationLevel.INFO],
        "query_string": request.query_string.decode("ascii", "replace"),
        "back_url": _back_url(),
        "undo_offer": session_undo(),
    }


def _back_url() -> str:
    """The queue page with the filters in force (the rows may be rendered by the live poll)."""
    query = request.query_string.decode("ascii", "replace")
    return url_for("queue.index") + (f"?{query}" if query else "")


def _shown_ids(context: dict[str, Any]) -> list[int]:
    ids = [i for episode in context["episodes"] for i in episode.ids]
    return (ids or [e.id for e in context["resolved"]])[:300]


def session_undo() -> dict[str, Any] | None:
    offer = session.get(UNDO_KEY)
    return offer if isinstance(offer, dict) else None


@bp.get("/")
@roles_required()
def home() -> ResponseReturnValue:
    return redirect(url_for("queue.index"))


@bp.get("/queue")
@roles_required()
def index() -> ResponseReturnValue:
    with _rt().sessions() as s, s.begin():
        context = _queue_context(s)
        audit_staff(s, "queue.viewed", "queue", None, view=context["view"], escalation_ids=_shown_ids(context))
        session["_queue_audited"] = _digest(context)
        return render_template("queue.html", **context)


@bp.get("/queue/rows")
@roles_required()
def rows() -> ResponseReturnValue:
    """The live part of the queue, fetched by htmx every few seconds. Audited when what it shows changed."""
    with _rt().sessions() as s, s.begin():
        context = _queue_context(s)
        digest = _digest(context)
        if session.get("_queue_audited") != digest:
            audit_staff(
                s, "queue.viewed", "queue", None, view=context["view"], escalation_ids=_shown_ids(context), live=True
            )
            session["_queue_audited"] = digest
        return render_template("_queue_rows.html", **context)


def _digest(context: dict[str, Any]) -> str:
    ids = ",".join(map(str, _shown_ids(context))) + "|" + ",".join(str(m.id) for m in context["unknown"])
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


@bp.post("/inbox/<int:message_id>/reviewed")
@roles_required()
def reviewed(message_id: int) -> ResponseReturnValue:
    """A flagged text from an unknown number was dealt with: it leaves the queue (audited)."""
    with _rt().sessions() as s, s.begin():
        message = s.get(Message, message_id, with_for_update=True)
        if message is None or message.direction != "inbound":
            abort(404)
        if message.patient_id is not None:
            patient = s.get(Patient, message.patient_id)
            if patient is None or not may_see(program_scope(s, _me(s)), patient):
                abort(403)
        mark_reviewed(s, message, int(current_user.id), utcnow())
    return redirect(url_for("queue.index"))


def _episode_escalations(s: Session, patient_id: int, scope: Scope) -> tuple[Patient, list[Escalation]]:
    patient = s.get(Patient, patient_id)
    if patient is None:
        abort(404)
    if not may_see(scope, patient):
        abort(403)
    raw = request.form.get("ids", "")
    ids = sorted({int(part) for part in raw.split(",") if part.strip().isdigit() and len(part.strip()) < 10})[:50]
    if not ids:
        abort(400)
    escalations = list(
        s.scalars(
            select(Escalation)
            .where(Escalation.id.in_(ids), Escalation.patient_id == patient_id)
            .order_by(Escalation.id)
            .with_for_update()
        ).all()
    )
    if len(escalations) != len(ids):
        abort(404)
    return patient, escalations


@bp.post("/episodes/<int:patient_id>/<action>")
@roles_required()
def act(patient_id: int, action: str) -> ResponseReturnValue:
    """acknowledge | resolve (outcome, note) | claim | release | assign (assignee) on the escalations the
    nurse saw (``ids``), refused with a "who did what" message when their state moved on (``seen``)."""
    if action not in {"acknowledge", "resolve", "claim", "release", "assign"}:
        abort(404)
    language = ui_language()
    _ = gettext_for(language)
    now = utcnow()
    back = safe_target(request.form.get("back"), url_for("queue.index"))
    with _rt().sessions() as s, s.begin():
        me = _me(s)
        scope = program_scope(s, me)
        patient, escalations = _episode_escalations(s, patient_id, scope)
        name = f"{patient.given_name} {patient.family_name}"
        try:
            check_fresh(escalations, parse_seen(request.form.get("seen", "")))
            events = _apply(s, action, escalations, me, scope, now)
        except ActionRefused as exc:
            if exc.code == "stale":
                change = last_change(s, [e.id for e in escalations], not_by=me.id)
                if change is not None:
                    flash(
                        _("%(who)s %(what)s at %(when)s. The list now shows the change; nothing was done.")
                        % {
                            "who": change.email,
                            "what": change_text(change.action, language),
                            "when": local_time(change.at, me.timezone, now),
                        },
                        "error",
                    )
                else:
                    flash(refusal_text("stale", language), "error")
            else:
                flash(refusal_text(exc.code, language), "error")
            return redirect(back)
        done = {
            "acknowledge": _("Acknowledged: %(name)s."),
            "resolve": _("Resolved: %(name)s."),
            "claim": _("You are working on %(name)s."),
            "release": _("Released: %(name)s."),
            "assign": _("Assigned: %(name)s."),
        }[action] % {"name": name}
        s.flush()
        session[UNDO_KEY] = {"events": [e.id for e in events], "text": done}
    return redirect(back)


def _apply(
    s: Session, action: str, escalations: list[Escalation], me: User, scope: Scope, now: dt.datetime
) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    if action == "acknowledge":
        waiting = [e for e in escalations if e.status == "open"]
        if not waiting:
            raise ActionRefused("not_open")
        events = [acknowledge(s, e, me.id, now) for e in waiting]
    elif action == "resolve":
        outcome = request.form.get("outcome", "")
        note = request.form.get("note", "")[:4000]
        events = [resolve(s, e, me.id, outcome, note, now) for e in escalations]
    elif action == "claim":
        events = [assign(s, e, me.id, me.id, now) for e in escalations]
    elif action == "release":
        if me.role not in ASSIGN_ROLES and any(e.assigned_to_id not in {None, me.id} for e in escalations):
            raise ActionRefused("not_allowed")
        events = [assign(s, e, me.id, None, now) for e in escalations]
    else:
        if me.role not in ASSIGN_ROLES:
            raise ActionRefused("not_allowed")
        raw = request.form.get("assignee", "")
        allowed = {u.id for u in colleagues(s, scope)}
        if not raw.isdigit() or int(raw) not in allowed:
            abort(400)
        events = [assign(s, e, me.id, int(raw), now) for e in escalations]
    return events


@bp.post("/undo")
@roles_required()
def undo_last() -> ResponseReturnValue:
    """Undo the confirmation's action (the same user, within 15 minutes, nothing changed since)."""
    language = ui_language()
    _ = gettext_for(language)
    offer = session.pop(UNDO_KEY, None)
    back = safe_target(request.form.get("back"), url_for("queue.index"))
    if not isinstance(offer, dict):
        flash(refusal_text("nothing_to_undo", language), "error")
        return redirect(back)
    now = utcnow()
    event_ids = [int(i) for i in offer.get("events", []) if isinstance(i, int)][:50]
    try:
        with _rt().sessions() as s, s.begin():
            me = _me(s)
            scope = program_scope(s, me)
            events = s.scalars(select(AuditEvent).where(AuditEvent.id.in_(event_ids)).order_by(AuditEvent.id)).all()
            if not events:
                raise ActionRefused("nothing_to_undo")
            for event in events:
                escalation = s.get(Escalation, event.subject_id or 0, with_for_update=True)
                if escalation is None:
                    raise ActionRefused("nothing_to_undo")
                patient = s.get(Patient, escalation.patient_id)
                if patient is None or not may_see(scope, patient):
                    abort(403)
                undo(s, escalation, event, me.id, now)
    except ActionRefused as exc:
        flash(refusal_text(exc.code, language), "error")
        return redirect(back)
    flash(_("Undone."), "info")
    return redirect(back)


@bp.post("/undo/dismiss")
@roles_required()
def dismiss_undo() -> ResponseReturnValue:
    session.pop(UNDO_KEY, None)
    return redirect(safe_target(request.form.get("back"), url_for("queue.index")))


@bp.post("/account/timezone")
@roles_required()
def set_timezone() -> ResponseReturnValue:
    """The zone this user reads times in (one of :data:`STAFF_ZONES`); their sessions carry it."""
    chosen = request.form.get("timezone", "")
    if chosen not in STAFF_ZONES:
        abort(400)
    with _rt().sessions() as s, s.begin():
        me = _me(s)
        me.timezone = chosen
        audit_staff(s, "user.timezone", "user", me.id, timezone=chosen)
    from flask_login import login_user

    from app.web.security import StaffUser

    login_user(StaffUser(me.id, me.email, me.role, me.session_version, chosen))
    return redirect(safe_target(request.form.get("back"), url_for("queue.index")))


@bp.get("/patients/<int:patient_id>")
@roles_required()
def patient(patient_id: int) -> ResponseReturnValue:
    """The patient page (app/web/patient_page.py)."""
    from app.web.patient_page import render_patient

    return render_patient(patient_id)
