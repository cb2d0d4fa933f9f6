"""Twilio webhook signatures, checked against the public URL Twilio actually called.

Why rebuild the URL: behind a TLS-terminating proxy the app sees http://internal-host/...; the signed
URL is ``PUBLIC_BASE_URL`` + path + the raw query string (Werkzeug's ``request.url`` decodes it).

Fail closed: a request whose signature cannot even be checked (no or non-ASCII header, a body that does
not parse, a nameless multipart part, a file upload, a body over the size limit) is refused with 403
like a wrong signature, never answered 500 or 413. Twilio signs form fields only, so anything the
signature cannot cover (files, nameless parts) makes the request unsigned.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlparse

from flask import Request, abort, current_app, request
from twilio.request_validator import RequestValidator, add_port, compare, remove_port
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def signed_url(public_base_url: str, req: Request) -> str:
    query = req.query_string.decode("ascii", errors="replace")
    return public_base_url.rstrip("/") + req.path + (f"?{query}" if query else "")


class _FormValidator(RequestValidator):  # type: ignore[misc]  # twilio ships no type hints
    """Twilio's own validator (its ``compute_signature``: sorted names, sorted values, HMAC-SHA1), with the
    values read the way a Werkzeug ``MultiDict`` gives them: the stock ``get_values`` first tries
    ``getall`` and catches the ``AttributeError``, one raised exception per form field per request."""

    def get_values(self, param_dict: Any, param_name: str) -> Any:
        return param_dict.getlist(param_name)


@functools.lru_cache(maxsize=8)
def _validator(auth_token: str) -> _FormValidator:
    """One validator per token and process (it only holds the token's bytes)."""
    return _FormValidator(auth_token)


@functools.lru_cache(maxsize=64)
def _url_forms(url: str) -> tuple[str, str]:
    """The URL without and with its default port: Twilio signs either (``RequestValidator.validate``)."""
    parsed = urlparse(url)
    return remove_port(parsed), add_port(parsed)


def form_signature_valid(auth_token: str, url: str, form: Any, signature: str) -> bool:
    """``RequestValidator.validate`` for a form body (``form``: a Werkzeug ``MultiDict``), computed once
    instead of twice when the first form of the URL matches (the stock method always computes both): valid
    when either form matches. ``url`` is the public URL Twilio called (:func:`signed_url`)."""
    validator = _validator(auth_token)
    return any(compare(validator.compute_signature(candidate, form), signature) for candidate in _url_forms(url))


def is_signed(auth_token: str, public_base_url: str, req: Request) -> bool:
    """True only for a request signed with ``auth_token`` over the public URL and its form fields.

    Never raises for anything a client can send: every unreadable request is simply not signed.
    """
    signature = req.headers.get("X-Twilio-Signature", "")
    if not auth_token or not signature or not signature.isascii():
        return False
    try:
        form = req.form
        files = req.files
    except (HTTPException, ValueError, UnicodeError) as exc:
        # A body that does not parse or is too big: nothing Twilio would send.
        log.warning("unreadable webhook body on %s: %s", req.path, type(exc).__name__)
        return False
    if files or any(not isinstance(key, str) or not key for key in form):
        return False
    try:
        return form_signature_valid(auth_token, signed_url(public_base_url, req), form, signature)
    except Exception as exc:  # fail closed: a check that breaks is a failed check, never a 500
        log.warning("webhook signature check failed on %s: %s", req.path, type(exc).__name__)
        return False


def twilio_signed(view: F) -> F:
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        settings = current_app.extensions["outreach"].settings
        if not is_signed(settings.twilio_auth_token, settings.public_base_url, request):
            abort(403)
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]
