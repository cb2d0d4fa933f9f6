"""Webhooks arrive twice and out of order: an inbound MessageSid is stored once, a message's status only
moves forward, failures keep their ErrorCode and are flagged, and 21610 in a callback opts the patient out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.runtime import Runtime
from tests.integration.sms_helpers import (
    answers,
    fake_hang,
    inbound_params,
    install_clock,
    message_row,
    message_rows,
    new_sid,
    patient_row,
    queue_one,
    run_worker,
    start_checkin,
    texts_to,
    transcript,
    wall_now,
)
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]


def _sent_message(rt: Runtime, patient: Any, run_jobs: Callable[[], int]) -> tuple[int, str]:
    mid = queue_one(rt, patient, "North Clinic: your check-in is ready. Reply STOP to end texts.")
    run_jobs()
    row = message_row(rt, mid)
    assert row.status == "sent" and row.provider_sid
    return mid, row.provider_sid


def _callback(post: Poster, mid: int, sid: str, status: str, error_code: str | None = None) -> None:
    params = {"MessageSid": sid, "MessageStatus": status, "SmsSid": sid, "SmsStatus": status}
    if error_code:
        params["ErrorCode"] = error_code
    response = post("/twilio/sms/status", params, query=f"mid={mid}")
    assert response.status_code == 204


def test_inbound_message_sid_is_stored_and_answered_once(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    post_twilio: Poster,
    run_jobs: Callable[[], int],
) -> None:
    install_clock(rt)
    patient = make_patient()
    start_checkin(rt, patient, rt.now())
    run_jobs()
    sid = new_sid()
    # Twilio's retry of the same message, and a replay of its SID with another body: both duplicates.
    for body in ("182", "182", "190"):
        assert post_twilio("/twilio/sms", inbound_params(patient.phone, body, sid)).status_code == 200
        run_jobs()
    [inbound] = message_rows(rt, direction="inbound")
    assert inbound.provider_sid == sid and inbound.body == "182"
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("weight", 182.0)]
    assert len(texts_to(fake_twilio, patient.phone)) == 2  # the weight prompt and one next question


def test_status_callbacks_twice_and_out_of_order_never_move_backwards(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster, run_jobs: Callable[[], int]
) -> None:
    mid, sid = _sent_message(rt, make_patient(), run_jobs)
    _callback(post_twilio, mid, sid, "delivered")
    _callback(post_twilio, mid, sid, "sent")  # late
    _callback(post_twilio, mid, sid, "sending")  # later still
    _callback(post_twilio, mid, sid, "queued")
    _callback(post_twilio, mid, sid, "delivered")  # a duplicate
    row = message_row(rt, mid)
    assert row.status == "delivered"
    assert row.provider_sid == sid
    assert row.needs_review is False
    _callback(post_twilio, mid, sid, "read")
    _callback(post_twilio, mid, sid, "delivered")
    assert message_row(rt, mid).status == "read"


@pytest.mark.parametrize(("status", "code"), [("failed", "30008"), ("undelivered", "30003")])
def test_failed_callback_keeps_its_error_code_and_flags_the_message(
    client: FlaskClient,
    rt: Runtime,
    make_patient: Callable[..., Any],
    post_twilio: Poster,
    run_jobs: Callable[[], int],
    status: str,
    code: str,
) -> None:
    patient = make_patient()
    mid, sid = _sent_message(rt, patient, run_jobs)
    _callback(post_twilio, mid, sid, "sent")
    _callback(post_twilio, mid, sid, status, code)
    _callback(post_twilio, mid, sid, "sent")  # out of order, after the failure
    _callback(post_twilio, mid, sid, status)  # the same failure again, without its code this time
    row = message_row(rt, mid)
    assert (row.status, row.error_code, row.needs_review) == (status, code, True)
    listed = transcript(client, patient.id)
    assert listed[mid]["status"] == status
    assert listed[mid]["error_code"] == code
    assert listed[mid]["needs_review"] is True
    assert patient_row(rt, patient.id).opted_out is False  # only 21610 means the patient opted out


def test_21610_in_a_callback_opts_the_patient_out_and_cancels_what_is_queued(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    post_twilio: Poster,
    run_jobs: Callable[[], int],
) -> None:
    patient = make_patient()
    mid, sid = _sent_message(rt, patient, run_jobs)
    pending = queue_one(rt, patient, "North Clinic: a reminder for tomorrow.")
    _callback(post_twilio, mid, sid, "undelivered", "21610")
    _callback(post_twilio, mid, sid, "undelivered", "21610")  # twice: still one opt-out
    assert patient_row(rt, patient.id).opted_out is True
    run_jobs()
    assert message_row(rt, pending).status == "cancelled"
    # No confirmation goes to a number the carrier already blocks: only the first text ever left.
    assert len(texts_to(fake_twilio, patient.phone)) == 1
    row = message_row(rt, mid)
    assert (row.status, row.error_code, row.needs_review) == ("undelivered", "21610", True)


def test_callback_that_beats_the_workers_commit_is_not_undone(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    post_twilio: Poster,
    run_jobs: Callable[[], int],
) -> None:
    """Twilio takes the text and calls back 'delivered' while our worker still waits for the 201."""
    install_clock(rt, wall_now())
    patient = make_patient()
    mid = queue_one(rt, patient, "North Clinic: your check-in is ready.")
    fake_twilio.fail_next("accept_then_hang")
    with fake_hang(fake_twilio, 5.0):  # long enough for the callback to land first on a loaded machine
        worker = threading.Thread(target=run_worker, args=(rt,))
        worker.start()
        try:
            [accepted] = fake_twilio.wait_for_messages(1, timeout=20)
            _callback(post_twilio, mid, accepted["sid"], "delivered")
            assert message_row(rt, mid).status == "delivered"
        finally:
            worker.join(timeout=15)
    assert not worker.is_alive()
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid, row.attempts) == ("delivered", accepted["sid"], 1)
    assert len(fake_twilio.messages) == 1
