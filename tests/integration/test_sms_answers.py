"""Answer understanding through signed webhooks on PostgreSQL and Redis (issue 7, items 3-5): a reply taken
as an answer and marked for review, "not sure" saved as unknown, meter flags at the glucose question
(including Spanish "Alto", also an opt-out keyword), "could not assess", and the queue ranking several
heart-failure signs above one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.escalation.queue import open_queue
from app.escalation.service import open_or_join
from app.models import Escalation, Patient
from app.runtime import Runtime
from tests.integration.sms_helpers import (
    answers,
    inbound_params,
    install_clock,
    message_rows,
    patient_row,
    run_worker,
    start_checkin,
    texts_to,
)
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]
MORNING = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _text(post: Poster, rt: Runtime, phone: str, body: str) -> None:
    response = post("/twilio/sms", inbound_params(phone, body))
    assert response.status_code == 200
    run_worker(rt)


def _inbound(rt: Runtime, body: str) -> Any:
    [row] = [m for m in message_rows(rt, direction="inbound") if m.body == body]
    return row


def _escalations(rt: Runtime, patient_id: int) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id))
        return [(e.level, e.reason) for e in rows]


def test_a_yes_no_saying_more_is_saved_and_the_message_marked_for_review(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    start_checkin(rt, patient, MORNING)
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, "182")
    _text(post_twilio, rt, patient.phone, "no but my ankles are huge")
    saved = [(a.question_id, a.kind, a.value) for a in answers(rt, patient.id)]
    assert saved == [("weight", "number", 182.0), ("breath", "yes_no", False)]
    assert _inbound(rt, "no but my ankles are huge").needs_review is True
    assert _inbound(rt, "182").needs_review is False


def test_not_sure_is_saved_as_unknown_marked_for_review_and_the_care_team_gets_could_not_assess(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language="es")
    start_checkin(rt, patient, MORNING)
    run_worker(rt)
    for body in ("182", "no", "no sé", "no", "no", "no", "no", "no"):
        _text(post_twilio, rt, patient.phone, body)
    unknown = [(a.question_id, a.kind, a.value) for a in answers(rt, patient.id) if a.kind == "unknown"]
    assert unknown == [("pillows", "unknown", None)]
    assert _inbound(rt, "no sé").needs_review is True
    assert _escalations(rt, patient.id) == [("ROUTINE", "could_not_assess")]
    assert "Gracias" in texts_to(fake_twilio, patient.phone)[-1]


def test_alto_at_the_glucose_question_is_hi_and_the_patient_stays_subscribed(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language="es", conditions=["diabetes"])
    start_checkin(rt, patient, MORNING, "diabetes-glucose-check")
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, "Alto")
    assert patient_row(rt, patient.id).reachable
    assert [(a.question_id, a.kind, a.value) for a in answers(rt, patient.id)] == [("glucose", "meter", "HI")]
    assert _escalations(rt, patient.id) == [("URGENT", "high_glucose")]
    last = texts_to(fake_twilio, patient.phone)[-1]
    assert "HI" in last and "cetonas" in last


def test_lo_at_the_glucose_question_is_urgent_at_once(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster, fake_twilio: FakeTwilio
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(conditions=["diabetes"])
    start_checkin(rt, patient, MORNING, "diabetes-glucose-check")
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, "LO")
    assert _escalations(rt, patient.id) == [("URGENT", "low_glucose")]
    last = texts_to(fake_twilio, patient.phone)[-1]
    assert "15 grams" in last and "someone with you should call 911" in last


def test_the_queue_ranks_several_signs_above_one_of_the_same_level(
    rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    one, several, routine = make_patient(), make_patient(), make_patient()
    with rt.sessions() as session, session.begin():
        # The single sign is older and its deadline earlier: without the sign count it would come first.
        for patient, level, signs, minutes in (
            (one, "URGENT", 1, 0),
            (several, "URGENT", 3, 30),
            (routine, "ROUTINE", 4, 0),
        ):
            open_or_join(
                session,
                session.get(Patient, patient.id),  # type: ignore[arg-type]
                level=level,
                reason="weight_gain",
                rule_id="weight-gain-1-day",
                detail={"signs": ["weight_gain"] * signs, "sign_count": signs},
                conversation_id=None,
                now=MORNING + dt.timedelta(minutes=minutes),
            )
    with rt.sessions() as session:
        order = [e.patient_id for e in open_queue(session)]
    assert order == [several.id, one.id, routine.id]
