"""Scheduling on real PostgreSQL: occurrences in the patient's zone, quiet hours, stale work, caps on
duplicates, re-derivation when the anchor moves, and the sweeper being safe to run twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from alembic import command
from sqlalchemy import select

from app.migrations import alembic_config
from app.models import Conversation, Enrollment, Message, ScheduledTouch
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.scheduling.sweeper import tick

CHICAGO_9AM_DAY1 = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _enroll(rt: Runtime, patient: Any, anchor: dt.date, now: dt.datetime, **variables: str) -> Enrollment:
    with rt.sessions() as session, session.begin():
        return enroll(session, rt, session.merge(patient), "hf-remote-monitoring", anchor, now, variables or None)


def _touches(rt: Runtime) -> list[ScheduledTouch]:
    with rt.sessions() as session:
        return list(session.scalars(select(ScheduledTouch).order_by(ScheduledTouch.due_at)).all())


def test_the_migrations_match_the_models(database_url: str) -> None:
    command.check(alembic_config(database_url))


def test_daily_touch_is_at_nine_local_across_the_dst_change(rt: Runtime, make_patient: Callable[..., Any]) -> None:
    patient = make_patient(timezone="America/Chicago")
    _enroll(rt, patient, dt.date(2026, 10, 30), dt.datetime(2026, 10, 29, 12, tzinfo=dt.UTC))
    by_day = {t.due_at.date(): t.due_at for t in _touches(rt)}
    assert by_day[dt.date(2026, 10, 31)].hour == 14  # 09:00 CDT = 14:00 UTC
    assert by_day[dt.date(2026, 11, 2)].hour == 15  # 09:00 CST = 15:00 UTC after 1 November
    assert len(by_day) == 31


def test_enrolling_again_with_a_corrected_anchor_rederives_pending_touches(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient(timezone="America/New_York")
    now = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    first = _enroll(rt, patient, dt.date(2026, 11, 2), now)
    second = _enroll(rt, patient, dt.date(2026, 11, 5), now)
    assert first.id == second.id
    touches = _touches(rt)
    assert len(touches) == 31
    assert touches[0].due_at.date() == dt.date(2026, 11, 5)
    assert all(":v2:" in t.occurrence_key for t in touches)


def test_tick_outside_quiet_hours_moves_the_touch_to_the_morning(
    rt: Runtime, make_patient: Callable[..., Any], run_jobs: Callable[[], int]
) -> None:
    patient = make_patient(timezone="America/Los_Angeles")
    _enroll(rt, patient, dt.date(2026, 11, 24), dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC))
    with rt.sessions() as session, session.begin():
        first = session.scalars(select(ScheduledTouch).order_by(ScheduledTouch.due_at)).first()
        assert first is not None
        first.due_at = first.scheduled_for = dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)  # 06:00 in LA
    counts = tick(rt, dt.datetime(2026, 11, 24, 14, 5, tzinfo=dt.UTC))
    assert counts["deferred"] == 1 and counts["started"] == 0
    moved = _touches(rt)[0]
    assert moved.due_at == dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)  # 08:00 in LA
    assert tick(rt, dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC))["started"] == 1


def test_stale_check_ins_are_skipped_not_sent_late(rt: Runtime, make_patient: Callable[..., Any]) -> None:
    patient = make_patient(timezone="America/Chicago")
    _enroll(rt, patient, CHICAGO_9AM_DAY1.date(), CHICAGO_9AM_DAY1 - dt.timedelta(hours=1))
    counts = tick(rt, CHICAGO_9AM_DAY1 + dt.timedelta(hours=13))  # the 09:00 check-in at 22:00
    assert counts["skipped"] == 1 and counts["started"] == 0
    with rt.sessions() as session:
        assert session.scalar(select(Message.id)) is None
        assert _touches(rt)[0].outcome == "stale"


def test_ticking_twice_starts_each_occurrence_once(
    rt: Runtime, make_patient: Callable[..., Any], run_jobs: Callable[[], int], fake_twilio: Any
) -> None:
    patient = make_patient(timezone="America/Chicago")
    _enroll(rt, patient, CHICAGO_9AM_DAY1.date(), CHICAGO_9AM_DAY1 - dt.timedelta(hours=1))
    tick(rt, CHICAGO_9AM_DAY1)
    tick(rt, CHICAGO_9AM_DAY1 + dt.timedelta(minutes=1))
    run_jobs()
    assert len([m for m in fake_twilio.messages if m["To"] == patient.phone]) == 1
    with rt.sessions() as session:
        assert len(session.scalars(select(Conversation)).all()) == 1


def test_enrollment_variables_are_formatted_for_the_patient_language(client: Any, program: Any, rt: Runtime) -> None:
    from tests.conftest import API_TOKEN

    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    created = client.post(
        "/api/v1/patients",
        headers=auth,
        json={
            "mrn": "V1",
            "given_name": "Luz",
            "family_name": "Mora",
            "phone": "+13125550190",
            "language": "es",
            "timezone": "America/Chicago",
        },
    )
    assert created.status_code == 201
    bad = client.post(
        "/api/v1/enrollments",
        headers=auth,
        json={"mrn": "V1", "campaign": "hf-remote-monitoring", "variables": {"appointment_at": "next tuesday"}},
    )
    assert bad.status_code == 422
    assert "appointment_at" in bad.json["error"]["fields"]["variables"]
    good = client.post(
        "/api/v1/enrollments",
        headers=auth,
        json={
            "mrn": "V1",
            "campaign": "hf-remote-monitoring",
            "variables": {"appointment_at": "2026-12-16T16:30:00+00:00", "medication_name": "metoprolol"},
        },
    )
    assert good.status_code == 201
    from app.conversations.service import patient_context
    from app.models import Patient

    with rt.sessions() as session:
        patient = session.scalars(select(Patient)).one()
        ctx = patient_context(session, rt, patient, rt.now(), variables=good.json["variables"])
    assert ctx.variables["appointment_date"] == "miércoles, 16 de diciembre de 2026"
    assert ctx.variables["appointment_time"] == "10:30"


def test_exemption_patients_cannot_be_enrolled_past_the_caps_and_a_cap_skip_is_on_the_timeline(
    rt: Runtime, make_patient: Callable[..., Any], program: Any
) -> None:
    """Issue 10's fourth fault: a program without express consent silently skipped the daily HF check-in
    on the 4th day of every week. Now the enrollment is refused with the reason, and a skip that still
    happens (consent changed to the exemption after enrolling) is a visible timeline row."""
    import pytest

    from app.models import Program, TimelineEvent
    from app.patients.consent import clean_consent, record_consent
    from app.scheduling.enrollments import ConsentRequired

    with rt.sessions() as session, session.begin():
        session.get(Program, program.id).uses_healthcare_exemption = True  # type: ignore[union-attr]
    patient = make_patient(timezone="America/Chicago")
    with pytest.raises(ConsentRequired, match="3 a week"):
        _enroll(rt, patient, CHICAGO_9AM_DAY1.date(), CHICAGO_9AM_DAY1 - dt.timedelta(hours=1))
    assert _touches(rt) == []
    day0 = CHICAGO_9AM_DAY1.date()
    with rt.sessions() as session, session.begin():
        record_consent(
            session, session.merge(patient), clean_consent({"basis": "express_written"}, day0), actor="t", now=rt.now()
        )
    _enroll(rt, patient, day0, CHICAGO_9AM_DAY1 - dt.timedelta(hours=1))
    with rt.sessions() as session, session.begin():
        record_consent(
            session,
            session.merge(patient),
            clean_consent({"basis": "health_care_exemption"}, day0),
            actor="t",
            now=rt.now(),
        )
    for day in range(5):
        now = CHICAGO_9AM_DAY1 + dt.timedelta(days=day)
        tick(rt, now)
        with rt.sessions() as session, session.begin():
            # The patient never answers; close each check-in so the next is not merely "busy".
            for conversation in session.scalars(select(Conversation).where(Conversation.status == "active")):
                conversation.status, conversation.result = "expired", "no_response"
    with rt.sessions() as session:
        outcomes = [t.outcome for t in session.scalars(select(ScheduledTouch).order_by(ScheduledTouch.due_at))][:5]
        notes = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "touch_skipped")).all()
    assert outcomes == ["started", "started", "started", "weekly_cap", "weekly_cap"]
    assert [n.code for n in notes] == ["weekly_cap", "weekly_cap"]


def test_a_second_touch_on_the_same_day_waits_for_the_daily_cap(rt: Runtime) -> None:
    from app.scheduling.caps import cap_reached

    morning = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    assert cap_reached([], morning, "America/Chicago") is None
    assert cap_reached([morning], morning + dt.timedelta(hours=5), "America/Chicago") == "daily_cap"
    # 05:30 UTC on the 25th is still the 24th in Chicago.
    assert cap_reached([morning], dt.datetime(2026, 11, 25, 5, 30, tzinfo=dt.UTC), "America/Chicago") == "daily_cap"
    assert cap_reached([morning], dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC), "America/Chicago") is None


def test_program_caps_apply_to_express_consent_patients_and_never_lift_the_exemption_caps(
    rt: Runtime, make_patient: Callable[..., Any], program: Any
) -> None:
    """A program with express consent that set 2 check-ins a week: its patients (express consent) get the
    daily HF check-in on 2 days of any 7 and the others are skipped with the program's reason on the
    timeline (issue 10 item 6: the scheduler used the exemption's 3 a week instead)."""
    from app.models import Program, TimelineEvent

    with rt.sessions() as session, session.begin():
        stored = session.get(Program, program.id)
        assert stored is not None
        stored.uses_healthcare_exemption, stored.weekly_cap = False, 2
    patient = make_patient(timezone="America/Chicago")
    _enroll(rt, patient, CHICAGO_9AM_DAY1.date(), CHICAGO_9AM_DAY1 - dt.timedelta(hours=1))
    for day in range(4):
        tick(rt, CHICAGO_9AM_DAY1 + dt.timedelta(days=day))
        with rt.sessions() as session, session.begin():
            for conversation in session.scalars(select(Conversation).where(Conversation.status == "active")):
                conversation.status, conversation.result = "expired", "no_response"
    with rt.sessions() as session:
        outcomes = [t.outcome for t in session.scalars(select(ScheduledTouch).order_by(ScheduledTouch.due_at))][:4]
        notes = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "touch_skipped")).all()
    assert outcomes == ["started", "started", "program_weekly_cap", "program_weekly_cap"]
    assert [n.code for n in notes] == ["program_weekly_cap", "program_weekly_cap"]


def test_caps_per_patient_follow_the_consent_basis_and_the_program() -> None:
    from app.scheduling.caps import EXEMPTION, Limits, cap_reached, limits_for

    assert limits_for(True, None, None) == EXEMPTION
    # A program cannot lift the exemption's caps (FCC 15-72) ...
    assert limits_for(True, 5, 20) == EXEMPTION
    # ... but a smaller program cap applies to exemption patients too, with the program's reason.
    assert limits_for(True, None, 2) == Limits(1, 2, "daily_cap", "program_weekly_cap")
    assert limits_for(False, None, None) is None
    assert limits_for(False, 2, None) == Limits(2, None, "program_daily_cap", "program_weekly_cap")
    morning = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    twice = [morning, morning + dt.timedelta(hours=2)]
    two_a_day = limits_for(False, 2, None)
    assert two_a_day is not None
    assert cap_reached(twice[:1], morning + dt.timedelta(hours=4), "America/Chicago", two_a_day) is None
    assert cap_reached(twice, morning + dt.timedelta(hours=4), "America/Chicago", two_a_day) == "program_daily_cap"
    # No weekly limit: six earlier days of two a day do not stop the seventh day's first.
    week = [morning - dt.timedelta(days=d) for d in range(1, 7) for _ in range(2)]
    assert cap_reached(week, morning, "America/Chicago", two_a_day) is None


def test_a_batch_starts_one_conversation_per_patient_and_each_its_first_text_once(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    """The batch path (app/scheduling/sweeper.py:_start_batch): three patients due at once, one of them
    in two campaigns due at the same minute: three conversations and three texts; the patient's second
    touch waits for the first conversation (deferred with its reason), none is sent twice."""
    from app.models import TimelineEvent

    patients = [make_patient(timezone="America/Chicago", conditions=["heart_failure", "copd"]) for _ in range(3)]
    for patient in patients:
        _enroll(rt, patient, CHICAGO_9AM_DAY1.date(), CHICAGO_9AM_DAY1 - dt.timedelta(hours=1))
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patients[0]), "copd-monitoring", CHICAGO_9AM_DAY1.date(), rt.now())
        copd = session.scalars(
            select(ScheduledTouch).where(ScheduledTouch.touch_id != "daily-check").order_by(ScheduledTouch.due_at)
        ).first()
        assert copd is not None
        copd.due_at = copd.scheduled_for = CHICAGO_9AM_DAY1
    counts = tick(rt, CHICAGO_9AM_DAY1 + dt.timedelta(minutes=1))
    assert counts["started"] == 3 and counts["deferred"] == 1
    with rt.sessions() as session:
        conversations = session.scalars(select(Conversation)).all()
        texts = session.scalars(select(Message).where(Message.direction == "outbound")).all()
        deferred = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "touch_deferred")).all()
        enrollments = session.scalars(select(Enrollment)).all()
    assert sorted(c.patient_id for c in conversations) == sorted(p.id for p in patients)
    assert sorted(t.conversation_id for t in texts) == sorted(c.id for c in conversations)
    assert [d.code for d in deferred] == ["conversation_active"]
    # next_due_at is the earliest pending touch of each enrollment after the batch (one UPDATE).
    with rt.sessions() as session:
        for enrollment in enrollments:
            earliest = session.scalar(
                select(ScheduledTouch.due_at)
                .where(ScheduledTouch.enrollment_id == enrollment.id, ScheduledTouch.status == "pending")
                .order_by(ScheduledTouch.due_at)
                .limit(1)
            )
            assert enrollment.next_due_at == earliest


def test_a_batch_that_fails_is_redone_one_touch_at_a_time(
    rt: Runtime, make_patient: Callable[..., Any], monkeypatch: Any
) -> None:
    from sqlalchemy.exc import IntegrityError

    from app.scheduling import sweeper

    def conflict(*_args: Any) -> bool:
        raise IntegrityError("INSERT INTO conversations", {}, Exception("uq_conversations_active_patient"))

    monkeypatch.setattr(sweeper, "_start_batch", conflict)
    for _ in range(2):
        _enroll(rt, make_patient(timezone="America/Chicago"), CHICAGO_9AM_DAY1.date(), CHICAGO_9AM_DAY1)
    counts = tick(rt, CHICAGO_9AM_DAY1 + dt.timedelta(minutes=1))
    assert counts["started"] == 2
    with rt.sessions() as session:
        assert len(session.scalars(select(Message).where(Message.direction == "outbound")).all()) == 2
