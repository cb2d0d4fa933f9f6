"""Sign-in for staff (Flask-Login sessions, scrypt hashes) with rate limits that give nothing away.

Every failed sign-in gets the same answer and about the same time: an unknown email still costs one scrypt
check (against a dummy hash), an inactive account answers like a wrong password, and a limit reached
answers "too many attempts" whether or not the account exists. Limits (Flask-Limiter's storage, moving
window), counted on failures only:

- per IP: 20 a minute and 100 an hour (one machine guessing many accounts);
- per account from one IP: 5 per 15 minutes (the old lockout, but an attacker elsewhere cannot lock a
  nurse out of her own machine);
- per account from anywhere: 30 an hour (a distributed guess at one account).
"""

from __future__ import annotations

import functools
import logging
import secrets

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from limits import RateLimitItem, parse
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.models import AuditEvent, Program, User, UserProgram, utcnow
from app.patients.access import ROLES
from app.runtime import Runtime
from app.web.security import IDLE_KEY, StaffUser, limiter, public, safe_target

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
MIN_PASSWORD = 12
PER_IP = (parse("20/minute"), parse("100/hour"))
PER_ACCOUNT_AND_IP = parse("5/15 minutes")
PER_ACCOUNT = parse("30/hour")

__all__ = ["ROLES", "StaffUser", "create_user", "hash_password"]


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches, checked when the email is unknown so that costs the same time."""
    return hash_password(secrets.token_urlsafe(24))


def create_user(
    rt: Runtime, email: str, password: str, role: str, *, program: str | None = None, team: str | None = None
) -> User:
    """Create a staff user, or reset an existing one's password and role (which ends their sessions).

    ``program`` (a slug) adds them to that program, in ``team`` if given (a user may belong to several
    programs: run it once per program). Raises ValueError for an unknown role or program, a short password,
    or a team without a program."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    if team is not None and program is None:
        raise ValueError("a team belongs to a program: give --program too")
    with rt.sessions() as s, s.begin():
        found_program = None
        if program is not None:
            found_program = s.scalars(select(Program).where(Program.slug == program)).first()
            if found_program is None:
                raise ValueError(f"no program {program!r}")
        user = s.scalars(select(User).where(func.lower(User.email) == email.lower())).first()
        if user is None:
            user = User(email=email.lower(), password_hash=hash_password(password), role=role, session_version=1)
            s.add(user)
        else:
            user.password_hash = hash_password(password)
            user.role = role
            user.session_version = (user.session_version or 1) + 1
            user.failed_logins = 0
            user.locked_until = None
        s.flush()
        if found_program is not None:
            membership = s.scalars(
                select(UserProgram).where(UserProgram.user_id == user.id, UserProgram.program_id == found_program.id)
            ).first()
            if membership is None:
                s.add(UserProgram(user_id=user.id, program_id=found_program.id, team=team))
            elif team is not None:
                membership.team = team
        detail = {"role": role, **({"program": program} if program else {}), **({"team": team} if team else {})}
        s.add(AuditEvent(user_id=user.id, action="user.saved", subject_type="user", subject_id=user.id, detail=detail))
        return user


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["outreach"]
    return rt


def _limits(email: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
    ip = get_remote_address() or "unknown"
    return [
        *[(item, ("login-ip", ip)) for item in PER_IP],
        (PER_ACCOUNT_AND_IP, ("login-account-ip", email, ip)),
        (PER_ACCOUNT, ("login-account", email)),
    ]


def _within_limits(email: str) -> bool:
    try:
        strategy = limiter().limiter
        return all(strategy.test(item, *keys) for item, keys in _limits(email))
    except Exception as exc:  # the limiter's store is down: sign-in still works, the password still counts
        log.warning("sign-in limits unavailable (%s)", type(exc).__name__)
        return True


def _count_failure(email: str) -> None:
    try:
        strategy = limiter().limiter
        for item, keys in _limits(email):
            strategy.hit(item, *keys)
    except Exception as exc:
        log.warning("sign-in limits unavailable (%s)", type(exc).__name__)


def _forget_failures(email: str) -> None:
    """A successful sign-in clears this account's count from this IP (not the IP's or the account's totals)."""
    try:
        strategy = limiter().limiter
        ip = get_remote_address() or "unknown"
        strategy.clear(PER_ACCOUNT_AND_IP, "login-account-ip", email, ip)
    except Exception as exc:
        log.warning("sign-in limits unavailable (%s)", type(exc).__name__)


def _audit(action: str, user_id: int | None) -> None:
    with _rt().sessions() as s, s.begin():
        s.add(AuditEvent(user_id=user_id, action=action, subject_type="user", subject_id=user_id, at=utcnow()))


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    target = safe_target(request.args.get("next"), url_for("queue.index"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(target)
        return render_template("login.html", error="idle" if session.pop(IDLE_KEY, False) else None)
    email = request.form.get("email", "").strip().lower()[:254]
    password = request.form.get("password", "")[:1024]
    with _rt().sessions() as s:
        user = s.scalars(select(User).where(User.email == email)).first() if email else None
        if user is not None:
            s.expunge(user)
    if not _within_limits(email):
        check_password_hash(_dummy_hash(), password)  # the same cost as any other failed attempt
        _audit("user.login_limited", user.id if user is not None else None)
        return render_template("login.html", error="locked"), 429
    matches = check_password_hash(user.password_hash if user is not None else _dummy_hash(), password)
    if user is None or not user.active or not matches:
        _count_failure(email)
        _audit("user.login_failed", user.id if user is not None else None)
        return render_template("login.html", error="invalid"), 401
    language = session.get("lang")
    session.clear()  # a fresh session: nothing from before sign-in carries over
    if isinstance(language, str):
        session["lang"] = language
    login_user(StaffUser.of(user))
    _forget_failures(email)
    _audit("user.login", user.id)
    return redirect(target)


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    """Signing out ends every session of this account (the session version moves on)."""
    if current_user.is_authenticated:
        user_id = int(current_user.id)
        with _rt().sessions() as s, s.begin():
            user = s.get(User, user_id, with_for_update=True)
            if user is not None:
                user.session_version = (user.session_version or 1) + 1
                s.add(AuditEvent(user_id=user_id, action="user.logout", subject_type="user", subject_id=user_id))
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
