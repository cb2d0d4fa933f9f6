"""Outreach: scripted SMS and voice check-ins with patients between visits.

``create_app(config)`` is the Flask factory (DESIGN §3) and the only thing this package module holds; the
parts it wires are built by ``app.bootstrap.build_runtime`` (the composition root, shared with the worker
and the CLI). Nothing is read or connected at import time.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy import text

from app.bootstrap import build_runtime, configure_logging
from app.config import settings_from_env

log = logging.getLogger(__name__)


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
    if settings.trusted_proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)  # type: ignore[method-assign]

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

    from app.channels.sms_fast_path import InboundSmsFastPath

    # Inside ProxyFix (it only touches the client's address and scheme, which the signature does not use).
    app.wsgi_app = InboundSmsFastPath(app.wsgi_app, runtime)  # type: ignore[method-assign]

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
