"""The UI's protections, each from a maintained library where one exists:

- sessions: Flask-Login; the cookie names ``"<user id>:<session_version>"`` and the loader refuses a
  version that is not the user's current one, so sign-out and a password change end every session issued
  before (server-side invalidation); a session unused for ``session_idle_minutes`` is signed out;
- CSRF: Flask-WTF's ``CSRFProtect`` on every unsafe request except the webhooks (Twilio signature) and
  the JSON API (bearer token);
- sign-in rate limits: Flask-Limiter, per IP and per account (Redis when ``REDIS_URL`` is set, memory in
  the demo), see ``app.web.auth``;
- security headers on every response, ``Cache-Control: no-store`` on every page and API answer (they
  carry PHI), and only same-site relative redirects (:func:`safe_target`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, abort, current_app, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, logout_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from app.models import AuditEvent, User, utcnow
from app.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

csrf = CSRFProtect()  # holds no per-app state that differs between apps: safe to share
CSRF_EXEMPT_PREFIXES = ("/twilio/", "/api/")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
#: The session key holding the last user-initiated request (epoch seconds); polling does not touch it.
SEEN_KEY = "_seen"
IDLE_KEY = "_idle_signed_out"


@dataclass(frozen=True)
class StaffUser:
    """The signed-in user as Flask-Login sees it: a detached copy of the row (no SQL session held)."""

    id: int
    email: str
    role: str
    session_version: int
    timezone: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @classmethod
    def of(cls, user: User) -> StaffUser:
        return cls(user.id, user.email, user.role, user.session_version, user.timezone)


def install(app: Flask, runtime: Runtime) -> None:
    settings = runtime.settings
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    # Checked by path, as before Flask-WTF: whatever blueprint serves /twilio/* (signature) or /api/*
    # (bearer token) is exempt, every other unsafe request needs the token.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)

    @app.before_request
    def _csrf() -> None:
        if request.method in {"GET", "HEAD", "OPTIONS", "TRACE"} or request.path.startswith(CSRF_EXEMPT_PREFIXES):
            return
        csrf.protect()

    # One limiter and one login manager per app (their callbacks hold this app's runtime).
    app.extensions["outreach.limiter"] = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_timeout": 2} if settings.redis_url else {},
        key_prefix="outreach-limiter",
        strategy="moving-window",
        headers_enabled=False,
        swallow_errors=True,
    )
    login_manager = LoginManager(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = ""

    @login_manager.user_loader  # type: ignore[untyped-decorator]
    def _load(identity: str) -> StaffUser | None:
        user_id, _, version = identity.partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        with runtime.sessions() as s:
            user = s.get(User, int(user_id))
            if user is None or not user.active or user.session_version != int(version):
                return None
            return StaffUser.of(user)

    idle = dt.timedelta(minutes=settings.session_idle_minutes).total_seconds()

    @app.before_request
    def _idle_timeout() -> None:
        if request.endpoint in {"static", None} or request.path.startswith(("/api/", "/twilio/")):
            return
        if not current_user.is_authenticated:
            return
        now = time.time()
        seen = session.get(SEEN_KEY)
        if isinstance(seen, int | float) and now - seen > idle:
            logout_user()
            session.clear()
            session[IDLE_KEY] = True  # the sign-in page says why
            return
        if request.headers.get("HX-Request") != "true":  # the queue's polling is not activity
            session[SEEN_KEY] = int(now)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure or settings.session_cookie_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if request.endpoint != "static":
            headers["Cache-Control"] = "no-store"
            headers.setdefault("Pragma", "no-cache")
        return response


def limiter() -> Limiter:
    found: Limiter = current_app.extensions["outreach.limiter"]
    return found


def safe_target(target: str | None, fallback: str) -> str:
    """A same-site relative path to redirect to, or ``fallback``.

    Refused: anything not starting with one ``/`` (``//evil``, ``/\\evil``, ``https://evil``), any
    backslash, whitespace or control character anywhere (browsers drop a tab, so ``/%09/evil.example``
    would become ``//evil.example``), and anything that parses with a scheme or a host."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    path = unquote(target.split("?", 1)[0])  # "/%09/evil.example" decodes to a tab too
    for text in (target, path):
        if text.startswith("//") or any(ch == "\\" or ord(ch) < 0x21 or ord(ch) == 0x7F or ch.isspace() for ch in text):
            return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def roles_required(*roles: str) -> Callable[[F], F]:
    """Signed in with one of ``roles`` (every role when none is named); 403 for another role. The role
    list is kept on the view so tests check that every UI view declares one."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                if request.headers.get("HX-Request") == "true":
                    # The live queue's poll after the session ended: send the whole tab to sign-in
                    # instead of swapping the sign-in page into the table.
                    response = Response(status=200)
                    response.headers["HX-Redirect"] = url_for("auth.login", next=url_for("queue.index"))
                    return response
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapped.allowed_roles = roles or ("care_manager", "supervisor", "admin")  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """Marks a UI view that needs no sign-in (the sign-in page itself)."""
    view.allowed_roles = ("anyone",)  # type: ignore[attr-defined]
    return view


def audit_staff(session: Session, action: str, subject_type: str, subject_id: int | None, **detail: Any) -> None:
    """One audit row for what the signed-in staff member saw or did (DESIGN §4.8); ``detail`` holds ids and
    codes, never message text."""
    session.add(
        AuditEvent(
            user_id=int(current_user.id),
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            detail=detail,
            at=utcnow(),
        )
    )
