"""Patients: validation of what an enrolling system sends, and the idempotent upsert by MRN."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import String, select
from sqlalchemy.orm import Session

from app.i18n import SUPPORTED_LANGUAGES, normalise_language
from app.models import AuditEvent, Patient, Program, ThresholdChange
from app.patients.phones import InvalidPhone, to_e164
from app.patients.thresholds import threshold_problems

CHANNELS = ("sms", "voice")


#: Text fields bounded to their columns before any write, so SQLite (which does not enforce VARCHAR
#: lengths) refuses what PostgreSQL would (issue 8 item 2).
def _length(key: str) -> int:
    sql_type = Patient.__table__.c[key].type
    if not isinstance(sql_type, String) or sql_type.length is None:
        raise TypeError(f"patients.{key} has no length")
    return int(sql_type.length)


LENGTHS = {key: _length(key) for key in ("mrn", "given_name", "family_name", "timezone")}
THRESHOLD_LIMIT = 10_000.0


#: C0 controls, DEL and C1 controls (U+0000-U+001F, U+007F-U+009F).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


@functools.lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this machine knows (cached: a bulk import asks 100,000 times for
    the same few zones; the answer only changes with the tz database, i.e. a restart)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@dataclass
class ValidationFailed(Exception):
    fields: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.fields.items())


def clean_patient(data: Mapping[str, Any], known_thresholds: Collection[str] = ()) -> dict[str, Any]:
    """Check and normalise a patient payload (DESIGN §3); raises ValidationFailed listing every problem."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key in ("mrn", "given_name", "family_name", "phone"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            errors[key] = "required"
        elif _has_control(value):
            errors[key] = "must not contain control characters"
        elif (limit := LENGTHS.get(key)) and len(value.strip()) > limit:
            errors[key] = f"at most {limit} characters"
        else:
            clean[key] = value.strip()
    if "phone" in clean:
        try:
            clean["phone"] = to_e164(clean["phone"])
        except InvalidPhone as exc:
            errors["phone"] = str(exc)
    if data.get("caregiver_phone"):
        try:
            clean["caregiver_phone"] = to_e164(str(data["caregiver_phone"]))
        except InvalidPhone as exc:
            errors["caregiver_phone"] = str(exc)
    language = str(data.get("language") or "en")
    if (
        normalise_language(language) != language.split("-")[0].lower()
        or language.split("-")[0].lower() not in SUPPORTED_LANGUAGES
    ):
        errors["language"] = f"must be one of {', '.join(SUPPORTED_LANGUAGES)}"
    clean["language"] = normalise_language(language)
    timezone = str(data.get("timezone") or "America/New_York")
    if len(timezone) <= LENGTHS["timezone"] and _known_zone(timezone):
        clean["timezone"] = timezone
    else:
        errors["timezone"] = "must be an IANA time zone such as America/Chicago"
    channel = str(data.get("preferred_channel") or "sms")
    if channel not in CHANNELS:
        errors["preferred_channel"] = "must be sms or voice"
    clean["preferred_channel"] = channel
    conditions = data.get("conditions") or []
    if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
        errors["conditions"] = "must be a list of condition names"
    else:
        clean["conditions"] = [c.strip().lower() for c in conditions]
    if data.get("zip_code"):
        # US ZIP or ZIP+4: picks the program's local resource lists (content/resources.yaml).
        zip_code = str(data["zip_code"]).strip()
        if re.fullmatch(r"\d{5}(-\d{4})?", zip_code):
            clean["zip_code"] = zip_code
        else:
            errors["zip_code"] = "must be a US ZIP code like 60614 or 60614-1234"
    if data.get("birth_date"):
        try:
            clean["birth_date"] = dt.date.fromisoformat(str(data["birth_date"]))
        except ValueError:
            errors["birth_date"] = "must be a date like 1950-03-01"
    thresholds = data.get("thresholds")
    if thresholds is not None:
        # A patient's care plan may move a clinical threshold (e.g. weight_gain_1_day_lb: 2).
        if not isinstance(thresholds, dict) or not all(
            isinstance(k, str)
            and isinstance(v, int | float)
            and not isinstance(v, bool)
            and -THRESHOLD_LIMIT <= v <= THRESHOLD_LIMIT  # also refuses NaN
            for k, v in thresholds.items()
        ):
            errors["thresholds"] = f"must map threshold names to numbers within ±{THRESHOLD_LIMIT:g}"
        elif unknown := sorted(set(thresholds) - set(known_thresholds)):
            # A misspelt threshold would silently change nothing: refuse it.
            errors["thresholds"] = f"unknown thresholds: {', '.join(unknown)}"
        elif problems := threshold_problems(
            thresholds, known_thresholds if isinstance(known_thresholds, Mapping) else None
        ):
            # A value that switches an alert off (glucose 0, weight gain 9999) or crossed bands: refuse it.
            errors["thresholds"] = "; ".join(f"{k}: {v}" for k, v in problems.items())
        else:
            clean["thresholds"] = {k: float(v) for k, v in thresholds.items()}
    if errors:
        raise ValidationFailed(errors)
    return clean


def upsert_patient(
    session: Session,
    program: Program,
    data: Mapping[str, Any],
    *,
    actor: str,
    now: dt.datetime,
    known_thresholds: Collection[str] = (),
) -> tuple[Patient, bool]:
    """Create or update by MRN within the program; returns (patient, created)."""
    clean = clean_patient(data, known_thresholds)
    patient = session.scalars(
        select(Patient).where(Patient.program_id == program.id, Patient.mrn == clean["mrn"]).with_for_update()
    ).first()
    created = patient is None
    if patient is None:
        patient = Patient(
            program_id=program.id,
            mrn=clean["mrn"],
            consent_basis="program_enrollment",
            consent_recorded_at=now,
            consent_recorded_by=actor,
            created_at=now,
        )
        session.add(patient)
    phone_changed = not created and patient.phone != clean["phone"]
    thresholds = clean.pop("thresholds", None)
    for key, value in clean.items():
        setattr(patient, key, value)
    if phone_changed:
        patient.phone_invalid = False
        patient.sms_capable = True
    session.flush()
    if thresholds is not None:
        set_thresholds(session, patient, thresholds, actor, now)
    session.add(
        AuditEvent(
            action="patient.created" if created else "patient.updated",
            subject_type="patient",
            subject_id=patient.id,
            detail={"actor": actor},
            at=now,
        )
    )
    return patient, created


def set_thresholds(
    session: Session, patient: Patient, wanted: Mapping[str, float], actor: str, now: dt.datetime
) -> None:
    """Replace the patient's threshold overrides (the care plan's, read by the engine), writing one
    ``threshold_changes`` row per change: name, from, to (None: back to the flow's default), who, when."""
    current = {k: float(v) for k, v in (patient.thresholds or {}).items()}
    for name in sorted(set(current) | set(wanted)):
        old, new = current.get(name), wanted.get(name)
        if old != (None if new is None else float(new)):
            session.add(
                ThresholdChange(
                    patient_id=patient.id,
                    name=name,
                    old_value=old,
                    new_value=None if new is None else float(new),
                    changed_by=actor[:200],
                    changed_at=now,
                )
            )
    patient.thresholds = {k: float(v) for k, v in wanted.items()}


def patient_json(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id,
        "mrn": patient.mrn,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "phone": patient.phone,
        "language": patient.language,
        "timezone": patient.timezone,
        "preferred_channel": patient.preferred_channel,
        "conditions": list(patient.conditions or []),
        "caregiver_phone": patient.caregiver_phone,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "status": patient.status,
        "opted_out": patient.opted_out,
        "voice_opted_out": patient.voice_opted_out,
        "thresholds": dict(patient.thresholds or {}),
        "zip_code": patient.zip_code,
        # What the welcome flow asked (None: not asked yet).
        "preferred_time": patient.preferred_time,
        "interpreter_needed": patient.interpreter_needed,
        "caregiver_may_receive": patient.caregiver_may_receive,
    }


def default_program(session: Session) -> Program:
    program = session.scalars(select(Program).order_by(Program.id)).first()
    if program is None:
        raise LookupError("no program is set up: run `outreach seed-demo` or create one")
    return program
