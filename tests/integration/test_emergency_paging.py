"""An EMERGENCY always reaches a human: the on-call nurse is paged by SMS at once, re-paged after
15 minutes without an acknowledgement, then the supervisor; pages carry no PHI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.cli import main as cli
from app.conversations.service import start_conversation
from app.escalation.paging import next_page
from app.escalation.queue import acknowledge
from app.messaging.inbound import receive_text
from app.models import Escalation, Program, User
from app.runtime import Runtime
from app.scheduling.sweeper import tick

ON_CALL = "+13125550001"
SUPERVISOR = "+13125550002"
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def _texts_to(fake: Any, number: str) -> list[str]:
    return [m["Body"] for m in fake.messages if m["To"] == number]


def _chest_pain(rt: Runtime, patient: Any, now: dt.datetime) -> None:
    with rt.sessions() as session, session.begin():
        patient = session.merge(patient)
        start_conversation(session, rt, patient, "hf-daily-check", now)
        receive_text(
            session,
            rt,
            sid="SM" + "c" * 32,
            from_number=patient.phone,
            to_number="+15005550006",
            body="I have chest pain",
            channel="sms",
            now=now,
        )


def test_emergency_pages_on_call_then_repages_then_the_supervisor(
    rt: Runtime, program: Program, make_patient: Callable[..., Any], run_jobs: Callable[[], int], fake_twilio: Any
) -> None:
    with rt.sessions() as session, session.begin():
        prog = session.get(Program, program.id)
        assert prog is not None
        prog.on_call_phone, prog.supervisor_phone = ON_CALL, SUPERVISOR
    patient = make_patient(given_name="Rosa", family_name="Diaz")
    _chest_pain(rt, patient, NOW)
    run_jobs()
    pages = _texts_to(fake_twilio, ON_CALL)
    assert len(pages) == 1
    assert "EMERGENCY" in pages[0] and "/queue" in pages[0]
    assert "Rosa" not in pages[0] and "Diaz" not in pages[0] and "chest" not in pages[0]  # no PHI in a page
    assert "911" in _texts_to(fake_twilio, patient.phone)[-1]

    tick(rt, NOW + dt.timedelta(minutes=10))
    run_jobs()
    assert len(_texts_to(fake_twilio, ON_CALL)) == 1  # not yet: 15 minutes to acknowledge
    tick(rt, NOW + dt.timedelta(minutes=16))
    run_jobs()
    assert len(_texts_to(fake_twilio, ON_CALL)) == 2
    assert "still not acknowledged" in _texts_to(fake_twilio, ON_CALL)[1]
    tick(rt, NOW + dt.timedelta(minutes=32))
    run_jobs()
    assert len(_texts_to(fake_twilio, SUPERVISOR)) == 1
    tick(rt, NOW + dt.timedelta(hours=2))
    run_jobs()
    assert len(_texts_to(fake_twilio, ON_CALL)) == 2 and len(_texts_to(fake_twilio, SUPERVISOR)) == 1


def test_an_acknowledged_emergency_is_not_paged_again(
    rt: Runtime, program: Program, make_patient: Callable[..., Any], run_jobs: Callable[[], int], fake_twilio: Any
) -> None:
    with rt.sessions() as session, session.begin():
        prog = session.get(Program, program.id)
        assert prog is not None
        prog.on_call_phone = ON_CALL
        nurse = User(email="rn@example.org", password_hash="x", role="care_manager")
        session.add(nurse)
    _chest_pain(rt, make_patient(), NOW)
    with rt.sessions() as session, session.begin():
        escalation = session.scalars(select(Escalation)).one()
        acknowledge(session, escalation, nurse.id, NOW + dt.timedelta(minutes=5))
    tick(rt, NOW + dt.timedelta(minutes=20))
    run_jobs()
    assert len(_texts_to(fake_twilio, ON_CALL)) == 1


def test_the_page_schedule() -> None:
    assert next_page(0, None, NOW).number == 1  # type: ignore[union-attr]
    assert next_page(1, NOW, NOW + dt.timedelta(minutes=14)) is None
    assert next_page(1, NOW, NOW + dt.timedelta(minutes=15)).to == "on_call"  # type: ignore[union-attr]
    assert next_page(2, NOW, NOW + dt.timedelta(minutes=15)).to == "supervisor"  # type: ignore[union-attr]
    assert next_page(3, NOW, NOW + dt.timedelta(hours=5)) is None


def test_create_program_from_the_command_line(app: Flask, rt: Runtime) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        cli, ["create-program", "north", "North Clinic", "--phone", "555-0100", "--on-call", "(312) 555-0003"]
    )
    assert made.exit_code == 0, made.output
    assert runner.invoke(cli, ["create-program", "x", "X", "--phone", "1", "--on-call", "12"]).exit_code != 0
    with rt.sessions() as session:
        program = session.scalars(select(Program).where(Program.slug == "north")).one()
        assert (program.on_call_phone, program.uses_healthcare_exemption) == ("+13125550003", True)


def test_an_opted_out_patient_in_crisis_still_reaches_a_human_without_being_texted(
    rt: Runtime, program: Program, make_patient: Callable[..., Any], run_jobs: Callable[[], int], fake_twilio: Any
) -> None:
    with rt.sessions() as session, session.begin():
        prog = session.get(Program, program.id)
        assert prog is not None
        prog.on_call_phone = ON_CALL
    patient = make_patient(opted_out=True)
    with rt.sessions() as session, session.begin():
        receive_text(
            session,
            rt,
            sid="SM" + "d" * 32,
            from_number=patient.phone,
            to_number="+15005550006",
            body="quiero morir",
            channel="sms",
            now=NOW,
        )
    run_jobs()
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        assert escalation.level == "EMERGENCY"
        assert (escalation.reason,) == rt.content.triage.assess("quiero morir", "es").emergency
    assert _texts_to(fake_twilio, patient.phone) == []
    assert len(_texts_to(fake_twilio, ON_CALL)) == 1
