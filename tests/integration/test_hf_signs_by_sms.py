"""Heart-failure signs of one check-in through signed webhooks on PostgreSQL and Redis (issue 7 item 5,
``Rule.group``): a sign is in front of a nurse as soon as it is answered, later signs join the same task,
and the patient is told once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from app.runtime import Runtime
from tests.integration.sms_helpers import AUTH, inbound_params, install_clock, run_worker, start_checkin, texts_to
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]
# 10:00 in New York (the factory's time zone) on two consecutive days.
YESTERDAY = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
TODAY = YESTERDAY + dt.timedelta(days=1)
#: The yes/no questions after the weight, in order.
QUESTIONS = ("breath", "pillows", "swelling", "dizzy", "chest", "fainted", "confused")


def _text(post: Poster, rt: Runtime, phone: str, body: str) -> None:
    response = post("/twilio/sms", inbound_params(phone, body))
    assert response.status_code == 200
    run_worker(rt)


def _open(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/escalations?status=open", headers=AUTH)
    assert response.status_code == 200
    escalations: list[dict[str, Any]] = response.json["escalations"]
    return escalations


def test_weight_gain_then_dizziness_is_one_urgent_task_seen_at_the_weight_and_told_once(
    rt: Runtime,
    client: FlaskClient,
    make_patient: Callable[..., Any],
    post_twilio: Poster,
    fake_twilio: FakeTwilio,
) -> None:
    clock = install_clock(rt, YESTERDAY)
    patient = make_patient()
    start_checkin(rt, patient, YESTERDAY)
    run_worker(rt)
    for body in ("179", *["no"] * len(QUESTIONS)):
        _text(post_twilio, rt, patient.phone, body)
    assert _open(client) == []

    clock.set(TODAY)
    start_checkin(rt, patient, TODAY)
    run_worker(rt)
    before = len(texts_to(fake_twilio, patient.phone))
    _text(post_twilio, rt, patient.phone, "183")  # up 4 lb overnight

    # The nurse sees the URGENT weight gain now, while the check-in is still asking its questions.
    [seen] = _open(client)
    assert (seen["level"], seen["reasons"], seen["patient_id"]) == ("URGENT", ["weight_gain"], patient.id)
    sent = texts_to(fake_twilio, patient.phone)[before:]
    assert any("weight went up" in t and "nurse will call" in t for t in sent)
    assert "more short of breath" in sent[-1]  # the next question: the check-in goes on
    assert not any("Thank you" in t for t in sent)

    for question in QUESTIONS:
        _text(post_twilio, rt, patient.phone, "yes" if question == "dizzy" else "no")

    [task] = _open(client)
    assert task["id"] == seen["id"]  # the dizziness joined the weight task
    assert task["level"] == "URGENT"
    assert {"weight_gain", "dizziness"} <= set(task["reasons"])
    assert [t["detail"]["sign_count"] for t in task["triggers"]] == [1, 2]

    today = texts_to(fake_twilio, patient.phone)[before:]
    assert sum("nurse will call" in t for t in today) == 1  # told once, not again for the dizziness
    assert not any("Sit or lie down" in t for t in today)
    assert "Thank you" in today[-1]
