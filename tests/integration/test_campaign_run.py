"""Campaigns run end to end on PostgreSQL: two schedulers claiming the same due rows, and 30 simulated days
of post-discharge-30d for patients in three time zones (across the end of DST) with every send time
checked. Time moves by ``outreach tick --now`` and the sweeper function, never by sleeping."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.models import Conversation, Message, Patient, ScheduledTouch, TimelineEvent, TouchStatus
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.scheduling.sweeper import tick

ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles")


def test_two_schedulers_claiming_the_same_due_rows_start_each_occurrence_once(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    nine = dt.datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("America/New_York")).astimezone(dt.UTC)
    patients = [make_patient(timezone="America/New_York") for _ in range(60)]
    with rt.sessions() as session, session.begin():
        for patient in patients:
            enroll(
                session, rt, session.merge(patient), "hf-remote-monitoring", nine.date(), nine - dt.timedelta(hours=2)
            )
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            barrier.wait()
            results.append(tick(rt, nine))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(r["started"] for r in results) == 60
    with rt.sessions() as session:
        assert session.scalar(select(func.count(Conversation.id))) == 60
        assert session.scalar(select(func.count(func.distinct(Conversation.patient_id)))) == 60
        prompts = session.scalar(
            select(func.count(Message.id)).where(Message.direction == "outbound", Message.kind == "prompt")
        )
        assert prompts == 60
        done = session.scalar(select(func.count(ScheduledTouch.id)).where(ScheduledTouch.status == TouchStatus.DONE))
        assert done == 60
    # A third run at the same moment finds nothing left to start.
    assert tick(rt, nine)["started"] == 0


def test_thirty_days_of_post_discharge_in_three_time_zones(
    app: Any, rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    """Discharged on 20 October 2026; DST ends on 1 November. Every check-in starts at 10:00 in the patient's
    own zone on days 1, 2, 3 (not reached: nobody answers), 7 and 14 (heart failure) and 30; the patient
    who answered the day-1 call gets no day-2 or day-3 call, and the timeline says why. Every text goes out
    between 08:00 and 21:00 local."""
    discharge = dt.date(2026, 10, 20)
    start = dt.datetime(2026, 10, 20, 12, 0, tzinfo=dt.UTC)
    patients = {zone: make_patient(timezone=zone, conditions=["heart_failure"]) for zone in ZONES}
    reached = make_patient(timezone="America/Chicago", conditions=["diabetes"])
    with rt.sessions() as session, session.begin():
        for patient in [*patients.values(), reached]:
            enroll(session, rt, session.merge(patient), "post-discharge-30d", discharge, start)
    runner = app.test_cli_runner()
    now = start
    end = start + dt.timedelta(days=32)
    ticks = 0
    while now <= end:
        if ticks % 24 == 0:
            result = runner.invoke(args=["tick", "--now", now.isoformat()])
            assert result.exit_code == 0, result.output
        else:
            tick(rt, now)
        ticks += 1
        if now == dt.datetime(2026, 10, 21, 16, 0, tzinfo=dt.UTC):
            # The Chicago diabetes patient answered the whole day-1 call (10:00 CDT = 15:00 UTC).
            with rt.sessions() as session, session.begin():
                conversation = session.scalars(
                    select(Conversation).where(Conversation.patient_id == reached.id, Conversation.status == "active")
                ).one()
                conversation.status, conversation.result, conversation.ended_at = "completed", "completed", now
        now += dt.timedelta(hours=1)

    def starts(patient: Patient) -> list[tuple[int, str, str]]:
        zone = ZoneInfo(patient.timezone)
        with rt.sessions() as session:
            rows = session.scalars(
                select(Conversation).where(Conversation.patient_id == patient.id).order_by(Conversation.started_at)
            ).all()
        return [
            (
                (c.started_at.astimezone(zone).date() - discharge).days,
                c.started_at.astimezone(zone).strftime("%H:%M"),
                c.flow_id,
            )
            for c in rows
            if c.flow_id != "phq9"
        ]

    expected = [
        (1, "10:00", "post-discharge"),
        (2, "10:00", "post-discharge"),
        (3, "10:00", "post-discharge"),
        (7, "10:00", "hf-daily-check"),
        (14, "10:00", "hf-daily-check"),
        (30, "10:00", "phq2"),
    ]
    for zone, patient in patients.items():
        assert starts(patient) == expected, zone
    assert starts(reached) == [
        (1, "10:00", "post-discharge"),
        (7, "10:00", "diabetes-glucose-check"),
        (14, "10:00", "diabetes-glucose-check"),
        (30, "10:00", "phq2"),
    ]
    with rt.sessions() as session:
        skipped = session.scalars(
            select(TimelineEvent.code).where(
                TimelineEvent.patient_id == reached.id, TimelineEvent.kind == "touch_skipped"
            )
        ).all()
        assert skipped == ["already_reached", "already_reached"]
        outbound = session.execute(
            select(Message.created_at, Patient.timezone)
            .join(Patient, Patient.id == Message.patient_id)
            .where(Message.direction == "outbound", Message.kind.in_(["prompt", "system"]))
        ).all()
        # The campaign says "voice first" (channels: [voice, sms]): every check-in is a call.
        channels = set(session.scalars(select(Conversation.channel)))
        assert channels == {"voice"}
        for created_at, zone in outbound:
            assert 8 <= created_at.astimezone(ZoneInfo(zone)).hour < 21, (created_at, zone)
        # Nothing was skipped silently: every skipped or cancelled touch has its timeline row.
        for touch in session.scalars(select(ScheduledTouch).where(ScheduledTouch.status != TouchStatus.DONE)):
            assert touch.status == TouchStatus.SKIPPED
            assert session.scalar(select(TimelineEvent.id).where(TimelineEvent.touch_row_id == touch.id)) is not None
