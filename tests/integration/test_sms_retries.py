"""Retry policy against the real twilio client: 429 / 5xx / connection errors back off exponentially up to
MAX_ATTEMPTS and then fail for review; 21610 opts the patient out and 21211 / 21614 mark the number bad,
and those are never retried."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.messaging.outbound import MAX_ATTEMPTS
from app.models import ScheduledTouch, TouchStatus
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import (
    custom_app,
    install_clock,
    message_row,
    patient_row,
    posts,
    queue_one,
    run_worker,
    texts_to,
    transcript,
)
from tests.support.fake_twilio import FakeTwilio

BODY = "North Clinic: time for your check-in. Reply STOP to end texts."
# 10:00 in New York (EST) on a weekday: inside quiet hours for the default patient.
MORNING = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _retry_until_final(rt: Runtime, mid: int) -> list[dt.timedelta]:
    """Run the first attempt, then each retry when it falls due; return the backoff delays that were set."""
    delays: list[dt.timedelta] = []
    run_worker(rt)
    for _ in range(MAX_ATTEMPTS + 2):
        row = message_row(rt, mid)
        if row.status != "queued":
            break
        assert row.next_attempt_at is not None
        delays.append(row.next_attempt_at - rt.now())
        # Just before it is due, the sweeper leaves it alone.
        tick(rt, row.next_attempt_at - dt.timedelta(seconds=1))
        install_clock(rt, row.next_attempt_at)
        tick(rt, row.next_attempt_at)
        run_worker(rt)
    return delays


def _check_backoff(delays: list[dt.timedelta]) -> None:
    # Full jitter between half and all of 30 s * 2^(attempt-1): each window lies above the last.
    assert len(delays) == MAX_ATTEMPTS - 1
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 30.0 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay.total_seconds() <= ceiling, (attempt, delay)
    assert delays == sorted(delays)


def _transcript_entry(client: FlaskClient, patient_id: int, mid: int) -> dict[str, Any]:
    return transcript(client, patient_id)[mid]


def test_429_is_retried_with_growing_backoff_then_failed_for_review(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    fake_twilio.fail_for_number(patient.phone, "429")
    mid = queue_one(rt, patient, BODY)
    delays = _retry_until_final(rt, mid)
    _check_backoff(delays)
    row = message_row(rt, mid)
    assert (row.status, row.attempts, row.needs_review, row.error_code) == ("failed", MAX_ATTEMPTS, True, "20429")
    assert [r["status"] for r in posts(fake_twilio)] == [429] * MAX_ATTEMPTS
    entry = _transcript_entry(client, patient.id, mid)
    assert (entry["status"], entry["error_code"], entry["needs_review"]) == ("failed", "20429", True)
    # Failed for good: later ticks do not try again.
    tick(rt, rt.now() + dt.timedelta(hours=2))
    run_worker(rt)
    assert len(posts(fake_twilio)) == MAX_ATTEMPTS


def test_5xx_is_retried_with_growing_backoff_then_failed_for_review(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    fake_twilio.fail_for_number(patient.phone, "500")
    mid = queue_one(rt, patient, BODY)
    _check_backoff(_retry_until_final(rt, mid))
    row = message_row(rt, mid)
    assert (row.status, row.attempts, row.needs_review) == ("failed", MAX_ATTEMPTS, True)
    assert row.error_code is not None and "20500" in row.error_code
    assert [r["status"] for r in posts(fake_twilio)] == [500] * MAX_ATTEMPTS
    entry = _transcript_entry(client, patient.id, mid)
    assert entry["status"] == "failed" and "20500" in entry["error_code"]


def test_connection_refused_is_retried_with_growing_backoff_then_failed_for_review(
    app_config: dict[str, Any], client: FlaskClient, rt: Runtime, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient()
    with custom_app(app_config, twilio_api_base_url=f"http://127.0.0.1:{_closed_port()}") as (_app, offline):
        install_clock(offline, MORNING)
        mid = queue_one(offline, patient, BODY)
        _check_backoff(_retry_until_final(offline, mid))
    row = message_row(rt, mid)
    assert (row.status, row.attempts, row.needs_review, row.error_code) == ("failed", MAX_ATTEMPTS, True, "network")
    entry = _transcript_entry(client, patient.id, mid)
    assert (entry["status"], entry["error_code"]) == ("failed", "network")


def test_21610_opts_the_patient_out_and_is_never_retried(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient()
    fake_twilio.fail_for_number(patient.phone, "21610")
    mid = queue_one(rt, patient, BODY)
    later = queue_one(rt, patient, "North Clinic: a second text queued behind it.")
    run_worker(rt)
    assert (message_row(rt, mid).status, message_row(rt, mid).error_code) == ("failed", "21610")
    assert patient_row(rt, patient.id).opted_out is True
    assert message_row(rt, later).status == "cancelled"
    for hours in (1, 6, 24):
        tick(rt, clock.set(MORNING + dt.timedelta(hours=hours)))
        run_worker(rt)
    assert len(fake_twilio.requests) == 1  # one create call, and not even a lookup after it


@pytest.mark.parametrize("code", ["21211"])
def test_bad_number_marks_the_phone_invalid_is_never_retried_and_later_ticks_send_nothing(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], code: str
) -> None:
    clock = install_clock(rt, MORNING - dt.timedelta(hours=20))
    patient = make_patient()
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "hf-remote-monitoring", MORNING.date(), rt.now())
    fake_twilio.fail_for_number(patient.phone, code)
    mid = queue_one(rt, patient, BODY)
    run_worker(rt)
    row = message_row(rt, mid)
    assert (row.status, row.error_code, row.attempts) == ("failed", code, 1)
    assert patient_row(rt, patient.id).phone_invalid is True
    assert patient_row(rt, patient.id).opted_out is False

    # The daily check-ins come due: nothing more is even attempted for this patient.
    for day in range(3):
        tick(rt, clock.set(MORNING + dt.timedelta(days=day, minutes=1)))
        run_worker(rt)
    assert len(fake_twilio.requests) == 1
    assert texts_to(fake_twilio, patient.phone) == []
    with rt.sessions() as session:
        statuses = session.scalars(
            select(ScheduledTouch.status).where(ScheduledTouch.due_at <= MORNING + dt.timedelta(days=2, minutes=1))
        ).all()
    assert statuses and set(statuses) == {TouchStatus.CANCELLED}


def test_a_number_that_takes_no_texts_gets_its_check_ins_by_phone(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    """21614 (not a mobile number) refuses texts only: the number stays valid and outreach goes by voice."""
    clock = install_clock(rt, MORNING - dt.timedelta(hours=20))
    patient = make_patient()
    with rt.sessions() as session, session.begin():
        enroll(session, rt, session.merge(patient), "hf-remote-monitoring", MORNING.date(), rt.now())
    fake_twilio.fail_for_number(patient.phone, "21614")
    mid = queue_one(rt, patient, BODY)
    run_worker(rt)
    assert (message_row(rt, mid).status, message_row(rt, mid).error_code) == ("failed", "21614")
    row = patient_row(rt, patient.id)
    assert (row.phone_invalid, row.sms_capable, row.opted_out) == (False, False, False)
    tick(rt, clock.set(MORNING + dt.timedelta(minutes=1)))
    run_worker(rt)
    assert texts_to(fake_twilio, patient.phone) == []
    assert [c["To"] for c in fake_twilio.calls] == [patient.phone]
