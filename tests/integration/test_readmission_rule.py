"""What a readmission (ADT A01/A04) pauses (issue 10; rule in app/programs/enrollment.py:paused_by_admission,
DESIGN §4.2): the admitting program's home outreach pauses, appointment reminders go on, a campaign the
program does not run is not its decision; the next discharge restarts the mapped campaigns and resumes
the rest. On PostgreSQL through ``POST /api/v1/adt``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import Enrollment, Patient, Program, ScheduledTouch
from app.programs.enrollment import paused_by_admission
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from tests.conftest import API_TOKEN
from tests.support.hl7_messages import adt

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # Monday 10:00 in New York


@pytest.fixture()
def clocked(rt: Runtime, program: Program) -> Runtime:
    rt.clock = lambda: NOW
    return rt


def post_adt(client: FlaskClient, message: str) -> Any:
    response = client.post("/api/v1/adt", data=message.encode(), headers={**AUTH, "Content-Type": "application/hl7-v2"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _enroll_more(rt: Runtime) -> None:
    """Besides the discharge's campaigns: an appointment next week and twice-daily medicine reminders."""
    with rt.sessions() as session, session.begin():
        patient = session.scalars(select(Patient)).one()
        enroll(
            session,
            rt,
            patient,
            "appointment-reminders",
            dt.date(2026, 12, 8),
            NOW,
            {"appointment_at": "2026-12-08T10:30:00-05:00"},
        )
        enroll(session, rt, patient, "medication-adherence", None, NOW, {"dose_times": "08:00,20:00"})


def _statuses(rt: Runtime) -> dict[str, str]:
    with rt.sessions() as session:
        return {e.campaign: e.status for e in session.scalars(select(Enrollment)).all()}


def _pending(rt: Runtime, campaign: str) -> int:
    with rt.sessions() as session:
        return len(
            session.scalars(
                select(ScheduledTouch.id)
                .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
                .where(Enrollment.campaign == campaign, ScheduledTouch.status == "pending")
            ).all()
        )


def test_an_admission_pauses_home_outreach_keeps_appointment_reminders_and_the_next_discharge_resumes_all(
    client: FlaskClient, clocked: Runtime
) -> None:
    post_adt(client, adt())
    _enroll_more(clocked)
    admitted = post_adt(
        client, adt("A01", control_id="MSG00002", visit="V999", discharged="", admitted="20261201090000-0500")
    )
    assert admitted["detail"] == "readmission: 3 enrollments paused; continuing: appointment-reminders"
    assert _statuses(clocked) == {
        "post-discharge-30d": "paused",
        "hf-remote-monitoring": "paused",
        "medication-adherence": "paused",  # an inpatient's medicines come from the ward: no home dose reminders
        "appointment-reminders": "active",
    }
    assert _pending(clocked, "medication-adherence") == 0 and _pending(clocked, "hf-remote-monitoring") == 0
    assert _pending(clocked, "appointment-reminders") == 2

    clocked.clock = lambda: NOW + dt.timedelta(days=3, hours=3)  # Thursday 13:00 in New York
    discharged = post_adt(client, adt(control_id="MSG00003", visit="V999", discharged="20261203120000-0500"))
    assert "enrolled: post-discharge-30d, hf-remote-monitoring" in discharged["detail"]
    assert "resumed after the admission: 1" in discharged["detail"]
    assert set(_statuses(clocked).values()) == {"active"}
    assert _pending(clocked, "medication-adherence") > 0


def test_a_campaign_the_admitting_program_does_not_run_is_not_paused(clocked: Runtime, program: Program) -> None:
    program.campaigns = ["post-discharge-30d", "hf-remote-monitoring"]
    home = Enrollment(campaign="post-discharge-tcm", patient_id=1)  # an alias of post-discharge-30d
    monitoring = Enrollment(campaign="hf-remote-monitoring", patient_id=1)
    elsewhere = Enrollment(campaign="behavioral-health", patient_id=1)
    reminders = Enrollment(campaign="appointment-reminders", patient_id=1)
    retired = Enrollment(campaign="no-longer-shipped", patient_id=1)
    assert paused_by_admission(clocked, program, home)
    assert paused_by_admission(clocked, program, monitoring)
    assert not paused_by_admission(clocked, program, elsewhere)
    program.campaigns = []  # runs every campaign
    assert paused_by_admission(clocked, program, elsewhere)
    assert not paused_by_admission(clocked, program, reminders)
    assert paused_by_admission(clocked, program, retired)  # unsure: stay quiet to an inpatient
