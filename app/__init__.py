"""Outreach: scripted SMS and voice check-ins with patients between visits.

``create_app(config)`` is the Flask factory (DESIGN §3); ``build_runtime(settings)`` wires the parts
for web, worker and CLI alike. Nothing is read or connected at import time.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy import text

from app.config import Settings, settings_from_env
from app.db import install_commit_hooks, make_engine, make_session_factory
from app.runtime import Runtime, set_current

log = logging.getLogger(__name__)


def build_runtime(settings: Settings) -> Runtime:
    from app.channels.base import Channel
    from app.content import load_content
    from app.jobs import InProcessQueue, JobQueue, RqQueue

    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    install_commit_hooks(sessions)
    jobs: JobQueue = RqQueue(settings.redis_url) if settings.redis_url else InProcessQueue()
    channel: Channel
    if settings.channel == "twilio":
        from app.channels.twilio_sms import TwilioSmsChannel

        channel = TwilioSmsChannel(settings)
    elif settings.channel == "console":
        from app.channels.console import ConsoleChannel

        channel = ConsoleChannel(sessions)
    else:
        raise ValueError(f"OUTREACH_CHANNEL must be console or twilio, not {settings.channel!r}")
    from app.channels.rate_limit import build_rate_limiter

    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        jobs=jobs,
        channel=channel,
        content=load_content(settings.content_dir),
        rate_limiter=build_rate_limiter(settings),
    )
    set_current(runtime)
    return runtime


def configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Library loggers that would print request bodies or numbers stay quiet.
    for name in ("twilio", "twilio.http_client", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    configure_logging()
    settings = settings_from_env()
    flask_config: dict[str, Any] = {}
    if config:
        settings, flask_config = settings.with_config(config)
    runtime = build_runtime(settings)

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        MAX_CONTENT_LENGTH=1024 * 1024,
        TESTING=settings.testing,
    )
    app.config.update(flask_config)
    app.extensions["outreach"] = runtime

    from app.api.views import bp as api_bp
    from app.channels.webhooks import bp as twilio_bp
    from app.web import register_web

    app.register_blueprint(twilio_bp)
    app.register_blueprint(api_bp)
    register_web(app, runtime)
    from app.metrics import register_metrics

    register_metrics(app, runtime)

    from app.cli import register_commands

    register_commands(app)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """Liveness for load balancers. ``{"status", "database", "queue"}``:

        - ``database``: ``ok`` or ``error: <exception class>`` → ``status: error``, 503 (nothing works);
        - ``queue``: ``ok``, ``in-process`` (the demo) or ``degraded`` → ``status: degraded``, still 200:
          Redis is transport only, webhooks keep answering and committing, and the sweeper sends what
          waits in SQL once Redis is back.
        """
        checks: dict[str, str] = {}
        try:
            with runtime.engine.connect() as conn:
                conn.execute(text("select 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        ping = getattr(runtime.jobs, "ping", None)
        if ping is None:
            checks["queue"] = "in-process"
        else:
            try:
                checks["queue"] = "ok" if ping() else "degraded"
            except Exception as exc:
                log.warning("healthz: queue unreachable (%s)", type(exc).__name__)
                checks["queue"] = "degraded"
        if checks["database"] != "ok":
            return jsonify({"status": "error", **checks}), 503
        status = "degraded" if checks["queue"] == "degraded" else "ok"
        return jsonify({"status": status, **checks}), 200

    return app
