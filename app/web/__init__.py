"""The care-manager web UI (login, escalation queue) and, in demo mode, the patient simulator."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

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
    from app.web import auth, csrf, queue, simulator

    app.session_interface = _UiSessions()
    csrf.install(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(queue.bp)
    if runtime.settings.demo_mode or runtime.settings.channel == "console":
        app.register_blueprint(simulator.bp)
    auth.install_user_loader(app)
    install_ui_language(app)


def ui_language() -> str:
    """Staff pages in English or Spanish: ?lang= sticks in the session, else the browser's preference."""
    from flask import request, session

    from app.i18n import SUPPORTED_LANGUAGES

    chosen = request.args.get("lang")
    if chosen in SUPPORTED_LANGUAGES:
        session["lang"] = chosen
    stored = session.get("lang")
    if isinstance(stored, str) and stored in SUPPORTED_LANGUAGES:
        return stored
    return request.accept_languages.best_match(SUPPORTED_LANGUAGES) or "en"


def install_ui_language(app: Flask) -> None:
    from app.i18n import gettext_for
    from app.web.labels import outcome_label, reason_label

    @app.context_processor
    def _language() -> dict[str, object]:
        lang = ui_language()
        return {
            "_": gettext_for(lang),
            "ui_lang": lang,
            "has_simulator": "simulator" in app.blueprints,
            "reason_label": lambda code: reason_label(code, lang),
            "outcome_label": lambda code: outcome_label(code, lang),
        }
