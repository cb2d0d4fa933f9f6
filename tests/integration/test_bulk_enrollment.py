"""The bulk enrollment path (app/scheduling/bulk.py, used by ``outreach import-patients --campaign`` and
the ADT discharge) gives a patient exactly what enrolling through the API gives: the same enrollment, the
same occurrences (touch, flow, due and scheduled times, staleness, key), the same timeline notes, and the
same refusal under the health-care exemption's caps (issue 10 Scale)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import Enrollment, Patient, Program, ScheduledTouch, TimelineEvent
from app.runtime import Runtime
from tests.conftest import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
#: 15:00 UTC: morning in Los Angeles, afternoon in New York — some first touches of "today" have passed.
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
PEOPLE = [
    # (time zone, conditions, anchor or "" for the patient's local today)
    ("America/New_York", ["heart_failure", "diabetes"], "2026-11-30"),
    ("America/Chicago", ["copd"], ""),
    ("America/Los_Angeles", ["heart_failure"], "2026-11-28"),
    ("America/Los_Angeles", [], "2026-12-03"),
]
CAMPAIGNS = ["post-discharge-30d", "hf-remote-monitoring", "behavioral-health", "medication-adherence"]


def _through_api(
    client: FlaskClient, mrn: str, n: int, tz: str, conditions: list[str], anchor: str, campaign: str
) -> int:
    patient = {
        "mrn": mrn,
        "given_name": "Pat",
        "family_name": "Api",
        "phone": f"+1312555{n:04d}",
        "language": "en",
        "timezone": tz,
        "conditions": conditions,
    }
    made = client.post("/api/v1/patients", headers=AUTH, json=patient)
    assert made.status_code in (200, 201), made.get_json()
    body: dict[str, Any] = {"patient_id": made.get_json()["id"], "campaign": campaign}
    if anchor:
        body["anchor_date"] = anchor
    enrolled = client.post("/api/v1/enrollments", headers=AUTH, json=body)
    assert enrolled.status_code in (201, 409), enrolled.get_json()
    return enrolled.status_code


def _schedule(rt: Runtime, mrn: str) -> list[tuple[object, ...]]:
    """Everything the schedule holds for one patient, with the enrollment's own id taken out of keys."""
    with rt.sessions() as session:
        patient = session.scalars(select(Patient).where(Patient.mrn == mrn)).one()
        rows: list[tuple[object, ...]] = []
        for e in session.scalars(select(Enrollment).where(Enrollment.patient_id == patient.id).order_by(Enrollment.id)):
            rows.append(
                (e.campaign, e.anchor_date, e.status, e.schedule_version, e.next_due_at, e.schedule_basis, e.variables)
            )
            for t in session.scalars(
                select(ScheduledTouch).where(ScheduledTouch.enrollment_id == e.id).order_by(ScheduledTouch.due_at)
            ):
                key = t.occurrence_key.removeprefix(f"{e.id}:")
                rows.append((t.touch_id, t.flow_id, t.due_at, t.scheduled_for, t.stale_after_minutes, t.status, key))
        notes = session.scalars(
            select(TimelineEvent).where(TimelineEvent.patient_id == patient.id).order_by(TimelineEvent.id)
        )
        # The API answers a refusal with 409 to its caller; the import, which has no caller to answer,
        # also notes it on the timeline (compared through the report below instead).
        rows.extend((n.kind, n.code, n.enrollment_id is not None) for n in notes if n.kind != "enrollment_refused")
        return rows


@pytest.mark.parametrize("exempt", [False, True], ids=["express-consent", "health-care-exemption"])
@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_a_csv_imported_patient_gets_exactly_what_the_api_gives(
    app: Flask, client: FlaskClient, rt: Runtime, tmp_path: Path, campaign: str, exempt: bool
) -> None:
    with rt.sessions() as session, session.begin():
        session.add(Program(slug="p", name="P", phone_display="555-0100", uses_healthcare_exemption=exempt))
    rt.clock = lambda: NOW
    lines = ["mrn,given_name,family_name,phone,language,timezone,conditions,anchor"]
    refused = set()
    for n, (tz, conditions, anchor) in enumerate(PEOPLE):
        if _through_api(client, f"API-{n}", n, tz, conditions, anchor, campaign) == 409:
            refused.add(f"CSV-{n}")
        lines.append(f"CSV-{n},Pat,Csv,+1415555{n:04d},en,{tz},{';'.join(conditions)},{anchor}")
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Rows without an anchor take the patient's local today, as the API does.
    args = ["import-patients", str(path), "--campaign", campaign, "--anchor-column", "anchor"]
    rows_without_anchor = [n for n, (_tz, _c, anchor) in enumerate(PEOPLE) if not anchor]
    output = app.test_cli_runner().invoke(args=args).output
    # The anchor column is required on a row that names one: rows without are imported in a second file.
    if rows_without_anchor:
        lines_no_anchor = [lines[0].removesuffix(",anchor")] + [
            lines[n + 1].rsplit(",", 1)[0] for n in rows_without_anchor
        ]
        path.write_text("\n".join(lines_no_anchor) + "\n", encoding="utf-8")
        again = app.test_cli_runner().invoke(args=["import-patients", str(path), "--campaign", campaign])
        assert "failed=0" in again.output, again.output
        output += again.output
    said_refused = {line.split(": ")[1].split()[0] for line in output.splitlines() if "needs express consent" in line}
    assert said_refused == refused
    compared = 0
    for n in range(len(PEOPLE)):
        api, csv = _schedule(rt, f"API-{n}"), _schedule(rt, f"CSV-{n}")
        assert csv == api, (n, campaign)
        compared += len(api)
    assert compared > 0 or len(refused) == len(PEOPLE)  # schedules compared, or every one refused alike
