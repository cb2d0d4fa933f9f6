"""The patient's consent record: on what basis the program may text or call, since when, who recorded
it, and for which channels.

Bases (FCC TCPA rules for health-care messages): ``express_written`` and ``express_oral`` consent let the
program set its own caps; ``health_care_exemption`` (FCC 15-72: no express consent, health-care messages
only) caps initiated outreach at 1 a day and 3 a week. Patients stored before the record existed carry
``program_enrollment``: they are read through their program's flag (``uses_healthcare_exemption``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.models import Patient, Program, TimelineEvent

EXPRESS_WRITTEN = "express_written"
EXPRESS_ORAL = "express_oral"
EXEMPTION = "health_care_exemption"
BASES = (EXPRESS_WRITTEN, EXPRESS_ORAL, EXEMPTION)
CHANNELS = ("sms", "voice")
LEGACY = "program_enrollment"


class InvalidConsent(ValueError):
    """A consent record that cannot be stored; ``fields`` names each problem."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def effective_basis(patient: Patient, program: Program) -> str:
    """The basis the caps follow: the patient's recorded one, or (legacy rows) the program's."""
    if patient.consent_basis in BASES:
        return str(patient.consent_basis)
    return EXEMPTION if program.uses_healthcare_exemption else EXPRESS_WRITTEN


#: The flow that asks for consent: the one outreach a program with ``consent_before_outreach`` sends before it.
WELCOME_FLOW = "welcome"


def has_express_consent(patient: Patient) -> bool:
    """True when the patient's own record holds express (written or oral) consent."""
    return patient.consent_basis in (EXPRESS_WRITTEN, EXPRESS_ORAL)


def awaiting_consent(patient: Patient, program: Program, flow_id: str) -> bool:
    """True when ``flow_id`` may not go out yet: the program sends nothing but the welcome before the
    patient's express consent (``Program.consent_before_outreach``), and the patient has not given it."""
    return bool(program.consent_before_outreach) and flow_id != WELCOME_FLOW and not has_express_consent(patient)


def is_capped(patient: Patient, program: Program) -> bool:
    """True when the 1-a-day / 3-a-week exemption caps apply to this patient (FCC 15-72)."""
    return effective_basis(patient, program) == EXEMPTION


def clean_consent(data: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    """Check a consent record ``{"basis", "date"?, "recorded_by"?, "channels"?}``; raises InvalidConsent.

    ``date`` defaults to ``today``, ``channels`` to ["sms", "voice"]; a date in the future is refused.
    """
    errors: dict[str, str] = {}
    basis = data.get("basis")
    if basis not in BASES:
        errors["consent.basis"] = f"must be one of {', '.join(BASES)}"
    raw_date = data.get("date")
    when = today
    if raw_date is not None:
        try:
            when = raw_date if isinstance(raw_date, dt.date) else dt.date.fromisoformat(str(raw_date))
        except ValueError:
            errors["consent.date"] = "must be a date like 2026-11-20"
        else:
            if when > today or when.year < 1900:
                errors["consent.date"] = "must not be in the future"
    channels = data.get("channels") or list(CHANNELS)
    if not isinstance(channels, list) or not channels or not all(c in CHANNELS for c in channels):
        errors["consent.channels"] = "must list sms and/or voice"
    recorded_by = data.get("recorded_by")
    if recorded_by is not None and (not isinstance(recorded_by, str) or len(recorded_by) > 200):
        errors["consent.recorded_by"] = "at most 200 characters"
    if errors:
        raise InvalidConsent(errors)
    return {
        "basis": basis,
        "date": when,
        "recorded_by": recorded_by,
        "channels": list(dict.fromkeys(channels)),
    }


def record_consent(
    session: Session, patient: Patient, record: Mapping[str, Any], *, actor: str, now: dt.datetime
) -> bool:
    """Store a cleaned record (see ``clean_consent``) on the patient; a timeline row says so. Returns
    False (and writes nothing) when the same record is already stored."""
    recorded_by = record.get("recorded_by") or actor
    same = (
        patient.consent_basis == record["basis"]
        and patient.consent_date == record["date"]
        and list(patient.consent_channels or []) == list(record["channels"])
    )
    if same:
        return False
    patient.consent_basis = record["basis"]
    patient.consent_date = record["date"]
    patient.consent_channels = list(record["channels"])
    patient.consent_recorded_by = recorded_by[:200]
    patient.consent_recorded_at = now
    session.flush()
    session.add(
        TimelineEvent(
            patient_id=patient.id,
            kind="consent_recorded",
            code=record["basis"],
            detail={"date": record["date"].isoformat(), "channels": list(record["channels"]), "by": recorded_by},
            at=now,
        )
    )
    return True


def consent_json(patient: Patient, program: Program) -> dict[str, Any]:
    """The record as the API shows it; ``basis`` is the effective one, ``recorded`` False for legacy rows."""
    recorded = patient.consent_basis in BASES
    return {
        "basis": effective_basis(patient, program),
        "recorded": recorded,
        "date": patient.consent_date.isoformat() if patient.consent_date else None,
        "recorded_by": patient.consent_recorded_by if recorded else None,
        "channels": list(patient.consent_channels or CHANNELS),
        "capped": is_capped(patient, program),
    }
