"""CSRF protection for every form: a per-session token, checked on every unsafe request from the UI.

Why hand-rolled: the rule is small (one token, constant-time compare) and the webhook and API
blueprints, which authenticate by signature and bearer token, must stay exempt.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session

EXEMPT_PREFIXES = ("/twilio/", "/api/")


def token() -> str:
    value = session.get("_csrf")
    if not isinstance(value, str):
        value = secrets.token_urlsafe(32)
        session["_csrf"] = value
    return value


def install(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = token

    @app.before_request
    def _check() -> None:
        if request.method in {"GET", "HEAD", "OPTIONS"} or request.path.startswith(EXEMPT_PREFIXES):
            return
        sent = request.form.get("_csrf") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("_csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            abort(400, description="The form expired. Reload the page and try again.")
