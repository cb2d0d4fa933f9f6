"""Store first, then process (issue 8, items 1 and 2), through signed webhooks on PostgreSQL and Redis.

The webhook commits the inbound row and answers 200; ``app.tasks.process_inbound`` runs the step after the
commit. A step that raises keeps the row (retry, error class, on the timeline), triage still opens an
EMERGENCY for "chest pain", and the retry is processed once. Texts from one number are processed in arrival
order. Hostile values (NUL, a 65-character SID, ``?mid=²``) get defined answers, never 500.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.channels.cleaning import digest
from app.messaging import inbound as inbound_service
from app.messaging.inbound import MAX_ATTEMPTS, PENDING_GRACE, enqueue_processing, process_inbound
from app.models import Escalation, EscalationTrigger, Message, Program
from app.runtime import Runtime
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import (
    Clock,
    answers,
    custom_app,
    inbound_params,
    install_clock,
    message_row,
    message_rows,
    patient_row,
    run_worker,
    signed_post,
    start_checkin,
    texts_to,
    transcript,
)
from tests.integration.test_metrics import scrape, value
from tests.support.fake_twilio import FakeTwilio
from tests.support.jobs import drain_inbound

Poster = Callable[..., Any]
# 10:00 in New York (EST) on a Tuesday.
MORNING = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
ON_CALL = "+13125550003"


class StepBroken(RuntimeError):
    """Stands for a bug in the conversation step (a content error, a driver error ...)."""


@pytest.fixture()
def broken_step(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Make the conversation step the job calls raise (with the patient's words in the message, as a real
    driver error may quote them), until the returned ``repair()`` is called."""

    def raising(*args: Any, **kwargs: Any) -> Any:
        raise StepBroken("cannot handle 'I have chest pain' for Maria Garcia")

    monkeypatch.setattr(inbound_service, "resume_conversation", raising)
    yield lambda: monkeypatch.undo()
    monkeypatch.undo()


@pytest.fixture()
def in_checkin(rt: Runtime, make_patient: Callable[..., Any], fake_twilio: FakeTwilio) -> Callable[..., Any]:
    """A patient just asked today's weight; the program pages ON_CALL for an EMERGENCY."""

    def make(**overrides: Any) -> Any:
        install_clock(rt, MORNING)
        with rt.sessions() as session, session.begin():
            session.execute(update(Program).values(on_call_phone=ON_CALL))
        patient = make_patient(**overrides)
        start_checkin(rt, patient, MORNING)
        run_worker(rt)
        assert len(texts_to(fake_twilio, patient.phone)) == 1
        return patient

    return make


def _escalations(rt: Runtime, patient_id: int) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id))
        return [(e.level, e.reason) for e in rows]


def _trigger_count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return len(session.scalars(select(EscalationTrigger.id)).all())


def _inbound(rt: Runtime) -> list[Message]:
    return message_rows(rt, direction="inbound")


# ------------------------------------------------------------------------------------------ a step that raises
def test_a_step_that_raises_keeps_the_text_opens_the_emergency_and_is_retried_once(
    caplog: pytest.LogCaptureFixture,
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    post_twilio: Poster,
    in_checkin: Callable[..., Any],
    broken_step: Callable[[], None],
) -> None:
    caplog.set_level(logging.INFO)
    patient = in_checkin()
    clock: Clock = rt.clock  # type: ignore[assignment]
    response = post_twilio("/twilio/sms", inbound_params(patient.phone, "I have chest pain"))
    assert response.status_code == 200

    # The row is kept, marked for retry with the error's class, and is on the patient's timeline.
    [text] = _inbound(rt)
    assert (text.status, text.error_code, text.attempts) == ("retry", "StepBroken", 1)
    assert text.body == "I have chest pain" and text.patient_id == patient.id and text.needs_review
    assert text.next_attempt_at is not None and text.next_attempt_at > clock.now
    assert "red_flag:chest_pain" in (text.flags or [])
    assert transcript(client, patient.id)[text.id]["body"] == "I have chest pain"
    # Triage ran on the raw text anyway: an EMERGENCY for a human, the on-call page, and the 911 text.
    assert _escalations(rt, patient.id) == [("EMERGENCY", "chest_pain")]
    run_worker(rt)
    [_prompt, safety] = texts_to(fake_twilio, patient.phone)
    assert "911" in safety
    assert len(texts_to(fake_twilio, ON_CALL)) == 1
    # Neither the text nor the exception's message (which quoted it) reached a log line.
    for record in caplog.records:
        assert "chest pain" not in record.getMessage() and "Maria" not in record.getMessage()

    # A second run of the same job before the retry is due changes nothing (the net ran once).
    assert process_inbound(rt, text.id) == "retry"
    assert message_row(rt, text.id).attempts == 2
    assert len(texts_to(fake_twilio, patient.phone)) == 2
    triggers = _trigger_count(rt)

    # Fixed: the sweeper finds the due retry and the step runs once.
    broken_step()
    due = message_row(rt, text.id).next_attempt_at
    assert due is not None
    assert tick(rt, clock.set(due + dt.timedelta(seconds=1)))["inbound"] == 1
    run_worker(rt)
    done = message_row(rt, text.id)
    assert (done.status, done.error_code, done.next_attempt_at) == ("received", None, None)
    assert done.conversation_id is not None
    assert _escalations(rt, patient.id) == [("EMERGENCY", "chest_pain")]  # the conversation's joins it
    assert _trigger_count(rt) == triggers + 1
    replies = texts_to(fake_twilio, patient.phone)
    assert len(replies) == 3 and "911" in replies[2]

    # Idempotent per message: its job again, and the sweeper again, neither save nor send anything more.
    enqueue_processing(rt, [text.id], "again")
    tick(rt, clock.advance(dt.timedelta(hours=1)))
    run_worker(rt)
    assert process_inbound(rt, text.id) == "done"
    assert len(texts_to(fake_twilio, patient.phone)) == 3
    assert _trigger_count(rt) == triggers + 1


def test_a_retried_answer_is_saved_once_and_answered_once(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    post_twilio: Poster,
    in_checkin: Callable[..., Any],
    broken_step: Callable[[], None],
) -> None:
    patient = in_checkin()
    post_twilio("/twilio/sms", inbound_params(patient.phone, "182"))
    [text] = _inbound(rt)
    assert text.status == "retry" and answers(rt, patient.id) == []
    assert _escalations(rt, patient.id) == []  # nothing for triage in "182": no alarm from the net
    broken_step()
    for _ in range(3):  # the retry job, a duplicate job, the sweeper: one answer, one reply
        process_inbound(rt, text.id)
        run_worker(rt)
    assert [(a.question_id, a.value, a.message_id) for a in answers(rt, patient.id)] == [("weight", 182.0, text.id)]
    assert len(texts_to(fake_twilio, patient.phone)) == 2


def test_a_text_that_keeps_failing_is_given_up_kept_for_staff_and_counted(
    rt: Runtime,
    client: FlaskClient,
    post_twilio: Poster,
    in_checkin: Callable[..., Any],
    broken_step: Callable[[], None],
) -> None:
    patient = in_checkin()
    post_twilio("/twilio/sms", inbound_params(patient.phone, "182"))
    [text] = _inbound(rt)
    outcomes = [process_inbound(rt, text.id) for _ in range(MAX_ATTEMPTS - 1)]
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 2) + ["failed"]
    given_up = message_row(rt, text.id)
    assert (given_up.status, given_up.attempts, given_up.error_code) == ("failed", MAX_ATTEMPTS, "StepBroken")
    assert given_up.next_attempt_at is None and given_up.needs_review
    with rt.sessions() as session:
        assert inbound_service.due_inbound(session, MORNING + dt.timedelta(days=1)) == []
    samples = scrape(client)
    assert value(samples, "outreach_inbound_failed_total") == 1
    assert value(samples, "outreach_inbound_pending") == 0
    assert value(samples, "outreach_inbound_processed_total") == 0


# ------------------------------------------------------------------------------------------------ arrival order
def test_texts_from_one_patient_are_processed_in_arrival_order(
    rt: Runtime, fake_twilio: FakeTwilio, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    patient = in_checkin()
    for body in ("182", "NO"):
        assert post_twilio("/twilio/sms", inbound_params(patient.phone, body), process=False).status_code == 200
    first, second = _inbound(rt)
    assert (first.status, second.status) == ("pending", "pending")
    # The later text's job runs first: it waits for the earlier one.
    assert process_inbound(rt, second.id) == "waiting"
    assert answers(rt, patient.id) == [] and message_row(rt, second.id).status == "pending"
    # The earlier one's job processes it and hands over to the later one.
    assert process_inbound(rt, first.id) == "processed"
    drain_inbound(rt)
    assert [(a.question_id, a.message_id) for a in answers(rt, patient.id)] == [
        ("weight", first.id),
        ("breath", second.id),
    ]
    assert {m.status for m in _inbound(rt)} == {"received"}


def test_a_text_waiting_behind_a_failed_one_is_screened_at_once_then_processed_after_it(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    post_twilio: Poster,
    in_checkin: Callable[..., Any],
    broken_step: Callable[[], None],
) -> None:
    patient = in_checkin()
    post_twilio("/twilio/sms", inbound_params(patient.phone, "182"))  # fails: retry
    post_twilio("/twilio/sms", inbound_params(patient.phone, "my chest hurts"))  # waits behind it
    first, second = _inbound(rt)
    assert (first.status, second.status) == ("retry", "pending")
    assert second.screened_at is not None and second.needs_review is False
    assert _escalations(rt, patient.id) == [("EMERGENCY", "chest_pain")]  # the emergency did not wait
    run_worker(rt)
    assert "911" in texts_to(fake_twilio, patient.phone)[-1]
    broken_step()
    assert process_inbound(rt, first.id) == "processed"
    drain_inbound(rt)
    assert message_row(rt, second.id).status == "received"
    assert [a.message_id for a in answers(rt, patient.id)][:1] == [first.id]


def test_stop_takes_effect_in_the_webhook_even_if_processing_is_broken(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    post_twilio: Poster,
    in_checkin: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twilio-enforced keywords are applied in the webhook's own transaction (app/messaging/inbound.py store_text),
    without the routing or the conversation step: the opt-out holds at once, before an earlier text is
    processed, and whatever processing does."""

    def raising(*args: Any, **kwargs: Any) -> Any:
        raise StepBroken("routing broke")

    monkeypatch.setattr(inbound_service, "route", raising)
    patient = in_checkin()
    post_twilio("/twilio/sms", inbound_params(patient.phone, "182"), process=False)
    post_twilio("/twilio/sms", inbound_params(patient.phone, "STOP"), process=False)
    earlier, stop = _inbound(rt)
    assert (earlier.status, stop.status, stop.kind) == ("pending", "received", "keyword")
    assert patient_row(rt, patient.id).opted_out is True
    drain_inbound(rt)  # processing is broken: the earlier text waits for its retry, the opt-out holds
    run_worker(rt)
    assert message_row(rt, earlier.id).status == "retry"
    assert len(texts_to(fake_twilio, patient.phone)) == 2
    monkeypatch.undo()
    assert process_inbound(rt, earlier.id) == "processed"  # after the opt-out: kept for staff, not an answer
    run_worker(rt)
    processed = message_row(rt, earlier.id)
    assert (processed.status, processed.kind, processed.needs_review) == ("received", "inbox", True)
    assert answers(rt, patient.id) == []
    texts = texts_to(fake_twilio, patient.phone)
    assert len(texts) == 2 and "You will not get more messages from us" in texts[1]


# ------------------------------------------------------------------------------------------- hostile values
def test_a_nul_byte_and_other_controls_are_stripped_and_the_text_is_answered(
    rt: Runtime, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    patient = in_checkin()
    response = post_twilio("/twilio/sms", inbound_params(patient.phone, "18\x002\x1b\x7f\n"))
    assert response.status_code == 200
    [text] = _inbound(rt)
    assert text.body == "182\n" and text.status == "received"
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("weight", 182.0)]
    # Only controls: stored empty, never lost, never a 500.
    assert post_twilio("/twilio/sms", inbound_params(patient.phone, "\x00\x00\x01")).status_code == 200
    assert [m.body for m in _inbound(rt)] == ["182\n", ""]


@pytest.mark.parametrize("field", ["MessageSid", "SmsSid"])
def test_a_sid_too_long_for_its_column_is_refused_with_400_and_logged_by_its_hash(
    caplog: pytest.LogCaptureFixture, rt: Runtime, post_twilio: Poster, make_patient: Callable[..., Any], field: str
) -> None:
    patient = make_patient()
    long_sid = "SM" + "f" * 63  # 65 characters
    params = {**inbound_params(patient.phone, "I have chest pain"), "MessageSid": "", field: long_sid}
    response = post_twilio("/twilio/sms", params)
    assert response.status_code == 400
    assert _inbound(rt) == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert digest(long_sid) in logged and long_sid not in logged
    status = post_twilio("/twilio/sms/status", {"MessageSid": long_sid, "MessageStatus": "delivered"})
    assert status.status_code == 400
    # 64 characters fit the column and are stored.
    assert post_twilio("/twilio/sms", {**params, field: "SM" + "f" * 62}).status_code == 200
    assert len(_inbound(rt)) == 1


# ``?mid=²`` as Twilio sends it (percent-encoded UTF-8): str.isdigit() said yes and int() raised.
@pytest.mark.parametrize("mid", ["%C2%B2", "%D9%A1", "-1", "1e3", "99999999999", "2147483648", "%00", "", "0x1f"])
def test_status_callbacks_parse_mid_strictly(
    rt: Runtime, post_twilio: Poster, make_patient: Callable[..., Any], run_jobs: Callable[[], int], mid: str
) -> None:
    from tests.integration.sms_helpers import queue_one

    message_id = queue_one(rt, make_patient(), "hello")
    run_jobs()
    sid = message_row(rt, message_id).provider_sid
    assert sid is not None
    unknown = post_twilio(
        "/twilio/sms/status", {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}, query=f"mid={mid}"
    )
    assert unknown.status_code == 204
    known = post_twilio(
        "/twilio/sms/status",
        {"MessageSid": sid, "MessageStatus": "delivered", "ErrorCode": "\x00" * 100},
        query=f"mid={mid}",
    )
    assert known.status_code == 204
    assert message_row(rt, message_id).status == "delivered"


def test_a_duplicate_sid_is_stored_and_processed_once(
    rt: Runtime, fake_twilio: FakeTwilio, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    patient = in_checkin()
    params = inbound_params(patient.phone, "182")
    for _ in range(3):
        assert post_twilio("/twilio/sms", params).status_code == 200
    run_worker(rt)
    assert len(_inbound(rt)) == 1 and len(answers(rt, patient.id)) == 1
    assert len(texts_to(fake_twilio, patient.phone)) == 2


# ----------------------------------------------------------------------------------------- demo mode, SQLite
def test_in_process_mode_processes_after_the_commit(
    app_config: dict[str, Any], fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    """No Redis (the embedded demo): the job runs in-process right after the webhook's commit."""
    patient = make_patient()
    with custom_app(app_config, redis_url="") as (app, rt):
        install_clock(rt, MORNING)
        start_checkin(rt, patient, MORNING)
        response = signed_post(
            app.test_client(), "/twilio/sms", inbound_params(patient.phone, "182"), token=fake_twilio.auth_token
        )
        assert response.status_code == 200
        [text] = _inbound(rt)
        assert text.status == "received"
        assert [a.value for a in answers(rt, patient.id)] == [182.0]
        assert len(texts_to(fake_twilio, patient.phone)) == 2


def test_sqlite_stores_and_refuses_what_postgresql_does(
    app_config: dict[str, Any], fake_twilio: FakeTwilio, tmp_path: Any
) -> None:
    from app.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    with custom_app(app_config, database_url=url, redis_url="") as (app, rt):
        client = app.test_client()

        def post(params: dict[str, str]) -> int:
            return signed_post(client, "/twilio/sms", params, token=fake_twilio.auth_token).status_code

        assert post({**inbound_params("+12025550123", "hi\x00 there"), "MessageSid": "S" * 65}) == 400
        assert post(inbound_params("+12025550123", "hi\x00 there")) == 200
        [text] = _inbound(rt)
        assert (text.body, text.status, text.kind) == ("hi there", "received", "inbox")


def test_the_models_match_the_migrations(database_url: str) -> None:
    """``alembic check``: no model change without its migration (the test database is at head)."""
    from alembic import command

    from app.migrations import alembic_config

    command.check(alembic_config(database_url))


def test_a_pending_text_whose_job_was_lost_is_found_by_the_sweeper(
    rt: Runtime, fake_twilio: FakeTwilio, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    patient = in_checkin()
    post_twilio("/twilio/sms", inbound_params(patient.phone, "182"), process=False)
    assert rt.jobs.connection.flushdb()  # type: ignore[attr-defined]  # Redis lost the job
    clock: Clock = rt.clock  # type: ignore[assignment]
    assert tick(rt, clock.advance(dt.timedelta(seconds=5)))["inbound"] == 0  # too fresh: its job may still run
    assert tick(rt, clock.advance(PENDING_GRACE))["inbound"] == 1
    run_worker(rt)
    assert [a.value for a in answers(rt, patient.id)] == [182.0]
    assert len(texts_to(fake_twilio, patient.phone)) == 2


def test_an_unknown_numbers_emergency_reaches_on_call_even_when_processing_fails(
    rt: Runtime, fake_twilio: FakeTwilio, post_twilio: Poster, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_clock(rt, MORNING)
    with rt.sessions() as session, session.begin():
        session.add(Program(slug="p", name="P", phone_display="555-0100", on_call_phone=ON_CALL))

    def raising(*args: Any, **kwargs: Any) -> Any:
        raise StepBroken("route broke")

    monkeypatch.setattr(inbound_service, "route", raising)
    stranger = "+13125550177"
    assert (
        post_twilio("/twilio/sms", inbound_params(stranger, "he is unconscious and not breathing")).status_code == 200
    )
    [text] = _inbound(rt)
    assert text.status == "retry" and text.patient_id is None and text.needs_review
    assert any(f.startswith("red_flag:") for f in text.flags or [])
    run_worker(rt)
    assert len(texts_to(fake_twilio, ON_CALL)) == 1
    [reply] = texts_to(fake_twilio, stranger)
    assert "911" in reply
