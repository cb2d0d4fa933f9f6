"""Escalations opened through the real paths, not hand-inserted rows: the sweeper's scheduled touches,
reminders and timeouts ("two missed check-ins in a row → unreachable", DESIGN §4.3), and a patient's
signed replies across days ("open or join": one escalation per patient and reason; a later trigger joins
it, raises its level and reopens it if staff had acknowledged it at the lower level)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.escalation.levels import ACK_WITHIN, EscalationLevel
from app.escalation.queue import acknowledge
from app.models import Conversation, Escalation, EscalationTrigger
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.scheduling.sweeper import tick
from app.web.auth import create_user
from tests.integration.sms_helpers import inbound_params, install_clock, start_checkin

NINE_AM_NEW_YORK = dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)


def _escalations(rt: Runtime) -> list[Escalation]:
    with rt.sessions() as session:
        return list(session.scalars(select(Escalation).order_by(Escalation.id)).all())


def _triggers(rt: Runtime, escalation_id: int) -> list[EscalationTrigger]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(EscalationTrigger)
                .where(EscalationTrigger.escalation_id == escalation_id)
                .order_by(EscalationTrigger.id)
            ).all()
        )


def _results(rt: Runtime, patient_id: int) -> list[str | None]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(Conversation.result).where(Conversation.patient_id == patient_id).order_by(Conversation.id)
            ).all()
        )


def _day(rt: Runtime, day: int, run_jobs: Callable[[], int]) -> None:
    """One day of the sweeper as the scheduler runs it: the 09:00 touch, the 4-hour reminder, the evening."""
    for hours in (0, 4, 10):
        tick(rt, NINE_AM_NEW_YORK + dt.timedelta(days=day, hours=hours, minutes=1))
        run_jobs()


def test_two_missed_check_ins_in_a_row_open_one_routine_unreachable_escalation_and_a_third_joins_it(
    rt: Runtime, make_patient: Callable[..., Any], run_jobs: Callable[[], int], post_twilio: Callable[..., Any]
) -> None:
    silent = make_patient(timezone="America/New_York")
    answers_once = make_patient(timezone="America/New_York")
    with rt.sessions() as session, session.begin():
        for patient in (silent, answers_once):
            enroll(
                session,
                rt,
                session.merge(patient),
                "hf-remote-monitoring",
                NINE_AM_NEW_YORK.date(),
                NINE_AM_NEW_YORK - dt.timedelta(hours=1),
                None,
            )
    clock = install_clock(rt, NINE_AM_NEW_YORK)

    _day(rt, 0, run_jobs)  # day 0: prompt and reminder, no answer from either
    assert _escalations(rt) == []
    _day(rt, 1, run_jobs)  # day 0's check-in expires unanswered; day 1's starts
    assert _results(rt, silent.id)[0] == "no_response"
    assert _escalations(rt) == []  # one miss is not "unreachable"
    # The second patient answers day 1's check-in (the weight and its 7 questions), so their misses are not
    # in a row.
    for minutes, reply in enumerate(("182", *["NO"] * 7), start=60):
        clock.set(NINE_AM_NEW_YORK + dt.timedelta(days=1, minutes=minutes))
        assert post_twilio("/twilio/sms", inbound_params(answers_once.phone, reply)).status_code == 200

    _day(rt, 2, run_jobs)  # day 1's check-in expires: the silent patient's second miss in a row
    [unreachable] = _escalations(rt)
    assert (unreachable.patient_id, unreachable.level, unreachable.reason) == (silent.id, "ROUTINE", "unreachable")
    assert unreachable.status == "open"
    [first] = _triggers(rt, unreachable.id)
    assert first.rule_id == "two-missed-check-ins" and first.detail["missed_in_a_row"] == 2

    _day(rt, 3, run_jobs)  # a third miss joins the open escalation instead of opening another
    assert [e.id for e in _escalations(rt)] == [unreachable.id]
    assert len(_triggers(rt, unreachable.id)) == 2
    assert _results(rt, silent.id)[:3] == ["no_response"] * 3
    assert _results(rt, answers_once.id)[1] == "completed"


def test_a_later_trigger_with_the_same_reason_joins_raises_the_level_and_reopens(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Callable[..., Any], run_jobs: Callable[[], int]
) -> None:
    patient = make_patient(conditions=["diabetes"])
    nurse = create_user(rt, "nurse@example.org", "correct horse battery staple", "care_manager")
    clock = install_clock(rt, NINE_AM_NEW_YORK)

    def glucose_check(day: int, reading: str) -> None:
        clock.set(NINE_AM_NEW_YORK + dt.timedelta(days=day))
        start_checkin(rt, patient, clock.now, "diabetes-glucose-check")
        run_jobs()
        clock.advance(dt.timedelta(minutes=5))
        # A low reading is followed by "did someone have to help you?" and the recheck: no, then 100.
        for body in (reading, "no", "100"):
            assert post_twilio("/twilio/sms", inbound_params(patient.phone, body)).status_code == 200
            run_jobs()

    glucose_check(0, "65")  # low: ROUTINE low_glucose
    [opened] = _escalations(rt)
    assert (opened.level, opened.reason, opened.status) == ("ROUTINE", "low_glucose", "open")
    routine_due = opened.sla_due_at
    with rt.sessions() as session, session.begin():
        acknowledge(session, session.get(Escalation, opened.id), nurse.id, clock.now)

    glucose_check(1, "60")  # low again, same level: joins, stays acknowledged
    [joined] = _escalations(rt)
    assert joined.id == opened.id
    assert (joined.level, joined.status, joined.sla_due_at) == ("ROUTINE", "acknowledged", routine_due)
    assert len(_triggers(rt, opened.id)) == 2

    glucose_check(2, "45")  # very low: URGENT, same reason: joins, raises the level, reopens
    [raised] = _escalations(rt)
    assert raised.id == opened.id
    assert (raised.level, raised.status) == ("URGENT", "open")
    # The SLA is URGENT's now, counted from the reply that raised it (ROUTINE's was the next business day).
    assert raised.sla_due_at == clock.now + ACK_WITHIN[EscalationLevel.URGENT]
    assert [t.level for t in _triggers(rt, opened.id)] == ["ROUTINE", "ROUTINE", "URGENT"]

    glucose_check(3, "65")  # a ROUTINE trigger never lowers an URGENT escalation
    [kept] = _escalations(rt)
    assert (kept.id, kept.level, kept.status) == (opened.id, "URGENT", "open")
