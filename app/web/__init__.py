"""The care-manager web UI (sign-in, the live escalation queue, patient pages, the admin's audit log) and,
in demo mode, the patient simulator."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from app.runtime import Runtime


class _UiSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions for the staff UI only: the webhooks (signed by Twilio) and the JSON
    API (bearer token) never use a session, so no cookie is read, verified or written for them (a webhook
    request skipped building the session's signing serializer, bench/README.md section 1)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


#: Paths that never carry a staff session.
SESSIONLESS_PREFIXES = ("/twilio/",)


def register_web(app: Flask, runtime: Runtime) -> None:
    from app.web import admin, auth, dashboard, patient_page, queue, security, simulator

    app.session_interface = _UiSessions()
    app.register_blueprint(auth.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(patient_page.bp)
    app.register_blueprint(dashboard.bp)
    if runtime.settings.demo_mode or runtime.settings.channel == "console":
        app.register_blueprint(simulator.bp)
    security.install(app, runtime)
    install_ui_language(app)
    app.extensions["outreach.error_page"] = error_page
    from flask_wtf.csrf import CSRFError

    app.register_error_handler(CSRFError, _csrf_refused)
    app.register_error_handler(429, _too_many)


def ui_language() -> str:
    """Staff pages in English or Spanish: ?lang= sticks in the session, else the browser's preference."""
    from flask import session

    from app.i18n import SUPPORTED_LANGUAGES

    chosen = request.args.get("lang")
    if chosen in SUPPORTED_LANGUAGES:
        session["lang"] = chosen
    stored = session.get("lang")
    if isinstance(stored, str) and stored in SUPPORTED_LANGUAGES:
        return stored
    return request.accept_languages.best_match(SUPPORTED_LANGUAGES) or "en"


def error_page(exc: HTTPException) -> tuple[str, int]:
    """A styled error page in the viewer's language, with the navigation (the UI's 400/403/404/405/429/500)."""
    from app.i18n import gettext_for

    _ = gettext_for(ui_language())
    status = exc.code or 500
    titles = {
        400: _("This request could not be used"),
        403: _("You do not have access to this page"),
        404: _("Page not found"),
        405: _("This action is not allowed here"),
        413: _("What you sent is too large"),
        429: _("Too many requests"),
    }
    texts = {
        400: _("Go back, reload the page and try again."),
        403: _("It belongs to a program or role you are not part of. Ask an administrator if you need it."),
        404: _("The link may be old. Use the menu to find what you need."),
        405: _("Use the buttons on the page."),
        413: _("Send less at once."),
        429: _("Wait a few minutes, then try again."),
    }
    title = titles.get(status, _("Something went wrong"))
    text = texts.get(status, _("Try again in a minute. If it keeps happening, tell your administrator."))
    return render_template("error.html", status=status, title=title, text=text), status


def _csrf_refused(exc: HTTPException) -> tuple[str, int]:
    from app.i18n import gettext_for

    _ = gettext_for(ui_language())
    title = _("The form expired")
    text = _("The form expired. Reload the page and try again.")
    return render_template("error.html", status=400, title=title, text=text), 400


def _too_many(exc: HTTPException) -> Any:
    return error_page(exc)


def install_ui_language(app: Flask) -> None:
    from app.i18n import gettext_for
    from app.web.labels import (
        STAFF_ZONES,
        ago_text,
        due_text,
        enrollment_status_label,
        finding_label,
        level_label,
        local_time,
        outcome_label,
        reason_label,
        status_label,
    )

    @app.context_processor
    def _language() -> dict[str, object]:
        lang = ui_language()
        return {
            "_": gettext_for(lang),
            "ui_lang": lang,
            "has_simulator": "simulator" in app.blueprints,
            "reason_label": lambda code: reason_label(code, lang),
            "outcome_label": lambda code: outcome_label(code, lang),
            "level_label": lambda code: level_label(code, lang),
            "status_label": lambda code: status_label(code, lang),
            "finding_label": lambda detail: finding_label(detail, lang),
            "due_text": lambda due, now: due_text(due, now, lang),
            "ago_text": lambda when, now: ago_text(when, now, lang),
            "local_time": local_time,
            "staff_zones": STAFF_ZONES,
            "enrollment_status_label": lambda code: enrollment_status_label(code, lang),
        }
