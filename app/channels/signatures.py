"""Twilio webhook signatures, checked against the public URL Twilio actually called.

Why rebuild the URL: behind a TLS-terminating proxy the app sees http://internal-host/...; the signed
URL is ``PUBLIC_BASE_URL`` + path + the raw query string (Werkzeug's ``request.url`` decodes it).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Request, abort, current_app, request
from twilio.request_validator import RequestValidator

F = TypeVar("F", bound=Callable[..., Any])


def signed_url(public_base_url: str, req: Request) -> str:
    query = req.query_string.decode("ascii", errors="replace")
    return public_base_url.rstrip("/") + req.path + (f"?{query}" if query else "")


def is_signed(auth_token: str, public_base_url: str, req: Request) -> bool:
    signature = req.headers.get("X-Twilio-Signature", "")
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(signed_url(public_base_url, req), req.form, signature))


def twilio_signed(view: F) -> F:
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        settings = current_app.extensions["outreach"].settings
        if not is_signed(settings.twilio_auth_token, settings.public_base_url, request):
            abort(403)
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]
