"""Education as part of the plan (issue 12 item 5) through signed webhooks on PostgreSQL and Redis: a lesson
after the check-in whose answer calls for it, MORE / MÁS for the next part, the scheduled lessons of
post-discharge-30d inside texting hours, and what was sent and read on the timeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from app.flows.lessons import split_parts
from app.messaging.lessons import send_waiting_lessons, start_lesson
from app.models import LessonDelivery, Patient, ScheduledTouch, TimelineEvent
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import AUTH, inbound_params, install_clock, run_worker, start_checkin, texts_to
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]
# 10:00 in New York on two consecutive days.
YESTERDAY = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
TODAY = YESTERDAY + dt.timedelta(days=1)
QUESTIONS = ("breath", "pillows", "swelling", "dizzy", "chest", "fainted", "confused")


def _text(post: Poster, rt: Runtime, phone: str, body: str) -> None:
    response = post("/twilio/sms", inbound_params(phone, body))
    assert response.status_code == 200
    run_worker(rt)


def _timeline(client: FlaskClient, patient_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/patients/{patient_id}/timeline", headers=AUTH)
    assert response.status_code == 200
    return [e for e in reversed(response.json["events"]) if e["kind"] == "education"]


def _weight_gain_check_in(post: Poster, rt: Runtime, patient: Patient, answers: tuple[str, str]) -> None:
    clock = install_clock(rt, YESTERDAY)
    start_checkin(rt, patient, YESTERDAY)
    run_worker(rt)
    for body in ("179", *[answers[1]] * len(QUESTIONS)):
        _text(post, rt, patient.phone, body)
    clock.set(TODAY)
    start_checkin(rt, patient, TODAY)
    run_worker(rt)
    for body in ("183", *[answers[1]] * len(QUESTIONS)):  # up 4 lb overnight: the weight-gain rule fires
        _text(post, rt, patient.phone, body)


def test_weight_gain_sends_the_salt_lesson_after_the_check_in_and_more_sends_the_next_part(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    patient = make_patient()
    lesson = rt.content.lesson("heart-failure-salt-and-fluids", "en")
    assert lesson is not None
    parts = split_parts(lesson.body)
    assert len(parts) >= 3
    _weight_gain_check_in(post_twilio, rt, patient, ("183", "no"))
    sent = texts_to(fake_twilio, patient.phone)
    # The lesson closes the check-in's last text (one text: it cannot arrive before the thanks): title,
    # first part, "reply MORE".
    closing, lesson_start = sent[-1].split(f"\n\n{lesson.title}\n\n")
    assert closing.startswith("Thank you")
    assert lesson_start.startswith(parts[0]) and lesson_start.endswith(f"(1 of {len(parts)}).")
    # Yesterday's check-in (no gain) sent no lesson.
    assert sum(lesson.title in t for t in sent) == 1

    _text(post_twilio, rt, patient.phone, "MORE")
    after = texts_to(fake_twilio, patient.phone)
    assert parts[1] in after[-1] and f"(2 of {len(parts)})" in after[-1]
    for _ in parts[2:]:
        _text(post_twilio, rt, patient.phone, "more")
    final = texts_to(fake_twilio, patient.phone)
    assert final[-1] == parts[-1]  # the last part offers no MORE
    count = len(final)
    # Nothing left: MORE is an ordinary message for the inbox now, and no part is sent twice.
    _text(post_twilio, rt, patient.phone, "MORE")
    assert not any(parts[-1] == t for t in texts_to(fake_twilio, patient.phone)[count:])

    events = _timeline(client, patient.id)
    sent_parts = [e["detail"]["part"] for e in events if e["code"] == "education_sent"]
    read_parts = [e["detail"]["part"] for e in events if e["code"] == "education_read"]
    assert sent_parts == list(range(1, len(parts) + 1))
    assert read_parts == list(range(1, len(parts)))
    assert {e["detail"]["topic"] for e in events} == {"heart-failure-salt-and-fluids"}
    assert events[0]["detail"]["cause"] == "trigger"
    assert events[-1]["text"]["en"].startswith("Lesson part sent")


def test_spanish_patient_gets_the_lesson_in_spanish_and_mas_sends_the_next_part(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    patient = make_patient(language="es")
    lesson = rt.content.lesson("heart-failure-salt-and-fluids", "es")
    assert lesson is not None and lesson.language == "es"
    parts = split_parts(lesson.body)
    _weight_gain_check_in(post_twilio, rt, patient, ("183", "no"))
    sent = texts_to(fake_twilio, patient.phone)
    assert f"\n\n{lesson.title}\n\n" in sent[-1] and "Responda MAS" in sent[-1]
    _text(post_twilio, rt, patient.phone, "MÁS")
    assert parts[1] in texts_to(fake_twilio, patient.phone)[-1]
    _text(post_twilio, rt, patient.phone, "mas")
    assert parts[2] in texts_to(fake_twilio, patient.phone)[-1]


def test_a_lesson_due_at_night_waits_for_the_morning(
    rt: Runtime, make_patient: Callable[..., Any], fake_twilio: FakeTwilio
) -> None:
    patient = make_patient()
    night = dt.datetime(2026, 11, 25, 3, 30, tzinfo=dt.UTC)  # 22:30 in New York
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        lesson = start_lesson(session, rt, owner, "when-to-call", night, cause="trigger", source_key="t:1")
        assert lesson is not None and lesson.status == "waiting"
        assert lesson.due_at == dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # 08:00 local
        # The same key again is the same lesson, never a second one.
        again = start_lesson(session, rt, owner, "when-to-call", night, cause="trigger", source_key="t:1")
        assert again is lesson
    run_worker(rt)
    assert texts_to(fake_twilio, patient.phone) == []
    with rt.sessions() as session, session.begin():
        assert send_waiting_lessons(session, rt, night + dt.timedelta(hours=4)) == 0
        assert send_waiting_lessons(session, rt, dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)) == 1
    run_worker(rt)
    [text] = texts_to(fake_twilio, patient.phone)
    assert "MORE" in text


def test_post_discharge_lessons_go_on_day_2_and_day_6_inside_texting_hours(
    rt: Runtime, make_patient: Callable[..., Any], fake_twilio: FakeTwilio
) -> None:
    patient = make_patient(conditions=["diabetes"], preferred_channel="sms")
    discharge = dt.date(2026, 11, 2)
    start = dt.datetime(2026, 11, 2, 17, 0, tzinfo=dt.UTC)
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "post-discharge-30d", discharge, start)
    now = start
    while now <= start + dt.timedelta(days=8):
        tick(rt, now)
        now += dt.timedelta(hours=1)
    with rt.sessions() as session:
        lessons = session.scalars(
            select(LessonDelivery).where(LessonDelivery.patient_id == patient.id).order_by(LessonDelivery.id)
        ).all()
        assert [(lesson.topic, lesson.cause) for lesson in lessons] == [
            ("medicines-after-discharge", "schedule"),
            ("when-to-call", "schedule"),
        ]
        # 15:00 in New York (EST) on day 2 and day 6.
        assert [lesson.created_at for lesson in lessons] == [
            dt.datetime(2026, 11, 4, 20, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 8, 20, 0, tzinfo=dt.UTC),
        ]
        touches = session.scalars(select(ScheduledTouch).where(ScheduledTouch.touch_id.like("lesson-%"))).all()
        assert {(t.status, t.outcome) for t in touches} == {("done", "lesson_sent")}
        sent = session.scalars(
            select(TimelineEvent.code).where(TimelineEvent.patient_id == patient.id, TimelineEvent.kind == "education")
        ).all()
        assert sent == ["education_sent", "education_sent"]


def test_a_low_sugar_sends_the_rule_of_15_lesson_after_the_check_in(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    noon = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)
    clock = install_clock(rt, noon)
    patient = make_patient(conditions=["diabetes"])
    lesson = rt.content.lesson("diabetes-low-blood-sugar", "en")
    assert lesson is not None
    start_checkin(rt, patient, noon, flow_id="diabetes-glucose-check")
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, "60")  # low: the rule of 15, then "did someone have to help?"
    _text(post_twilio, rt, patient.phone, "no")
    assert not any(lesson.title in t for t in texts_to(fake_twilio, patient.phone))  # not mid-check-in
    tick(rt, clock.set(noon + dt.timedelta(minutes=16)))  # the 15-minute recheck
    run_worker(rt)
    assert "15 minutes" in texts_to(fake_twilio, patient.phone)[-1]
    _text(post_twilio, rt, patient.phone, "95")
    last = texts_to(fake_twilio, patient.phone)[-1]
    assert f"\n\n{lesson.title}\n\n" in last and "Reply MORE" in last
    [event] = _timeline(client, patient.id)
    assert (event["code"], event["detail"]["topic"], event["detail"]["cause"]) == (
        "education_sent",
        "diabetes-low-blood-sugar",
        "trigger",
    )
