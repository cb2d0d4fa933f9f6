"""The demo data `make run` seeds: one program, an English and a Spanish patient, one care manager."""

from __future__ import annotations

import datetime as dt
import os

from sqlalchemy import select

from app.models import Program, User, utcnow
from app.patients.service import upsert_patient
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.web.auth import create_user

DEMO_EMAIL = "nurse@example.org"


def seed_demo(rt: Runtime) -> list[str]:
    now = utcnow()
    password = os.environ.get("OUTREACH_DEMO_PASSWORD", "demo-password-2026")
    with rt.sessions() as session, session.begin():
        program = session.scalars(select(Program).where(Program.slug == "demo-clinic")).first()
        if program is None:
            program = Program(
                slug="demo-clinic",
                name="Demo Clinic",
                phone_display="555-0100",
                uses_healthcare_exemption=False,
                on_call_phone="+12025550199",
                supervisor_phone="+12025550198",
            )
            session.add(program)
            session.flush()
        for data in (
            {
                "mrn": "DEMO-1",
                "given_name": "Ana",
                "family_name": "Lopez",
                "phone": "+12025550101",
                "language": "es",
                "timezone": "America/Chicago",
                "conditions": ["heart_failure"],
            },
            {
                "mrn": "DEMO-2",
                "given_name": "Walter",
                "family_name": "Brown",
                "phone": "+12025550102",
                "language": "en",
                "timezone": "America/New_York",
                "conditions": ["heart_failure"],
            },
        ):
            patient, _ = upsert_patient(session, program, data, actor="demo", now=now)
            enroll(session, rt, patient, "hf-remote-monitoring", now.date() - dt.timedelta(days=0), now)
        has_user = session.scalars(select(User).where(User.email == DEMO_EMAIL)).first() is not None
    if not has_user:
        create_user(rt, DEMO_EMAIL, password, "care_manager", program="demo-clinic", team="day")
    return [f"demo care manager: {DEMO_EMAIL} / {password}"]
