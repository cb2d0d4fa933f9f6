"""Care plans and the combined check-in (issue 12 items 3 and 4) through the API and signed webhooks on
PostgreSQL and Redis: a plan with heart failure, diabetes and COPD is ONE conversation a day asking the
shared breathing question once; changing the plan re-derives the pending schedule and keeps what was sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import Conversation, Enrollment, ScheduledTouch, ThresholdChange, TimelineEvent, TouchStatus
from app.runtime import Runtime
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import AUTH, inbound_params, install_clock, run_worker, texts_to
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]
# Monday 30 Nov 2026, 08:00 in New York (the factory's time zone); the check-in is due at 09:00 local.
MORNING = dt.datetime(2026, 11, 30, 13, 0, tzinfo=dt.UTC)
NINE = MORNING + dt.timedelta(hours=1)
#: The combined check-in of HF + diabetes + COPD on a good day: HF (weight, 7 yes/no), the blood sugar,
#: then COPD without its breathing, chest-pain and ankle-swelling questions (asked for HF): 9 yes/no.
GOOD_DAY = ("180", *["no"] * 7, "120", *["no"] * 9)


def _plan(client: FlaskClient, patient_id: int, **body: Any) -> Any:
    return client.put(
        f"/api/v1/patients/{patient_id}/care-plan", json={"changed_by": "rn@example.org", **body}, headers=AUTH
    )


def _text(post: Poster, rt: Runtime, phone: str, body: str) -> None:
    assert post("/twilio/sms", inbound_params(phone, body)).status_code == 200
    run_worker(rt)


def _enroll(client: FlaskClient, patient_id: int, campaign: str, **extra: Any) -> None:
    response = client.post(
        "/api/v1/enrollments",
        json={"patient_id": patient_id, "campaign": campaign, "anchor_date": "2026-11-30", **extra},
        headers=AUTH,
    )
    assert response.status_code in (200, 201), response.get_json()


def test_three_conditions_are_one_conversation_a_day_asking_breathing_once(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient(conditions=["heart_failure", "diabetes", "copd"])
    for campaign in ("hf-remote-monitoring", "diabetes-monitoring", "copd-monitoring"):
        _enroll(client, patient.id, campaign)

    response = _plan(
        client,
        patient.id,
        conditions=["heart_failure", "diabetes", "copd"],
        goals=[{"text": "walk 10 minutes a day", "confidence": 7}],
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["monitored_modules"] == ["hf", "diabetes", "copd"]
    enrollments = client.get(f"/api/v1/patients/{patient.id}/enrollments", headers=AUTH).get_json()["enrollments"]
    active = [e["campaign"] for e in enrollments if e["status"] == "active"]
    # The three module campaigns gave way to one combined check-in; the goal has its own weekly check.
    assert active == ["chronic-care", "goal-check"]

    for day in range(2):
        clock.set(NINE + dt.timedelta(days=day))
        counts = tick(rt, rt.now())
        assert counts["started"] == 1
        run_worker(rt)
        before = len(texts_to(fake_twilio, patient.phone))
        for body in GOOD_DAY:
            _text(post_twilio, rt, patient.phone, body)
        today = texts_to(fake_twilio, patient.phone)[before - 1 :]
        assert sum("short of breath than usual" in t for t in today) == 1
        assert any("blood sugar" in t for t in today) and any("coughing more" in t for t in today)
        assert "Thank you" in today[-1]

    with rt.sessions() as session:
        conversations = session.scalars(select(Conversation).order_by(Conversation.id)).all()
        assert [(c.flow_id, c.status) for c in conversations] == [
            ("chronic-care-check.hf.diabetes.copd", "completed"),
            ("chronic-care-check.hf.diabetes.copd", "completed"),
        ]
        starts = [c.started_at.date() for c in conversations]
        assert starts == [dt.date(2026, 11, 30), dt.date(2026, 12, 1)]
    assert client.get("/api/v1/escalations?status=open", headers=AUTH).get_json()["escalations"] == []


def test_each_modules_rule_fires_on_its_own_trigger_in_the_combined_conversation(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, NINE)
    patient = make_patient(conditions=["heart_failure", "diabetes", "copd"])
    assert _plan(client, patient.id, conditions=["heart_failure", "diabetes", "copd"]).status_code == 200
    _enroll(client, patient.id, "chronic-care")
    assert tick(rt, rt.now())["started"] == 1
    run_worker(rt)
    # Low sugar (diabetes) after a calm HF part, not helped, rechecked (a reply during the 15-minute wait
    # answers the recheck); then yes to more coughing (COPD yellow zone), the first COPD question asked.
    for body in ("180", *["no"] * 7, "60", "no", "90", "yes"):
        _text(post_twilio, rt, patient.phone, body)
    reasons = {
        reason
        for e in client.get("/api/v1/escalations?status=open", headers=AUTH).get_json()["escalations"]
        for reason in e["reasons"]
    }
    assert reasons == {"low_glucose", "copd_yellow_zone"}, reasons


def test_a_plan_change_rederives_pending_occurrences_and_keeps_the_sent_ones(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any]
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(conditions=["heart_failure", "copd"])
    _enroll(client, patient.id, "medication-adherence", variables={"dose_times": "08:00", "medication_name": "x"})
    assert tick(rt, rt.now())["started"] == 1  # today's 08:00 dose reminder went out
    with rt.sessions() as session:
        sent = session.scalars(select(ScheduledTouch).where(ScheduledTouch.status == TouchStatus.DONE)).one()
        sent_key = sent.occurrence_key

    response = _plan(
        client,
        patient.id,
        conditions=["heart_failure", "copd"],
        medications=[{"name": "furosemide", "dose": "40 mg", "times": ["08:00", "20:00"]}],
        thresholds={"weight_gain_1_day_lb": 2},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["medications"] == [{"name": "furosemide", "dose": "40 mg", "times": ["08:00", "20:00"]}]
    [threshold] = body["thresholds"]
    assert (threshold["name"], threshold["value"], threshold["default"]) == ("weight_gain_1_day_lb", 2.0, 3.0)
    assert threshold["changed_by"] == "rn@example.org" and threshold["changed_at"].startswith("2026-11-30T13:00")

    with rt.sessions() as session:
        done = session.scalars(select(ScheduledTouch).where(ScheduledTouch.status == TouchStatus.DONE)).all()
        assert [t.occurrence_key for t in done] == [sent_key]  # what was sent is kept, not planned again
        pending = session.scalars(
            select(ScheduledTouch)
            .where(ScheduledTouch.status == TouchStatus.PENDING)
            .order_by(ScheduledTouch.scheduled_for)
        ).all()
        # 20:00 tonight (01:00 UTC) is new; tomorrow has both doses.
        assert [t.scheduled_for for t in pending[:3]] == [
            dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 1, 13, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC),
        ]
        enrollment = session.scalars(select(Enrollment)).one()
        assert enrollment.variables["dose_times"] == "08:00,20:00"
        assert session.scalars(select(TimelineEvent.code).where(TimelineEvent.kind == "schedule_rederived")).all()

    # Back to the default: the change is recorded too, with who and when.
    assert _plan(client, patient.id, conditions=["heart_failure", "copd"]).status_code == 200
    with rt.sessions() as session:
        changes = session.scalars(select(ThresholdChange).order_by(ThresholdChange.id)).all()
        assert [(c.name, c.old_value, c.new_value, c.changed_by) for c in changes] == [
            ("weight_gain_1_day_lb", None, 2.0, "rn@example.org"),
            ("weight_gain_1_day_lb", 2.0, None, "rn@example.org"),
        ]


def test_a_monitoring_change_rederives_the_combined_check_in_and_changes_what_it_asks(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(conditions=["heart_failure", "copd"])
    _enroll(client, patient.id, "chronic-care")
    with rt.sessions() as session:
        keys_before = set(session.scalars(select(ScheduledTouch.occurrence_key)).all())
    response = _plan(client, patient.id, conditions=["heart_failure", "copd"], monitoring=["copd"])
    assert response.status_code == 200 and response.get_json()["monitored_modules"] == ["copd"]
    with rt.sessions() as session:
        pending = set(
            session.scalars(
                select(ScheduledTouch.occurrence_key).where(ScheduledTouch.status == TouchStatus.PENDING)
            ).all()
        )
        assert pending and not pending & keys_before  # derived again under a new schedule version
        codes = session.scalars(select(TimelineEvent.code).where(TimelineEvent.kind == "schedule_rederived")).all()
        assert "care_plan_changed" in codes
    rt.clock.set(NINE)  # type: ignore[attr-defined]
    assert tick(rt, rt.now())["started"] == 1
    run_worker(rt)
    with rt.sessions() as session:
        assert session.scalars(select(Conversation.flow_id)).one() == "chronic-care-check.copd"
    assert "short of breath" in texts_to(fake_twilio, patient.phone)[-1]


def test_care_plan_errors_have_the_api_shape(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient()
    bad = _plan(client, patient.id, monitoring=["kidney"], thresholds={"nope": 1})
    assert bad.status_code == 422
    fields = bad.get_json()["error"]["fields"]
    assert "unknown modules: kidney" in fields["monitoring"] and "unknown thresholds: nope" in fields["thresholds"]
    assert _plan(client, patient.id, goals=[{"text": "walk", "confidence": 11}]).status_code == 422
    missing = client.get("/api/v1/patients/999999/care-plan", headers=AUTH)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    empty = client.get(f"/api/v1/patients/{patient.id}/care-plan", headers=AUTH).get_json()
    assert (empty["revision"], empty["monitored_modules"]) == (0, ["hf"])
    spec = client.get("/api/v1/openapi.json").get_json()
    assert set(spec["paths"]["/patients/{patient_id}/care-plan"]) == {"get", "put"}


def test_a_threshold_set_through_post_patients_is_recorded_with_who_and_when(
    rt: Runtime, client: FlaskClient, program: Any
) -> None:
    install_clock(rt, MORNING)
    patient = {
        "mrn": "T1",
        "given_name": "Ana",
        "family_name": "Diaz",
        "phone": "+12025550188",
        "conditions": ["heart_failure"],
        "thresholds": {"weight_gain_1_day_lb": 2},
    }
    created = client.post("/api/v1/patients", json=patient, headers=AUTH)
    assert created.status_code == 201, created.get_json()
    patient_id = created.get_json()["id"]
    assert client.post("/api/v1/patients", json=patient, headers=AUTH).status_code == 200  # unchanged: no row
    plan = client.get(f"/api/v1/patients/{patient_id}/care-plan", headers=AUTH).get_json()
    [threshold] = plan["thresholds"]
    assert threshold["value"] == 2.0 and threshold["changed_by"] and threshold["changed_at"].startswith("2026-11-30")
    with rt.sessions() as session:
        assert len(session.scalars(select(ThresholdChange)).all()) == 1


def test_staff_can_start_the_combined_check_in_now_by_its_composition_id(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any]
) -> None:
    install_clock(rt, NINE)
    patient = make_patient(conditions=["heart_failure", "copd"])
    started = client.post(
        f"/api/v1/patients/{patient.id}/conversations", json={"flow": "chronic-care-check"}, headers=AUTH
    )
    assert started.status_code == 201, started.get_json()
    assert started.get_json()["flow"] == "chronic-care-check.hf.copd"
    nobody = make_patient(conditions=["depression"])
    refused = client.post(
        f"/api/v1/patients/{nobody.id}/conversations", json={"flow": "chronic-care-check"}, headers=AUTH
    )
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "nothing_to_monitor"


def test_care_plan_thresholds_that_would_switch_an_alert_off_are_refused(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient(conditions=["heart_failure", "diabetes"])
    both = ["heart_failure", "diabetes"]
    refused = [
        {"glucose_very_low_mgdl": 0},
        {"glucose_low_mgdl": -50},
        {"glucose_very_high_mgdl": 10000},
        {"weight_gain_1_day_lb": 9999},
        {"glucose_low_mgdl": 400, "glucose_high_mgdl": 100},
        {"glucose_low_mgdl": 90, "glucose_very_low_mgdl": 90},  # each in range, but the bands touch
    ]
    for thresholds in refused:
        bad = _plan(client, patient.id, conditions=both, thresholds=thresholds)
        assert bad.status_code == 422, thresholds
        error = bad.get_json()["error"]
        assert error["code"] == "invalid" and "thresholds" in error["fields"], error
    low_high = _plan(
        client, patient.id, conditions=both, thresholds={"glucose_low_mgdl": 400, "glucose_high_mgdl": 100}
    )
    assert "must be below" in low_high.get_json()["error"]["fields"]["thresholds"]
    copd_only = _plan(client, patient.id, conditions=["copd"], thresholds={"glucose_low_mgdl": 80})
    assert copd_only.status_code == 422
    assert "does not monitor diabetes" in copd_only.get_json()["error"]["fields"]["thresholds"]
    # Nothing refused was written; a plausible plan is still accepted.
    assert client.get(f"/api/v1/patients/{patient.id}/care-plan", headers=AUTH).get_json()["revision"] == 0
    good = {"glucose_very_low_mgdl": 60, "glucose_low_mgdl": 80, "weight_gain_1_day_lb": 2}
    ok = _plan(client, patient.id, conditions=both, thresholds=good)
    assert ok.status_code == 200, ok.get_json()
    with rt.sessions() as session:
        assert len(session.scalars(select(ThresholdChange)).all()) == 3


def test_post_patients_refuses_implausible_thresholds_in_the_error_shape(
    rt: Runtime, client: FlaskClient, program: Any
) -> None:
    patient = {
        "mrn": "T2",
        "given_name": "Ana",
        "family_name": "Diaz",
        "phone": "+12025550189",
        "conditions": ["diabetes"],
    }
    for thresholds in ({"glucose_very_low_mgdl": 0}, {"weight_gain_1_day_lb": 9999}, {"glucose_low_mgdl": 300}):
        bad = client.post("/api/v1/patients", json={**patient, "thresholds": thresholds}, headers=AUTH)
        assert bad.status_code == 422, (thresholds, bad.get_json())
        assert "thresholds" in bad.get_json()["error"]["fields"]
    ok = client.post("/api/v1/patients", json={**patient, "thresholds": {"glucose_low_mgdl": 80}}, headers=AUTH)
    assert ok.status_code == 201, ok.get_json()


def test_weekly_goal_check_writes_the_confidence_back_and_a_low_one_opens_a_routine_task(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient(conditions=["heart_failure"])
    response = _plan(
        client,
        patient.id,
        conditions=["heart_failure"],
        goals=[
            {"text": "take my water pill every morning", "weekly_check": False},
            {"text": "walk 10 minutes a day", "confidence": 7},
        ],
    )
    assert response.status_code == 200, response.get_json()
    enrollments = client.get(f"/api/v1/patients/{patient.id}/enrollments", headers=AUTH).get_json()["enrollments"]
    assert [e["campaign"] for e in enrollments if e["status"] == "active"] == ["goal-check"]

    # A week later at 11:00 New York: "This week, did you walk 10 minutes a day?"
    clock.set(dt.datetime(2026, 12, 7, 16, 0, tzinfo=dt.UTC))
    assert tick(rt, rt.now())["started"] == 1
    run_worker(rt)
    [question] = texts_to(fake_twilio, patient.phone)
    assert "Your goal: walk 10 minutes a day. This week, did you do it?" in question
    _text(post_twilio, rt, patient.phone, "no")
    assert "from 0 (not sure) to 10 (very sure)" in texts_to(fake_twilio, patient.phone)[-1]
    _text(post_twilio, rt, patient.phone, "3")
    assert "talk about your goal" in texts_to(fake_twilio, patient.phone)[-1]

    goals = client.get(f"/api/v1/patients/{patient.id}/care-plan", headers=AUTH).get_json()["goals"]
    assert [(g["text"], g["confidence"]) for g in goals] == [
        ("take my water pill every morning", None),
        ("walk 10 minutes a day", 3),
    ]
    assert goals[1]["confidence_at"] == "2026-12-07T16:00:00+00:00"
    assert goals[0]["confidence_at"] is None
    [task] = client.get("/api/v1/escalations", headers=AUTH).get_json()["escalations"]
    assert (task["level"], task["reasons"]) == ("ROUTINE", ["goal_low_confidence"])

    # A plan with no weekly-checked goal stops the weekly check.
    assert _plan(client, patient.id, conditions=["heart_failure"], goals=[]).status_code == 200
    enrollments = client.get(f"/api/v1/patients/{patient.id}/enrollments", headers=AUTH).get_json()["enrollments"]
    assert [e["campaign"] for e in enrollments if e["status"] == "active"] == []


def test_a_confident_answer_is_written_back_without_a_task(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient(conditions=["heart_failure"], language="es")
    assert _plan(client, patient.id, goals=[{"text": "caminar 10 minutos"}]).status_code == 200
    clock.set(dt.datetime(2026, 12, 7, 16, 0, tzinfo=dt.UTC))
    assert tick(rt, rt.now())["started"] == 1
    run_worker(rt)
    assert "Su meta: caminar 10 minutos" in texts_to(fake_twilio, patient.phone)[-1]
    _text(post_twilio, rt, patient.phone, "sí")
    _text(post_twilio, rt, patient.phone, "9")
    [goal] = client.get(f"/api/v1/patients/{patient.id}/care-plan", headers=AUTH).get_json()["goals"]
    assert goal["confidence"] == 9
    assert client.get("/api/v1/escalations", headers=AUTH).get_json()["escalations"] == []
