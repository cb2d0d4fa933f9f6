"""Finding a patient: by name, MRN or phone number, inside the viewer's programs (issue 11 item 4).

One query per page. A search text is read three ways at once and a patient matching any of them is found:

- name: every word of the text is in the given or family name (case-insensitive, any order: "garcia
  maria" finds Maria Garcia);
- MRN: the MRN starts with the text (case-insensitive);
- phone: when the text has at least 4 digits and nothing but digits and phone punctuation (``+ ( ) - . /``
  and spaces), its digits appear in the patient's or the caregiver's number as stored (E.164), so
  "(202) 555-0101", "202.555.0101", "+1 202 555 0101" and "0101" all find +12025550101.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.models import Patient

PAGE_SIZE = 50
MAX_QUERY = 100
_PHONE_TEXT = re.compile(r"^[\d\s+().\-/]+$")


@dataclass(frozen=True)
class SearchPage:
    patients: list[Patient]
    page: int
    has_next: bool
    query: str


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def phone_digits(text: str) -> str | None:
    """The digits of a phone-looking search text (at least 4), else None."""
    if not _PHONE_TEXT.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    return digits if len(digits) >= 4 else None


def search_query(text: str, scope: frozenset[int] | None) -> Select[Patient]:
    """Patients matching ``text`` (see the module docstring) in ``scope`` (None = every program), by
    family name, given name, id. An empty text lists every patient in scope."""
    query = select(Patient)
    if scope is not None:
        query = query.where(Patient.program_id.in_(scope))
    text = text.strip()[:MAX_QUERY]
    if text:
        ways = []
        words = [w for w in text.lower().split() if w][:5]
        if words:
            name = func.lower(Patient.given_name + " " + Patient.family_name)
            ways.append(and_(*(name.like(f"%{_escape_like(w)}%", escape="\\") for w in words)))
        ways.append(func.lower(Patient.mrn).like(f"{_escape_like(text.lower())}%", escape="\\"))
        digits = phone_digits(text)
        if digits:
            pattern = f"%{digits}%"
            ways.append(or_(Patient.phone.like(pattern), Patient.caregiver_phone.like(pattern)))
        query = query.where(or_(*ways))
    return query.order_by(func.lower(Patient.family_name), func.lower(Patient.given_name), Patient.id)


def search_patients(session: Session, text: str, scope: frozenset[int] | None, page: int = 1) -> SearchPage:
    """One page (``PAGE_SIZE`` patients, ``page`` from 1) of :func:`search_query`'s result."""
    page = max(1, min(page, 10_000))
    rows = list(session.scalars(search_query(text, scope).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all())
    return SearchPage(patients=rows[:PAGE_SIZE], page=page, has_next=len(rows) > PAGE_SIZE, query=text.strip())
