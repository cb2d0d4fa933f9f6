"""The program dashboard's figures, the CSV exports and the patient list, on PostgreSQL with a known
fixture: every number below is counted by hand from the rows in ``world`` (see each comment)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import (
    Answer,
    AuditEvent,
    ContactAttempt,
    Conversation,
    Discharge,
    Enrollment,
    Escalation,
    EscalationTrigger,
    Patient,
    Program,
    ScheduledTouch,
    User,
)
from app.patients.search import search_patients
from app.programs.dashboard import program_stats
from app.runtime import Runtime
from app.web.auth import create_user
from tests.integration.staff_helpers import sign_in

PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture()
def world(rt: Runtime, program: Program, make_patient: Callable[..., Patient]) -> dict[str, Any]:
    """North Clinic: P1..P4 (P4 enrolled after the range); South Clinic: P5, whose rows must never count."""
    with rt.sessions() as s, s.begin():
        south = Program(slug="south-clinic", name="South Clinic", phone_display="555-0200")
        s.add(south)
    p1 = make_patient(given_name="Rosa", family_name="Diaz", phone="+12025550101", mrn="A-100")
    p2 = make_patient(given_name="Ana", family_name="Lopez", phone="+12025550102", caregiver_phone="+13015550199")
    p3 = make_patient(given_name="John", family_name="Smith")
    p4 = make_patient(given_name="Late", family_name="Comer")
    p5 = make_patient(given_name="Omar", family_name="Haddad", program_id=south.id, phone="+12025550105")
    with rt.sessions() as s, s.begin():

        def enroll(p: Patient, campaign: str, created: str, status: str = "active") -> Enrollment:
            e = Enrollment(
                patient_id=p.id, campaign=campaign, anchor_date=t(created).date(), status=status, created_at=t(created)
            )
            s.add(e)
            s.flush()
            return e

        e1 = enroll(p1, "hf-remote-monitoring", "2026-10-20T00:00")
        e2 = enroll(p2, "hf-remote-monitoring", "2026-11-05T00:00")
        enroll(p3, "medication-adherence", "2026-11-10T00:00", status="ended")
        enroll(p4, "hf-remote-monitoring", "2026-12-05T00:00")  # after the range: not enrolled in it
        e5 = enroll(p5, "hf-remote-monitoring", "2026-11-01T00:00")

        def conversation(p: Patient, started: str) -> Conversation:
            c = Conversation(
                patient_id=p.id, flow_id="hf-daily-check", flow_version="v1", status="completed", started_at=t(started)
            )
            s.add(c)
            s.flush()
            return c

        c1 = conversation(p1, "2026-11-02T09:00")  # answered, by the campaign
        c2 = conversation(p1, "2026-11-03T09:00")  # only an 'unanswered' row: not answered; no campaign touch
        c3 = conversation(p2, "2026-11-04T09:00")  # no answer, by the campaign
        c4 = conversation(p3, "2026-10-15T09:00")  # before the range
        c5 = conversation(p5, "2026-11-02T09:00")  # South
        for n, (enrollment, conv) in enumerate([(e1, c1), (e2, c3), (e5, c5)]):
            s.add(
                ScheduledTouch(
                    enrollment_id=enrollment.id,
                    touch_id="daily",
                    flow_id="hf-daily-check",
                    due_at=conv.started_at,
                    scheduled_for=conv.started_at,
                    occurrence_key=f"k{n}",
                    status="done",
                    conversation_id=conv.id,
                )
            )

        def answer(p: Patient, c: Conversation, kind: str, at: str, value: float | None = None) -> None:
            s.add(
                Answer(
                    patient_id=p.id,
                    conversation_id=c.id,
                    flow_id="hf-daily-check",
                    question_id="weight",
                    kind=kind,
                    value_number=value,
                    unit="lb" if value else None,
                    raw='=HYPERLINK("x")' if value == 183 else "",
                    channel="sms",
                    answered_at=t(at),
                )
            )

        answer(p1, c1, "number", "2026-11-02T09:05", 183)
        answer(p1, c2, "unanswered", "2026-11-03T21:00")
        answer(p3, c4, "number", "2026-10-15T09:05", 170)
        answer(p5, c5, "number", "2026-11-02T09:05", 200)

        def escalation(p: Patient, level: str, created: str, due: str | None, **times: str) -> Escalation:
            e = Escalation(
                patient_id=p.id,
                level=level,
                reason="weight_gain",
                reasons=["weight_gain"],
                status="resolved"
                if "resolved_at" in times
                else "acknowledged"
                if "acknowledged_at" in times
                else "open",
                created_at=t(created),
                sla_due_at=t(due) if due else None,
                **{k: t(v) for k, v in times.items()},
            )
            s.add(e)
            s.flush()
            return e

        # E1: ack 300 s, resolved 3600 s, in time. E2: ack 10800 s (after its 12:00 due: a breach), resolved
        # 14400 s. E3: never acknowledged, due 11-05 < NOW: a breach. E4 before the range. E5 South.
        x1 = escalation(
            p1,
            "EMERGENCY",
            "2026-11-02T10:00",
            "2026-11-02T10:15",
            acknowledged_at="2026-11-02T10:05",
            resolved_at="2026-11-02T11:00",
        )
        x2 = escalation(
            p1,
            "URGENT",
            "2026-11-03T10:00",
            "2026-11-03T12:00",
            acknowledged_at="2026-11-03T13:00",
            resolved_at="2026-11-03T14:00",
        )
        x3 = escalation(p2, "ROUTINE", "2026-11-04T10:00", "2026-11-05T23:00")
        escalation(p2, "URGENT", "2026-10-01T10:00", "2026-10-01T12:00")
        x5 = escalation(p5, "EMERGENCY", "2026-11-02T10:00", "2026-11-02T10:15")
        for esc, conv in [(x1, c1), (x2, c2), (x3, c3), (x5, c5)]:
            s.add(
                EscalationTrigger(
                    escalation_id=esc.id, conversation_id=conv.id, rule_id="r", level=esc.level, reason="weight_gain"
                )
            )

        for p, when in [(p2, "2026-11-20T00:00"), (p3, "2026-10-01T00:00"), (p5, "2026-11-20T00:00")]:
            row = s.get(Patient, p.id)
            assert row is not None
            row.opted_out, row.opted_out_at = True, t(when)

        def discharge(p: Patient, program_id: int, at: str, deadline: str) -> Discharge:
            d = Discharge(
                patient_id=p.id,
                program_id=program_id,
                visit_number=f"V{p.id}",
                discharged_at=t(at),
                discharge_date=t(at).date(),
                deadline_at=t(deadline),
            )
            s.add(d)
            s.flush()
            return d

        d1 = discharge(p1, program.id, "2026-11-10T08:00", "2026-11-12T23:59")  # reached in time: met
        discharge(p2, program.id, "2026-11-28T08:00", "2026-12-02T23:59")  # deadline after NOW: due
        discharge(p3, program.id, "2026-11-15T08:00", "2026-11-17T23:59")  # no attempt, past: overdue
        discharge(p5, south.id, "2026-11-15T08:00", "2026-11-17T23:59")
        s.add(
            ContactAttempt(
                discharge_id=d1.id,
                outcome="reached",
                method="phone",
                attempted_by="rn",
                attempted_at=t("2026-11-11T10:00"),
            )
        )
    return {"north": program, "south": south, "patients": [p1, p2, p3, p4, p5]}


def test_program_figures_match_the_hand_count(rt: Runtime, world: dict[str, Any]) -> None:
    with rt.sessions() as s:
        stats = program_stats(s, world["north"].id, start=START, end=END, now=NOW)
    assert (stats.enrolled, stats.active_now) == (3, 2)  # P1 P2 P3 (P4 after the range); P3's ended
    assert (stats.conversations, stats.answered_conversations) == (3, 1)  # C1 C2 C3; only C1 answered
    assert stats.response_rate == pytest.approx(1 / 3)
    assert (stats.contacted, stats.reached) == (2, 1)  # P1 and P2 contacted; P1 reached
    assert stats.escalations_by_level == {"EMERGENCY": 1, "URGENT": 1, "ROUTINE": 1, "INFO": 0}
    assert stats.median_ack_seconds == 5550  # median(300, 10800)
    assert stats.median_resolve_seconds == 9000  # median(3600, 14400)
    assert stats.sla_breaches == 2  # E2 acknowledged late, E3 never and past due
    assert stats.opt_outs == 1  # P2 (P3 opted out before the range; P5 is South's)
    assert stats.tcm == {"met": 1, "due": 1, "overdue": 1, "cancelled": 0}


def test_a_campaign_counts_only_its_own_conversations(rt: Runtime, world: dict[str, Any]) -> None:
    with rt.sessions() as s:
        stats = program_stats(s, world["north"].id, start=START, end=END, now=NOW, campaign="hf-remote-monitoring")
    assert (stats.enrolled, stats.active_now) == (2, 2)  # P1, P2 (P4 after the range)
    assert (stats.conversations, stats.answered_conversations, stats.contacted, stats.reached) == (2, 1, 2, 1)
    assert stats.escalations_by_level == {"EMERGENCY": 1, "URGENT": 0, "ROUTINE": 1, "INFO": 0}  # E1, E3
    assert stats.sla_breaches == 1  # E3
    assert stats.opt_outs == 1


def test_an_empty_range_has_no_rates(rt: Runtime, world: dict[str, Any]) -> None:
    with rt.sessions() as s:
        stats = program_stats(s, world["north"].id, start=t("2025-01-01T00:00"), end=t("2025-02-01T00:00"), now=NOW)
    assert stats.response_rate is None and stats.median_ack_seconds is None and stats.escalations == 0


def _staff(rt: Runtime, world: dict[str, Any]) -> None:
    create_user(rt, "north@example.org", PASSWORD, "care_manager", program="north-clinic")
    create_user(rt, "south@example.org", PASSWORD, "care_manager", program="south-clinic")
    with rt.sessions() as s, s.begin():
        for user in s.scalars(select(User)).all():
            user.timezone = "UTC"


def test_dashboard_page_shows_the_figures_and_refuses_another_program(
    rt: Runtime, client: FlaskClient, world: dict[str, Any]
) -> None:
    _staff(rt, world)
    sign_in(client, "north@example.org", PASSWORD)
    page = client.get("/dashboard?program=north-clinic&from=2026-11-01&to=2026-11-30")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<tr data-figure="enrolled"><th scope="row">Patients enrolled</th><td>3</td>' in html
    assert "33 % (1 / 3)" in html
    assert "1 h 32 min" in html  # 5550 s
    assert '<tr data-figure="tcm_overdue"><th scope="row">TCM contact: overdue</th><td>1</td>' in html
    assert client.get("/dashboard?program=south-clinic").status_code == 403
    assert client.get("/dashboard?program=north-clinic&campaign=nope").status_code == 400
    assert client.get("/dashboard?program=north-clinic&from=2026-12-01&to=2026-11-01").status_code == 400
    spanish = client.get("/dashboard?program=north-clinic&from=2026-11-01&to=2026-11-30&lang=es").get_data(as_text=True)
    assert "Pacientes inscritos" in spanish and "Panel del programa" in spanish
    with rt.sessions() as s:
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions.count("dashboard.viewed") == 2 and "dashboard.refused" in actions


def test_csv_exports_stream_the_program_rows_only(rt: Runtime, client: FlaskClient, world: dict[str, Any]) -> None:
    _staff(rt, world)
    sign_in(client, "north@example.org", PASSWORD)
    response = client.get("/dashboard/export/answers.csv?program=north-clinic&from=2026-11-01&to=2026-11-30")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"].startswith('attachment; filename="north-clinic-answers-')
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["mrn"], r["kind"], r["value"]) for r in rows] == [
        ("A-100", "number", "183.0"),
        ("A-100", "unanswered", ""),
    ]
    assert "raw" not in rows[0] and "HYPERLINK" not in response.get_data(as_text=True)
    escalations = client.get("/dashboard/export/escalations.csv?program=north-clinic&from=2026-11-01&to=2026-11-30")
    rows = list(csv.DictReader(io.StringIO(escalations.get_data(as_text=True))))
    assert [r["level"] for r in rows] == ["EMERGENCY", "URGENT", "ROUTINE"]
    assert "note" not in rows[0] and "phone" not in ",".join(rows[0])
    assert client.get("/dashboard/export/answers.csv?program=south-clinic").status_code == 403
    assert client.get("/dashboard/export/notes.csv?program=north-clinic").status_code == 404
    with rt.sessions() as s:
        exports = s.scalars(select(AuditEvent).where(AuditEvent.action == "export.downloaded")).all()
    assert sorted(e.detail["kind"] for e in exports) == ["answers", "escalations"]


def test_a_spreadsheet_formula_is_neutralised(rt: Runtime, client: FlaskClient, world: dict[str, Any]) -> None:
    _staff(rt, world)
    with rt.sessions() as s, s.begin():
        row = s.get(Patient, world["patients"][0].id)
        assert row is not None
        row.family_name = "=cmd|' /C calc'!A0"
    sign_in(client, "north@example.org", PASSWORD)
    text = client.get("/dashboard/export/answers.csv?program=north-clinic&from=2026-11-01&to=2026-11-30").get_data(
        as_text=True
    )
    assert "'=cmd" in text and ",=cmd" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rosa", ["Rosa"]),
        ("DIAZ rosa", ["Rosa"]),
        ("a-1", ["Rosa"]),
        ("(202) 555-0101", ["Rosa"]),
        ("+1 202 555 0102", ["Ana"]),
        ("301.555.0199", ["Ana"]),  # the caregiver's number
        ("0105", []),  # South's patient: outside the viewer's programs
        ("%", []),
        ("", ["Late", "Rosa", "Ana", "John"]),  # by family name: Comer, Diaz, Lopez, Smith
    ],
)
def test_search_by_name_mrn_and_normalised_phone(
    rt: Runtime, world: dict[str, Any], text: str, expected: list[str]
) -> None:
    with rt.sessions() as s:
        found = search_patients(s, text, frozenset({world["north"].id}))
        assert [p.given_name for p in found.patients] == expected


def test_patient_list_page_is_scoped_paginated_and_audited(
    rt: Runtime, client: FlaskClient, world: dict[str, Any], make_patient: Callable[..., Patient]
) -> None:
    _staff(rt, world)
    for n in range(51):
        make_patient(given_name="Zed", family_name=f"Zz{n:02d}")
    sign_in(client, "north@example.org", PASSWORD)
    first = client.get("/patients?q=zed").get_data(as_text=True)
    assert first.count("data-patient=") == 50 and 'rel="next"' in first
    second = client.get("/patients?q=zed&page=2").get_data(as_text=True)
    assert second.count("data-patient=") == 1 and 'rel="prev"' in second
    assert "Haddad" not in client.get("/patients?q=haddad").get_data(as_text=True)
    spanish = client.get("/patients?q=rosa&lang=es").get_data(as_text=True)
    assert "Nombre, MRN o teléfono" in spanish and "Diaz" in spanish
    with rt.sessions() as s:
        listed = s.scalars(select(AuditEvent).where(AuditEvent.action == "patients.listed")).all()
    assert len(listed) == 4 and len(listed[0].detail["patient_ids"]) == 50
