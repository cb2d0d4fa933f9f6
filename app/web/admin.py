"""The admin's audit log: who viewed or changed what, newest first, filtered by user, action or subject."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from app.models import AuditEvent, User, utcnow
from app.runtime import Runtime
from app.web.security import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE = 200


@bp.get("/audit")
@roles_required("admin")
def audit() -> ResponseReturnValue:
    rt: Runtime = current_app.extensions["outreach"]
    action = request.args.get("action", "").strip()[:64]
    subject_type = request.args.get("subject_type", "").strip()[:32]
    subject_id = request.args.get("subject_id", "").strip()
    email = request.args.get("user", "").strip().lower()[:254]
    before = request.args.get("before", "").strip()
    with rt.sessions() as s, s.begin():
        query = select(AuditEvent, User.email).outerjoin(User, User.id == AuditEvent.user_id)
        if action:
            query = query.where(AuditEvent.action.startswith(action, autoescape=True))
        if subject_type:
            query = query.where(AuditEvent.subject_type == subject_type)
        if subject_id.isdigit() and len(subject_id) < 10:
            query = query.where(AuditEvent.subject_id == int(subject_id))
        if email:
            query = query.where(User.email == email)
        if before.isdigit() and len(before) < 12:
            query = query.where(AuditEvent.id < int(before))
        rows = s.execute(query.order_by(AuditEvent.id.desc()).limit(PAGE)).all()
        s.add(
            AuditEvent(
                user_id=int(current_user.id),
                action="audit.viewed",
                subject_type="audit",
                subject_id=None,
                detail={"filters": {"action": action, "subject_type": subject_type, "subject_id": subject_id}},
                at=utcnow(),
            )
        )
        return render_template(
            "audit.html",
            rows=[(event, email_) for event, email_ in rows],
            filters={"action": action, "subject_type": subject_type, "subject_id": subject_id, "user": email},
            older=rows[-1][0].id if len(rows) == PAGE else None,
            now=utcnow(),
        )
