"""Caregivers (proxies) with the patient's permission and a scope (issue 12 item 6).

A caregiver is a phone the patient allowed, with what it may do (:class:`~app.models.CaregiverScope`):
``reminders`` (a copy of each reminder, with no more than the program's first-name-only texts say),
``answer`` (answer the patient's check-ins on their behalf: the answers record who gave them) and
``escalations`` (the 911 / 988 advice the patient gets when a check-in finds an emergency). The permission
is a consent record: how it was given (``basis``), who recorded it and when; it is on the patient's timeline.

STOP from a caregiver's number stops texts to that caregiver only (the patient's outreach goes on).

The welcome flow (issue 12 item 1) calls :func:`grant_caregiver_permission` when the patient says a
caregiver may receive messages; staff call it through ``POST /api/v1/patients/<id>/caregivers``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Caregiver, CaregiverScope, Patient, TimelineEvent
from app.patients.phones import InvalidPhone, mask, to_e164

SCOPES = frozenset(s.value for s in CaregiverScope)
#: How the patient's permission was given: they said yes by text (the welcome), aloud to staff, or signed.
BASES = frozenset({"patient_text", "verbal", "written"})
LANGUAGES = frozenset({"en", "es"})


class InvalidCaregiver(ValueError):
    def __init__(self, fields: dict[str, str]):
        super().__init__("invalid caregiver")
        self.fields = fields


def clean_caregiver(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a caregiver as the API receives it: ``phone`` (any US format → E.164), ``scopes`` (a
    non-empty list of ``reminders`` / ``answer`` / ``escalations``), ``consent_basis`` (``patient_text``,
    ``verbal``, ``written``), optional ``name`` (≤ 100), ``relationship`` (≤ 40), ``language`` (en | es),
    ``recorded_by`` (≤ 200). Raises InvalidCaregiver with a message per bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    try:
        clean["phone"] = to_e164(str(data.get("phone") or ""))
    except InvalidPhone as exc:
        errors["phone"] = str(exc)
    scopes = data.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s in SCOPES for s in scopes):
        errors["scopes"] = f"a non-empty list of: {', '.join(sorted(SCOPES))}"
    else:
        clean["scopes"] = sorted(set(scopes))
    basis = data.get("consent_basis")
    if basis not in BASES:
        errors["consent_basis"] = f"one of: {', '.join(sorted(BASES))}"
    else:
        clean["basis"] = basis
    for key, limit in (("name", 100), ("relationship", 40), ("recorded_by", 200)):
        value = data.get(key)
        if value is None or value == "":
            clean[key] = None
        elif not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
            errors[key] = f"text of at most {limit} characters"
        else:
            clean[key] = value.strip()
    language = data.get("language") or "en"
    if language not in LANGUAGES:
        errors["language"] = "en or es"
    clean["language"] = language
    if errors:
        raise InvalidCaregiver(errors)
    return clean


def grant_caregiver_permission(
    session: Session,
    patient: Patient,
    *,
    phone: str,
    scopes: Iterable[str],
    basis: str,
    recorded_by: str,
    now: dt.datetime,
    name: str | None = None,
    relationship: str | None = None,
    language: str | None = None,
) -> Caregiver:
    """Record the patient's permission for a caregiver phone (E.164) with ``scopes``; the same phone again
    updates its scopes and consent (and lifts a revocation, never a caregiver's own STOP). A timeline row
    ``caregiver`` / ``permission_granted`` keeps who recorded it and when. Raises ValueError for an unknown
    scope or basis (callers with raw input use :func:`clean_caregiver` first)."""
    wanted = sorted(set(scopes))
    if not wanted or not set(wanted) <= SCOPES or basis not in BASES:
        raise ValueError("unknown caregiver scope or consent basis")
    caregiver = session.scalars(
        select(Caregiver).where(Caregiver.patient_id == patient.id, Caregiver.phone == phone)
    ).first()
    if caregiver is None:
        caregiver = Caregiver(patient_id=patient.id, phone=phone, created_at=now, opted_out=False)
        session.add(caregiver)
    caregiver.scopes = wanted
    caregiver.consent_basis = basis
    caregiver.consent_recorded_by = recorded_by[:200]
    caregiver.consent_recorded_at = now
    caregiver.revoked_at = None
    caregiver.name = name if name is not None else caregiver.name
    caregiver.relationship_to_patient = relationship if relationship is not None else caregiver.relationship_to_patient
    caregiver.language = language or caregiver.language or patient.language
    if not patient.caregiver_phone:
        patient.caregiver_phone = phone
    session.flush()
    session.add(
        TimelineEvent(
            patient_id=patient.id,
            kind="caregiver",
            code="permission_granted",
            detail={"caregiver_id": caregiver.id, "scopes": wanted, "basis": basis, "by": recorded_by[:200]},
            at=now,
        )
    )
    return caregiver


def revoke_caregiver(session: Session, caregiver: Caregiver, *, recorded_by: str, now: dt.datetime) -> None:
    """The patient withdrew the permission: nothing more goes to this caregiver or is taken from them."""
    caregiver.revoked_at = now
    session.add(
        TimelineEvent(
            patient_id=caregiver.patient_id,
            kind="caregiver",
            code="permission_revoked",
            detail={"caregiver_id": caregiver.id, "by": recorded_by[:200]},
            at=now,
        )
    )


def caregivers_of(session: Session, patient_id: int, scope: str | None = None) -> list[Caregiver]:
    """The patient's active caregivers (not revoked, not opted out), with ``scope`` if given."""
    rows = session.scalars(select(Caregiver).where(Caregiver.patient_id == patient_id).order_by(Caregiver.id)).all()
    return [c for c in rows if c.active and (scope is None or scope in (c.scopes or []))]


def caregivers_at(session: Session, phone: str) -> list[Caregiver]:
    """Every caregiver row of this phone not revoked (opted-out ones too: their START must be found)."""
    rows = session.scalars(select(Caregiver).where(Caregiver.phone == phone).order_by(Caregiver.id)).all()
    return [c for c in rows if c.revoked_at is None]


def caregiver_json(caregiver: Caregiver) -> dict[str, Any]:
    return {
        "id": caregiver.id,
        "patient_id": caregiver.patient_id,
        "phone": caregiver.phone,
        "name": caregiver.name,
        "relationship": caregiver.relationship_to_patient,
        "language": caregiver.language,
        "scopes": list(caregiver.scopes or []),
        "consent": {
            "basis": caregiver.consent_basis,
            "recorded_by": caregiver.consent_recorded_by,
            "recorded_at": caregiver.consent_recorded_at.isoformat(),
        },
        "opted_out": caregiver.opted_out,
        "revoked": caregiver.revoked_at is not None,
    }


# ------------------------------------------------------------------------------ routing rules (pure)
@dataclass(frozen=True)
class CaregiverRoute:
    """What a text from a caregiver's number does: ``answer`` (the patient's active check-in, recorded as
    given by the caregiver), ``inbox`` (the patient's inbox, marked as from the caregiver) or ``ignored``
    (the caregiver opted out: kept for staff, nothing answered)."""

    kind: str
    caregiver_id: int
    patient_id: int


def caregiver_route(
    caregivers: Sequence[tuple[int, int, frozenset[str], bool]], conversations: Mapping[int, bool]
) -> CaregiverRoute | None:
    """Decide one caregiver text. ``caregivers``: (caregiver id, patient id, scopes, opted out) for the
    number; ``conversations``: patient id → has an active check-in. The first caregiver allowed to answer
    whose patient is in a check-in answers it; else the first active caregiver's patient's inbox; None for
    no caregiver. (Two patients of one number, both in a check-in, is the shared-phone case: the caller
    asks which person is answering before calling this.)"""
    active = [c for c in caregivers if not c[3]]
    for caregiver_id, patient_id, scopes, _ in active:
        if "answer" in scopes and conversations.get(patient_id):
            return CaregiverRoute("answer", caregiver_id, patient_id)
    if active:
        return CaregiverRoute("inbox", active[0][0], active[0][1])
    if caregivers:
        return CaregiverRoute("ignored", caregivers[0][0], caregivers[0][1])
    return None


def describe(caregiver: Caregiver) -> str:
    """For logs: the caregiver's id and masked phone, never a name."""
    return f"caregiver id={caregiver.id} phone={mask(caregiver.phone)}"
