"""Sign-in for care managers: scrypt password hashes, lockout after repeated failures, audit events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.models import AuditEvent, User, utcnow
from app.runtime import Runtime

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])
ROLES = ("care_manager", "supervisor", "admin")
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def create_user(rt: Runtime, email: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    with rt.sessions() as s, s.begin():
        user = s.scalars(select(User).where(func.lower(User.email) == email.lower())).first()
        if user is None:
            user = User(email=email.lower(), password_hash=hash_password(password), role=role)
            s.add(user)
        else:
            user.password_hash = hash_password(password)
            user.role = role
        s.flush()
        s.add(AuditEvent(user_id=user.id, action="user.saved", subject_type="user", subject_id=user.id))
        return user


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def install_user_loader(app: Flask) -> None:
    @app.before_request
    def _load_user() -> None:
        g.user = None
        user_id = session.get("user_id")
        if isinstance(user_id, int):
            rt: Runtime = current_app.extensions["outreach"]
            with rt.sessions() as s:
                user = s.get(User, user_id)
                if user is not None and user.active:
                    g.user = user


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    rt: Runtime = current_app.extensions["outreach"]
    error = None
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        now = utcnow()
        with rt.sessions() as s, s.begin():
            user = s.scalars(select(User).where(User.email == email)).first()
            if user is not None and user.locked_until and user.locked_until > now:
                error = "locked"
                s.add(
                    AuditEvent(
                        user_id=user.id, action="user.login_locked", subject_type="user", subject_id=user.id, at=now
                    )
                )
            elif user is not None and user.active and check_password_hash(user.password_hash, password):
                user.failed_logins = 0
                user.locked_until = None
                s.add(AuditEvent(user_id=user.id, action="user.login", subject_type="user", subject_id=user.id, at=now))
                session.clear()
                session["user_id"] = user.id
                target = request.args.get("next", "")
                return redirect(
                    target if target.startswith("/") and not target.startswith("//") else url_for("queue.index")
                )
            else:
                error = "invalid"
                if user is not None:
                    user.failed_logins += 1
                    if user.failed_logins >= MAX_FAILURES:
                        user.locked_until = now + LOCKOUT
                        user.failed_logins = 0
                    s.add(
                        AuditEvent(
                            user_id=user.id, action="user.login_failed", subject_type="user", subject_id=user.id, at=now
                        )
                    )
    return render_template("login.html", error=error)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("auth.login"))
