"""``outreach import-patients FILE.csv``: patients (and, with ``--campaign``, their enrollments) in bulk.

Every row is checked as the API checks a patient (``app.patients.service.clean_patient``: phone with
``phonenumbers``, IANA time zone, language, dates, MRN length and characters) and gets one line in the
report: ``created``, ``updated``, ``unchanged`` or ``failed`` with each bad field. An MRN that appears
twice in one file fails on its second row (which of the two is right cannot be told). A bad row never
stops the others.

Idempotent: running the same file again finds every patient unchanged and every enrollment already in
place with the same anchor, and writes nothing. Rows are written in batches (``BATCH_ROWS`` per
transaction: one SELECT of the batch's MRNs as one array, COPY of the new patients with ids taken from
the sequence, one executemany UPDATE of the changed ones), not a transaction per row. Validation is per
row on plain dicts (no ORM objects); plain US numbers take ``to_e164``'s fast path. New enrollments go
through ``app.scheduling.bulk.enroll_new`` (one insert for the batch's enrollments, COPY for their
occurrences; the same rows the scheduler's ``enroll`` writes, tested), a moved anchor through ``enroll``.

CSV columns: DESIGN §3's patient fields (``mrn, given_name, family_name, phone, language, timezone,
preferred_channel, conditions`` (``;``-separated)``, caregiver_phone, birth_date``); the anchor column
named by ``--anchor-column`` (YYYY-MM-DD). Absent columns keep a known patient's values.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, any_, bindparam, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from app.db import insert_many
from app.models import AuditEvent, Enrollment, Patient, Program
from app.patients.service import ValidationFailed, clean_patient
from app.programs.enrollment import event_row, note_event
from app.programs.programs import campaign_allowed
from app.runtime import Runtime
from app.scheduling.bulk import NewEnrollment, enroll_new
from app.scheduling.enrollments import ConsentRequired, enroll, note

BATCH_ROWS = 2000
#: Columns compared to decide whether a known patient changed.
COMPARED = (
    "given_name",
    "family_name",
    "phone",
    "language",
    "timezone",
    "preferred_channel",
    "conditions",
    "caregiver_phone",
    "birth_date",
    "thresholds",
)


@dataclass
class RowResult:
    line: int
    mrn: str
    result: str  # created | updated | unchanged | failed
    problems: dict[str, str] = field(default_factory=dict)
    enrollment: str = ""  # "", "enrolled", "moved", "unchanged", "needs express consent"

    def describe(self) -> str:
        if self.problems:
            return "; ".join(f"{k}: {v}" for k, v in self.problems.items())
        return self.result + (f", enrollment {self.enrollment}" if self.enrollment else "")


@dataclass
class ImportTotals:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    enrolled: int = 0
    needs_consent: int = 0

    def add(self, row: RowResult) -> None:
        setattr(self, row.result, getattr(self, row.result) + 1)
        if row.enrollment in ("enrolled", "moved"):
            self.enrolled += 1
        elif row.enrollment == NEEDS_CONSENT:
            self.needs_consent += 1

    def summary(self) -> str:
        text = (
            f"created={self.created} updated={self.updated} unchanged={self.unchanged} failed={self.failed}"
            f" enrolled={self.enrolled}"
        )
        return text + (f" needs_consent={self.needs_consent}" if self.needs_consent else "")


#: A row whose patient was imported but not enrolled: the campaign sends more than the health-care
#: exemption allows (1 a day, 3 a week) and no express consent is recorded.
NEEDS_CONSENT = "needs express consent"


class ImportRefused(ValueError):
    """The whole file cannot be imported (no such campaign, a missing column): nothing was written."""


def count_rows(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, {k: (v or "") for k, v in row.items() if k is not None}


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def import_patients(
    rt: Runtime,
    path: Path,
    program: Program,
    *,
    campaign: str | None = None,
    anchor_column: str | None = None,
    anchor: dt.date | None = None,
    actor: str,
    on_row: Callable[[RowResult], None] | None = None,
) -> ImportTotals:
    """Import ``path`` into ``program``; ``on_row`` sees every row's result as it is decided (for the
    report and the progress bar). Raises ImportRefused before any write when the file cannot work."""
    header = _header(path)
    missing = [c for c in ("mrn", "given_name", "family_name", "phone") if c not in header]
    if missing:
        raise ImportRefused(f"missing columns: {', '.join(missing)}")
    if campaign is not None:
        found = rt.content.campaign(campaign)  # an id or one of its aliases (post-discharge-tcm)
        if found is None:
            raise ImportRefused(f"unknown campaign '{campaign}' (known: {', '.join(sorted(rt.content.campaigns))})")
        campaign = found.id
        if not campaign_allowed(program, campaign):
            raise ImportRefused(f"program '{program.slug}' does not run campaign '{campaign}'")
    if anchor_column and anchor_column not in header:
        raise ImportRefused(f"no column '{anchor_column}'")
    totals = ImportTotals()
    seen: dict[str, int] = {}
    batch: list[tuple[int, dict[str, str]]] = []
    known = rt.content.threshold_defaults()

    def flush() -> None:
        for result in _import_batch(rt, program, batch, header, known, campaign, anchor_column, anchor, actor, seen):
            totals.add(result)
            if on_row is not None:
                on_row(result)
        batch.clear()

    for line, row in _rows(path):
        batch.append((line, row))
        if len(batch) >= BATCH_ROWS:
            flush()
    flush()
    return totals


def _clean_row(
    row: dict[str, str], known: Mapping[str, float], anchor_column: str | None
) -> tuple[dict[str, Any], dt.date | None]:
    data: dict[str, Any] = dict(row)
    data["conditions"] = [c.strip() for c in (row.get("conditions") or "").split(";") if c.strip()]
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    try:
        clean = clean_patient(data, known)
    except ValidationFailed as exc:
        problems.update(exc.fields)
    row_anchor: dt.date | None = None
    if anchor_column:
        text = (row.get(anchor_column) or "").strip()
        try:
            row_anchor = dt.date.fromisoformat(text)
            if not dt.date(1900, 1, 1) <= row_anchor <= dt.date(2199, 12, 31):
                raise ValueError(text)
        except ValueError:
            problems[anchor_column] = "must be a date like 2026-11-20"
    if problems:
        raise ValidationFailed(problems)
    return clean, row_anchor


def _import_batch(
    rt: Runtime,
    program: Program,
    batch: list[tuple[int, dict[str, str]]],
    header: list[str],
    known: Mapping[str, float],
    campaign: str | None,
    anchor_column: str | None,
    anchor: dt.date | None,
    actor: str,
    seen: dict[str, int],
) -> list[RowResult]:
    if not batch:
        return []
    now = rt.now()
    results: list[RowResult] = []
    valid: list[tuple[RowResult, dict[str, Any], dt.date | None]] = []
    for line, row in batch:
        mrn = (row.get("mrn") or "").strip()
        result = RowResult(line, mrn[:64], "failed")
        try:
            clean, row_anchor = _clean_row(row, known, anchor_column)
        except ValidationFailed as exc:
            result.problems = dict(exc.fields)
            results.append(result)
            continue
        if clean["mrn"] in seen:
            result.problems = {"mrn": f"repeats line {seen[clean['mrn']]}"}
            results.append(result)
            continue
        seen[clean["mrn"]] = line
        results.append(result)
        valid.append((result, clean, row_anchor))
    present = set(header)
    with rt.sessions() as session, session.begin():
        existing = _known_patients(session, program, [c["mrn"] for _, c, _ in valid])
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        for result, clean, _anchor in valid:
            patient = existing.get(clean["mrn"])
            if patient is None:
                inserts.append(
                    {
                        "program_id": program.id,
                        "consent_basis": "program_enrollment",
                        "consent_recorded_at": now,
                        "consent_recorded_by": actor,
                        "created_at": now,
                        "updated_at": now,
                        "conditions": [],
                        "thresholds": {},
                        **clean,
                    }
                )
                result.result = "created"
                continue
            changes = {
                key: clean[key] for key in COMPARED if key in clean and key in present and patient[key] != clean[key]
            }
            if "conditions" in changes and list(patient["conditions"] or []) == clean["conditions"]:
                changes.pop("conditions")
            if changes:
                if "phone" in changes:
                    changes["phone_invalid"] = False
                updates.append({"id": patient["id"], "updated_at": now, **changes})
                audits.append(_audit("patient.updated", patient["id"], actor, now))
                result.result = "updated"
            else:
                result.result = "unchanged"
        if inserts:
            for patient_id in _insert_patients(session, program, inserts):
                audits.append(_audit("patient.created", patient_id, actor, now))
        if updates:
            session.execute(update(Patient), updates)
        if audits:
            insert_many(session, AuditEvent.__table__, audits)
        if campaign is not None:
            _enroll_batch(session, rt, program, campaign, valid, anchor, actor, now)
    return results


def _known_patients(session: Session, program: Program, mrns: list[str]) -> dict[str, RowMapping]:
    """The program's patients with these MRNs (id and the compared columns, no ORM objects), locked
    for this batch's transaction. One array parameter on PostgreSQL instead of thousands of binds."""
    if not mrns:
        return {}
    columns = [Patient.id, Patient.mrn, *(getattr(Patient, key) for key in COMPARED)]
    query = select(*columns).where(Patient.program_id == program.id)
    if session.connection().dialect.name == "postgresql":
        query = query.where(Patient.mrn == any_(bindparam("mrns", mrns, type_=postgresql.ARRAY(String))))
    else:
        query = query.where(Patient.mrn.in_(mrns))
    return {row.mrn: row._mapping for row in session.execute(query.with_for_update())}


def _insert_patients(session: Session, program: Program, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new patients (every column given, defaults filled) and return their ids."""
    table = Patient.__table__
    full: list[dict[str, Any]] = []
    for row in rows:
        values = dict(row)
        for column in table.columns:
            if column.name == "id" or column.name in values:
                continue
            default = column.default
            if default is None:
                values[column.name] = None
            elif default.is_callable:
                values[column.name] = default.arg(None)
            else:
                values[column.name] = default.arg
        full.append(values)
    if session.connection().dialect.name == "postgresql":
        # The ids come from the table's own sequence up front, so the COPY carries them and no query
        # has to find the new rows again.
        ids = list(
            session.scalars(
                text("SELECT nextval(pg_get_serial_sequence('patients', 'id')) FROM generate_series(1, :n)"),
                {"n": len(full)},
            )
        )
        for values, patient_id in zip(full, ids, strict=True):
            values["id"] = patient_id
        insert_many(session, table, full)
        return ids
    insert_many(session, table, full)
    return list(
        session.scalars(
            select(Patient.id).where(Patient.program_id == program.id, Patient.mrn.in_([r["mrn"] for r in rows]))
        ).all()
    )


def _audit(action: str, patient_id: int, actor: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "action": action,
        "subject_type": "patient",
        "subject_id": patient_id,
        "detail": {"actor": actor},
        "at": now,
    }


def _enroll_batch(
    session: Session,
    rt: Runtime,
    program: Program,
    campaign: str,
    valid: list[tuple[RowResult, dict[str, Any], dt.date | None]],
    anchor: dt.date | None,
    actor: str,
    now: dt.datetime,
) -> None:
    patients = {
        p.mrn: p
        for p in session.scalars(
            select(Patient).where(Patient.program_id == program.id, Patient.mrn.in_([c["mrn"] for _, c, _ in valid]))
        ).all()
    }
    ids = (campaign, *rt.content.campaigns[campaign].aliases)
    current: dict[int, Enrollment] = {}
    others: set[int] = set()  # an active enrollment under an old id (an alias) of the campaign
    for e in session.scalars(
        select(Enrollment).where(
            Enrollment.patient_id.in_([p.id for p in patients.values()]),
            Enrollment.campaign.in_(ids),
            Enrollment.status == "active",
        )
    ):
        if e.campaign == campaign:
            current.setdefault(e.patient_id, e)
        else:
            others.add(e.patient_id)
    fresh: list[tuple[RowResult, NewEnrollment]] = []
    for result, clean, row_anchor in valid:
        patient = patients[clean["mrn"]]
        # No anchor: the patient's own local today (not the UTC date).
        day = row_anchor or anchor or now.astimezone(_zone(patient.timezone)).date()
        enrollment = current.get(patient.id)
        if enrollment is not None and enrollment.anchor_date == day:
            result.enrollment = "unchanged"
            continue
        if enrollment is None and patient.id not in others:
            fresh.append((result, NewEnrollment(patient, campaign, day)))
            continue
        try:
            with session.begin_nested():
                made = enroll(session, rt, patient, campaign, day, now)
        except ConsentRequired:
            # The patient is imported; the campaign waits for express consent, said on this row and on the
            # patient's timeline (never a silent skip; issue 10 item 3).
            result.enrollment = NEEDS_CONSENT
            note(session, patient.id, "enrollment_refused", "consent_required", now, detail={"campaign": campaign})
            continue
        result.enrollment = "moved" if enrollment is not None else "enrolled"
        if enrollment is None:
            note_event(session, patient.id, "enrollment.created", made, f"import {actor}", actor, now)
    # New enrollments all at once (app/scheduling/bulk.py: the same rows ``enroll`` would write).
    outcomes = enroll_new(session, rt, [wanted for _, wanted in fresh], now)
    created: list[dict[str, Any]] = []
    for (result, wanted), outcome in zip(fresh, outcomes, strict=True):
        if isinstance(outcome, ConsentRequired):
            result.enrollment = NEEDS_CONSENT
            note(
                session,
                wanted.patient.id,
                "enrollment_refused",
                "consent_required",
                now,
                detail={"campaign": campaign},
            )
            continue
        result.enrollment = "enrolled"
        created.append(event_row(wanted.patient.id, "enrollment.created", outcome, f"import {actor}", actor, now))
    insert_many(session, AuditEvent.__table__, created)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
