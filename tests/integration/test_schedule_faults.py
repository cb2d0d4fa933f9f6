"""The four schedule faults issue 10 reproduced on main, as regression tests on PostgreSQL, and the kind of
fault each belongs to: the schedule must follow the patient's time zone, own times, anchor and campaign
version; a missing anchor is the patient's local today; a passed time starts tomorrow; an unanswered
conversation never delays the next check-in; a cap never skips silently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import Conversation, Enrollment, Message, Patient, Program, ScheduledTouch, TimelineEvent, TouchStatus
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.scheduling.sweeper import tick
from tests.conftest import API_TOKEN
from tests.integration.sms_helpers import install_clock

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
NY, LA = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")


def local(tz: ZoneInfo, *parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=tz).astimezone(dt.UTC)  # type: ignore[misc]


def pending(rt: Runtime) -> list[ScheduledTouch]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(ScheduledTouch)
                .where(ScheduledTouch.status == TouchStatus.PENDING)
                .order_by(ScheduledTouch.due_at)
            ).all()
        )


def started_at(rt: Runtime) -> list[dt.datetime]:
    with rt.sessions() as session:
        return list(session.scalars(select(Conversation.started_at).order_by(Conversation.started_at)).all())


def timeline(rt: Runtime, kind: str | None = None) -> list[TimelineEvent]:
    with rt.sessions() as session:
        query = select(TimelineEvent).order_by(TimelineEvent.id)
        if kind:
            query = query.where(TimelineEvent.kind == kind)
        return list(session.scalars(query).all())


def api_patient(mrn: str, timezone: str, **extra: Any) -> dict[str, Any]:
    return {
        "mrn": mrn,
        "given_name": "Rosa",
        "family_name": "Diaz",
        "phone": "+13125550177",
        "timezone": timezone,
        "conditions": ["heart_failure"],
        **extra,
    }


def close_conversations(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        for conversation in session.scalars(select(Conversation).where(Conversation.status == "active")):
            conversation.status, conversation.result = "expired", "no_response"


# ------------------------------------------------------------------------ 1. the time zone changes
def test_a_move_from_new_york_to_los_angeles_rederives_every_pending_reminder(
    client: FlaskClient, program: Any, rt: Runtime
) -> None:
    clock = install_clock(rt, local(NY, 2026, 11, 23, 7, 0))
    assert (
        client.post("/api/v1/patients", headers=AUTH, json=api_patient("TZ-1", "America/New_York")).status_code == 201
    )
    enrolled = client.post(
        "/api/v1/enrollments", headers=AUTH, json={"mrn": "TZ-1", "campaign": "medication-adherence"}
    )
    assert enrolled.status_code == 201
    assert enrolled.json["anchor_date"] == "2026-11-23"
    assert tick(rt, local(NY, 2026, 11, 23, 8, 0))["started"] == 1  # 08:00 in New York
    close_conversations(rt)

    clock.set(local(NY, 2026, 11, 23, 12, 0))
    moved = client.post("/api/v1/patients", headers=AUTH, json=api_patient("TZ-1", "America/Los_Angeles"))
    assert moved.status_code == 200
    after = pending(rt)
    assert after, "the reminders must go on"
    assert {t.scheduled_for.astimezone(LA).strftime("%H:%M") for t in after} == {"08:00"}
    assert after[0].scheduled_for == local(LA, 2026, 11, 24, 8, 0)  # today's dose was sent: not again today
    assert all(":v2:" in t.occurrence_key for t in after)
    assert [e.code for e in timeline(rt, "schedule_rederived")] == ["schedule_changed"]

    # 08:00 New York is 05:00 in Los Angeles: nothing; 08:00 Los Angeles: the reminder, not stale.
    assert tick(rt, local(NY, 2026, 11, 24, 8, 0))["started"] == 0
    counts = tick(rt, local(LA, 2026, 11, 24, 8, 0))
    assert (counts["started"], counts["skipped"]) == (1, 0)
    close_conversations(rt)
    assert tick(rt, local(LA, 2026, 11, 25, 8, 0))["started"] == 1
    with rt.sessions() as session:
        assert session.scalar(select(ScheduledTouch.id).where(ScheduledTouch.outcome == "stale")) is None


def test_a_zone_changed_behind_the_schedules_back_is_caught_before_anything_is_sent(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    """A path that changes the zone without rescheduling (a direct update, another importer): the sweeper
    compares the enrollment's basis and derives it again instead of sending at the old zone's time."""
    patient = make_patient(timezone="America/New_York")
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "hf-remote-monitoring", None, local(NY, 2026, 11, 23, 7, 0))
    with rt.sessions() as session, session.begin():
        session.get(Patient, patient.id).timezone = "America/Los_Angeles"  # type: ignore[union-attr]
    counts = tick(rt, local(NY, 2026, 11, 23, 9, 0))  # 06:00 in Los Angeles
    assert (counts["started"], counts["rescheduled"]) == (0, 1)
    assert pending(rt)[0].scheduled_for == local(LA, 2026, 11, 23, 9, 0)
    assert tick(rt, local(LA, 2026, 11, 23, 9, 0))["started"] == 1


def test_new_dose_times_and_a_corrected_anchor_rederive_pending_and_keep_sent_ones(
    client: FlaskClient, program: Any, rt: Runtime
) -> None:
    install_clock(rt, local(NY, 2026, 11, 23, 7, 0))
    client.post("/api/v1/patients", headers=AUTH, json=api_patient("TZ-2", "America/New_York"))
    body = {"mrn": "TZ-2", "campaign": "medication-adherence", "variables": {"dose_times": "08:00"}}
    assert client.post("/api/v1/enrollments", headers=AUTH, json=body).status_code == 201
    assert tick(rt, local(NY, 2026, 11, 23, 8, 0))["started"] == 1
    close_conversations(rt)
    rt.clock = lambda: local(NY, 2026, 11, 23, 9, 0)
    body["variables"] = {"dose_times": "20:00,08:00,14:00"}
    assert client.post("/api/v1/enrollments", headers=AUTH, json=body).status_code == 201
    today = [t for t in pending(rt) if t.scheduled_for.astimezone(NY).date() == dt.date(2026, 11, 23)]
    # 08:00 was sent (slot 0 kept); today's 14:00 and 20:00 are the new ones.
    assert [t.scheduled_for.astimezone(NY).strftime("%H:%M") for t in today] == ["14:00", "20:00"]
    with rt.sessions() as session:
        sent = session.scalars(select(ScheduledTouch).where(ScheduledTouch.status == TouchStatus.DONE)).all()
    assert len(sent) == 1 and sent[0].scheduled_for == local(NY, 2026, 11, 23, 8, 0)


# ------------------------------------------------------------------ 2. no anchor at 19:00 Pacific
def test_no_anchor_at_19_00_pacific_is_the_patients_today_not_the_utc_date(
    client: FlaskClient, program: Any, rt: Runtime
) -> None:
    install_clock(rt, local(LA, 2026, 11, 24, 19, 0))  # 03:00 UTC on the 25th
    client.post("/api/v1/patients", headers=AUTH, json=api_patient("LA-1", "America/Los_Angeles"))
    enrolled = client.post("/api/v1/enrollments", headers=AUTH, json={"mrn": "LA-1", "campaign": "post-discharge-30d"})
    assert enrolled.status_code == 201
    assert enrolled.json["anchor_date"] == "2026-11-24"
    first = pending(rt)[0]
    assert first.touch_id == "red-call" and first.scheduled_for == local(LA, 2026, 11, 25, 10, 0)  # day 1
    assert enrolled.json["next_due_at"] == first.due_at.isoformat()


def test_the_cli_enrolls_with_the_patients_today_when_no_anchor_is_given(
    app: Any, rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    install_clock(rt, local(LA, 2026, 11, 24, 19, 0))
    patient = make_patient(timezone="America/Los_Angeles")
    result = app.test_cli_runner().invoke(args=["enroll", patient.mrn, "post-discharge-tcm"])
    assert result.exit_code == 0, result.output
    with rt.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
    assert (enrollment.campaign, enrollment.anchor_date) == ("post-discharge-30d", dt.date(2026, 11, 24))


# ------------------------------------------ 3. a passed first touch, and an open conversation
def test_enrolled_at_19_30_the_first_check_in_is_tomorrow_morning_not_tonight(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient(timezone="America/New_York")
    evening = local(NY, 2026, 11, 23, 19, 30)
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "hf-remote-monitoring", dt.date(2026, 11, 23), evening)
    assert pending(rt)[0].scheduled_for == local(NY, 2026, 11, 24, 9, 0)
    assert tick(rt, evening)["started"] == 0
    assert tick(rt, local(NY, 2026, 11, 24, 9, 0))["started"] == 1
    assert [t.astimezone(NY).strftime("%d %H:%M") for t in started_at(rt)] == ["24 09:00"]


def test_an_unanswered_conversation_is_closed_so_the_next_check_in_goes_out_at_nine(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    """Main: a conversation opened at 19:30 (here: staff's "check on this patient now") and left
    unanswered pushed the next morning's 09:00 check-in to 19:30, its 24-hour expiry."""
    from app.scheduling.on_demand import start_flow_now

    patient = make_patient(timezone="America/New_York")
    evening = local(NY, 2026, 11, 23, 19, 30)
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "hf-remote-monitoring", dt.date(2026, 11, 23), evening)
        start_flow_now(session, rt, session.get(Patient, patient.id), "hf-daily-check", evening)  # type: ignore[arg-type]
    tick(rt, local(NY, 2026, 11, 24, 8, 0))  # its reminder may go out; the conversation stays open
    counts = tick(rt, local(NY, 2026, 11, 24, 9, 0))
    assert (counts["started"], counts["deferred"]) == (1, 0)
    assert [t.astimezone(NY).strftime("%d %H:%M") for t in started_at(rt)] == ["23 19:30", "24 09:00"]
    with rt.sessions() as session:
        first = session.scalars(select(Conversation).order_by(Conversation.id)).first()
        assert first is not None and (first.status, first.result) == ("expired", "no_response")
    assert [e.code for e in timeline(rt, "conversation_closed")] == ["closed_unanswered"]


def test_a_patient_answering_right_now_is_not_interrupted_and_the_wait_is_on_the_timeline(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    from app.scheduling.on_demand import start_flow_now

    patient = make_patient(timezone="America/New_York")
    morning = local(NY, 2026, 11, 24, 8, 40)
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "hf-remote-monitoring", dt.date(2026, 11, 24), morning)
        conversation = start_flow_now(session, rt, session.get(Patient, patient.id), "hf-daily-check", morning)  # type: ignore[arg-type]
        session.add(
            Message(
                patient_id=patient.id,
                conversation_id=conversation.id,
                direction="inbound",
                channel="sms",
                kind="reply",
                body="183",
                status="received",
                created_at=morning + dt.timedelta(minutes=15),
            )
        )
    counts = tick(rt, local(NY, 2026, 11, 24, 9, 0))
    assert (counts["started"], counts["deferred"]) == (0, 1)
    tick(rt, local(NY, 2026, 11, 24, 9, 15))  # deferred again: one timeline row, not one per retry
    rows = timeline(rt, "touch_deferred")
    assert [r.code for r in rows] == ["conversation_active"]
    from app.scheduling.reasons import reason_text

    assert reason_text(rows[0].code, "es") != reason_text(rows[0].code, "en")


# --------------------------------------------------------------- 4. the exemption cap, never silent
def test_the_api_refuses_to_enroll_an_exemption_patient_past_the_caps_until_consent_is_recorded(
    client: FlaskClient, program: Any, rt: Runtime
) -> None:
    with rt.sessions() as session, session.begin():
        session.get(Program, program.id).uses_healthcare_exemption = True  # type: ignore[union-attr]
    created = client.post("/api/v1/patients", headers=AUTH, json=api_patient("EX-1", "America/Chicago"))
    assert created.json["consent"] == {
        "basis": "health_care_exemption",
        "recorded": False,
        "date": None,
        "recorded_by": None,
        "channels": ["sms", "voice"],
        "capped": True,
    }
    refused = client.post("/api/v1/enrollments", headers=AUTH, json={"mrn": "EX-1", "campaign": "hf-remote-monitoring"})
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "consent_required"
    assert "3 a week" in refused.json["error"]["message"]
    assert refused.json["error"]["fields"] == {"consent": "weekly_cap"}
    with rt.sessions() as session:
        assert session.scalar(select(Enrollment.id)) is None and session.scalar(select(ScheduledTouch.id)) is None
    # Three a week fits the exemption: diabetes monitoring enrolls without express consent.
    diabetic = api_patient("EX-2", "America/Chicago", phone="+13125550178", conditions=["diabetes"])
    client.post("/api/v1/patients", headers=AUTH, json=diabetic)
    assert (
        client.post(
            "/api/v1/enrollments", headers=AUTH, json={"mrn": "EX-2", "campaign": "diabetes-monitoring"}
        ).status_code
        == 201
    )

    consent = {"basis": "express_written", "date": "2026-11-20", "recorded_by": "RN Lee", "channels": ["sms"]}
    updated = client.post(
        "/api/v1/patients", headers=AUTH, json=api_patient("EX-1", "America/Chicago", consent=consent)
    )
    assert updated.status_code == 200
    assert updated.json["consent"] == {
        "basis": "express_written",
        "recorded": True,
        "date": "2026-11-20",
        "recorded_by": "RN Lee",
        "channels": ["sms"],
        "capped": False,
    }
    enrolled = client.post(
        "/api/v1/enrollments", headers=AUTH, json={"mrn": "EX-1", "campaign": "hf-remote-monitoring"}
    )
    assert enrolled.status_code == 201
    events = client.get(f"/api/v1/patients/{created.json['id']}/timeline", headers=AUTH).json["events"]
    assert [(e["kind"], e["code"]) for e in events] == [("consent_recorded", "express_written")]
    assert events[0]["text"]["es"] and events[0]["text"]["en"] != events[0]["text"]["es"]


def test_bad_consent_records_are_422_naming_the_field(client: FlaskClient, program: Any) -> None:
    for consent, field in (
        ({"basis": "a handshake"}, "consent.basis"),
        ({"basis": "express_oral", "date": "2999-01-01"}, "consent.date"),
        ({"basis": "express_oral", "channels": ["fax"]}, "consent.channels.0"),
    ):
        response = client.post(
            "/api/v1/patients", headers=AUTH, json=api_patient("BAD-1", "America/Chicago", consent=consent)
        )
        assert response.status_code == 422, consent
        assert any(key.startswith(field.split(".")[0]) for key in response.json["error"]["fields"]), response.json


def test_the_cli_says_why_it_does_not_enroll_and_enrolls_once_consent_is_recorded(
    app: Any, rt: Runtime, program: Any, make_patient: Callable[..., Any]
) -> None:
    with rt.sessions() as session, session.begin():
        session.get(Program, program.id).uses_healthcare_exemption = True  # type: ignore[union-attr]
    patient = make_patient(timezone="America/Chicago")
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["enroll", patient.mrn, "medication-adherence", "--dose-times", "08:00,20:00"])
    assert refused.exit_code != 0
    assert "1 a day" in refused.output and "record-consent" in refused.output
    recorded = runner.invoke(
        args=["record-consent", patient.mrn, "--basis", "express_oral", "--by", "RN Lee", "--channels", "sms"]
    )
    assert recorded.exit_code == 0, recorded.output
    enrolled = runner.invoke(args=["enroll", patient.mrn, "medication-adherence", "--dose-times", "08:00,20:00"])
    assert enrolled.exit_code == 0, enrolled.output
    with rt.sessions() as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None
        assert (stored.consent_basis, stored.consent_recorded_by, stored.consent_channels) == (
            "express_oral",
            "RN Lee",
            ["sms"],
        )


def test_a_new_campaign_version_seconds_after_nine_rederives_without_dropping_the_nine_oclock(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient(timezone="America/New_York")
    with rt.sessions() as session, session.begin():
        enrollment = enroll(
            session, rt, session.merge(patient), "hf-remote-monitoring", None, local(NY, 2026, 11, 23, 7, 0)
        )
        enrollment.schedule_basis = "an-older-campaign-file:0"
    counts = tick(rt, local(NY, 2026, 11, 23, 9, 0) + dt.timedelta(seconds=20))
    assert (counts["rescheduled"], counts["started"]) == (1, 1)
    assert all(":v2:" in t.occurrence_key for t in pending(rt))
