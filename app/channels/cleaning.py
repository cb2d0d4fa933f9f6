"""Twilio's form fields cleaned at the edge, once, before anything is written (issue 8, item 2).

Why here: PostgreSQL refuses a NUL byte in text and a value longer than its column, SQLite stores either,
so the demo and production disagreed and a hostile or broken request became a 500 that Twilio does not
retry. Every value a webhook writes goes through one of these functions first, so the same limits hold on
both databases (the columns' widths in app/models.py are the limits).

Rules:

- Free text (``Body``): control characters stripped (C0 and C1, DEL, lone surrogates), newlines, carriage
  returns and tabs kept; cut to the column's length.
- Short fields (``From``, ``To``, ``MessageStatus``, ``ErrorCode``): the same stripping, then cut to their
  columns' widths; they are data about the message, never identifiers.
- Identifiers (``MessageSid``): never cut or changed, since a changed id would match another message. A SID
  longer than the column or with a control or space character is refused (:class:`Refused`, the webhook
  answers 400) and logged by its hash (:func:`digest`), never its value.
- Our own ids in query strings (``?mid=``): ASCII digits only, within PostgreSQL's ``integer``; anything
  else is "no id" (``"²"``, ``"-1"``, ``"1e3"``, 40 digits).
"""

from __future__ import annotations

import hashlib
import re

#: Characters no text field keeps: C0 controls except tab, newline and carriage return; DEL; C1 controls;
#: lone surrogates (not encodable as UTF-8, so no driver can send them).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: Widths of the columns these values go to (app/models.py Message).
SID_MAX = 64
PHONE_MAX = 20
STATUS_MAX = 20
ERROR_CODE_MAX = 64
#: Twilio's own limit for one inbound text (10 segments of 160): also what ``messages.body`` keeps.
BODY_MAX = 1600
#: PostgreSQL ``integer``: an id past this matches no row and must not reach a comparison as a bigint.
ID_MAX = 2**31 - 1
_DIGITS = re.compile("[0-9]{1,10}")


class Refused(ValueError):
    """A value that cannot be stored as it is and must not be changed (an identifier): the request is
    refused (HTTP 400). ``field`` names the form field; ``digest`` is the value's hash for the log."""

    def __init__(self, field: str, why: str, digest: str):
        super().__init__(f"{field} refused: {why} (sha256 {digest})")
        self.field = field
        self.why = why
        self.digest = digest


def digest(value: str) -> str:
    """The first 12 hex digits of the value's SHA-256: enough to find the request in Twilio's logs, and
    nothing of the value itself."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def clean_text(value: str, limit: int) -> str:
    """``value`` without control characters (tab, newline and carriage return kept), cut to ``limit``
    characters. Never raises."""
    return _CONTROL.sub("", value)[:limit]


def provider_sid(value: str, field: str = "MessageSid") -> str:
    """A provider's message SID as given, or :class:`Refused` when it is longer than ``SID_MAX`` or holds
    a control or white-space character. ``""`` stays ``""`` (the caller decides what a missing SID means)."""
    if len(value) > SID_MAX:
        raise Refused(field, f"longer than {SID_MAX}", digest(value))
    if value and (not value.isprintable() or any(c.isspace() for c in value)):
        raise Refused(field, "control or space character", digest(value))
    return value


def row_id(value: str | None) -> int | None:
    """One of our own row ids from a query string: 1 to 10 ASCII digits, 1 ≤ id ≤ 2**31 - 1, else None."""
    if value is None or not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if 0 < number <= ID_MAX else None
