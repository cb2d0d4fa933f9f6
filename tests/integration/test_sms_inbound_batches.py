"""Pending inbound texts processed in batches (issue 8, "Scale"), on PostgreSQL and Redis.

The webhook stores a text and kicks ``app.tasks.process_pending_inbound``; the job claims pending texts in
batches and processes each batch in one transaction. What must hold, as for one text at a time: a
patient's texts in arrival order, a text whose step raises kept for retry (with the safety net) without
losing or holding up the others, nothing done twice when the job runs again, and the database work per
batch not growing with the number of texts in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, update

from app.messaging import inbound as inbound_service
from app.messaging.inbound import process_inbound, process_pending
from app.models import Message, Program
from app.runtime import Runtime
from tests.integration.sms_helpers import (
    answers,
    inbound_params,
    install_clock,
    message_row,
    message_rows,
    run_worker,
    start_checkin,
    texts_to,
)
from tests.support.fake_twilio import FakeTwilio
from tests.support.jobs import drain_inbound

Poster = Callable[..., Any]
MORNING = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
ON_CALL = "+13125550003"


class StepBroken(RuntimeError):
    """Stands for a bug in the conversation step for one patient."""


@pytest.fixture()
def in_checkin(rt: Runtime, make_patient: Callable[..., Any], fake_twilio: FakeTwilio) -> Callable[..., Any]:
    """A patient just asked today's weight (hf-daily-check), the opening text sent."""
    install_clock(rt, MORNING)
    with rt.sessions() as session, session.begin():
        session.execute(update(Program).values(on_call_phone=ON_CALL))

    def make(**overrides: Any) -> Any:
        patient = make_patient(**overrides)
        start_checkin(rt, patient, MORNING)
        run_worker(rt)
        return patient

    return make


@pytest.fixture()
def broken_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """``broken_for(patient_id)``: the conversation step raises for that patient only."""
    broken: set[int] = set()
    original = inbound_service.resume_conversation

    def step(session: Any, rt: Runtime, patient: Any, *args: Any, **kwargs: Any) -> Any:
        if patient.id in broken:
            raise StepBroken("cannot handle it")
        return original(session, rt, patient, *args, **kwargs)

    monkeypatch.setattr(inbound_service, "resume_conversation", step)
    yield broken.add


def _store(post_twilio: Poster, phone: str, body: str) -> None:
    assert post_twilio("/twilio/sms", inbound_params(phone, body), process=False).status_code == 200


def _inbound(rt: Runtime) -> list[Message]:
    return message_rows(rt, direction="inbound")


def _replies(rt: Runtime, patient_id: int) -> list[str]:
    with rt.sessions() as session:
        rows = session.scalars(
            select(Message.body)
            .where(Message.patient_id == patient_id, Message.direction == "outbound", Message.kind == "reply")
            .order_by(Message.id)
        )
        return list(rows)


def test_one_batch_answers_every_patient_and_queues_each_next_question(
    rt: Runtime, post_twilio: Poster, in_checkin: Callable[..., Any], fake_twilio: FakeTwilio
) -> None:
    patients = [in_checkin() for _ in range(4)]
    for patient in patients:
        _store(post_twilio, patient.phone, "182")
    assert {m.status for m in _inbound(rt)} == {"pending"}

    totals = process_pending(rt)

    assert totals == {"processed": 4, "handed_over": 0, "batches": 1, "fallback": 0}
    for patient in patients:
        [answer] = answers(rt, patient.id)
        assert (answer.question_id, answer.value_number) == ("weight", 182)
        [reply] = _replies(rt, patient.id)
        assert reply.startswith("Are you more short of breath")
    assert {m.status for m in _inbound(rt)} == {"received"}
    # The replies' send job was queued after the commit and sends each once.
    run_worker(rt)
    for patient in patients:
        assert texts_to(fake_twilio, patient.phone)[-1].startswith("Are you more short of breath")


def test_a_patients_texts_in_one_batch_are_processed_in_arrival_order(
    rt: Runtime, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    first, second = in_checkin(), in_checkin()
    _store(post_twilio, first.phone, "182")
    _store(post_twilio, second.phone, "180")
    _store(post_twilio, first.phone, "NO")  # the answer to the next question, which "182" leads to

    process_pending(rt)

    ids = {m.body: m.id for m in _inbound(rt) if m.patient_id == first.id}
    assert [(a.question_id, a.message_id) for a in answers(rt, first.id)] == [
        ("weight", ids["182"]),
        ("breath", ids["NO"]),
    ]
    assert [a.value_number for a in answers(rt, second.id)] == [180]
    assert {m.status for m in _inbound(rt)} == {"received"}


def test_a_text_behind_one_the_batch_does_not_hold_waits_for_it(
    rt: Runtime, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    """The earlier text of the same patient is outside the batch (here: claimed before, still pending):
    the later one is handed to its own job, which waits, and is processed after the earlier one."""
    patient = in_checkin()
    _store(post_twilio, patient.phone, "182")
    _store(post_twilio, patient.phone, "NO")
    earlier, later = _inbound(rt)
    # A batch that starts after the earlier text (as a second worker's would, the first holding it).
    with rt.sessions() as session, session.begin():
        handed = inbound_service._process_batch(session, rt, limit=50, after_id=earlier.id, now=rt.now(), claimed=[])
    assert handed == (0, [later.id])
    assert message_row(rt, later.id).status == "pending" and answers(rt, patient.id) == []
    assert process_inbound(rt, later.id) == "waiting"
    assert process_inbound(rt, earlier.id) == "processed"
    drain_inbound(rt)
    assert [a.message_id for a in answers(rt, patient.id)] == [earlier.id, later.id]


def test_one_failing_text_neither_loses_nor_holds_up_the_others(
    rt: Runtime,
    post_twilio: Poster,
    in_checkin: Callable[..., Any],
    broken_for: Callable[[int], None],
    fake_twilio: FakeTwilio,
) -> None:
    good_1, bad, good_2 = in_checkin(), in_checkin(), in_checkin()
    broken_for(bad.id)
    _store(post_twilio, good_1.phone, "182")
    _store(post_twilio, bad.phone, "182 and my chest hurts")
    _store(post_twilio, good_2.phone, "175")

    totals = process_pending(rt)

    assert totals["fallback"] == 1 and totals["processed"] == 2
    assert [a.value_number for a in answers(rt, good_1.id)] == [182]
    assert [a.value_number for a in answers(rt, good_2.id)] == [175]
    [failed] = [m for m in _inbound(rt) if m.patient_id == bad.id]
    assert (failed.status, failed.error_code, failed.attempts) == ("retry", "StepBroken", 1)
    assert failed.needs_review and failed.screened_at is not None  # the safety net ran on the raw text
    assert "red_flag:chest_pain" in (failed.flags or [])
    run_worker(rt)
    assert "911" in texts_to(fake_twilio, bad.phone)[-1]
    assert len(texts_to(fake_twilio, ON_CALL)) == 1


def test_running_the_job_again_does_nothing_twice(
    rt: Runtime, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    patients = [in_checkin() for _ in range(3)]
    for patient in patients:
        _store(post_twilio, patient.phone, "182")
    process_pending(rt)
    again = process_pending(rt)
    assert again["processed"] == 0 and again["handed_over"] == 0
    for message in _inbound(rt):
        assert process_inbound(rt, message.id) == "done"
    for patient in patients:
        assert len(answers(rt, patient.id)) == 1
        assert len(_replies(rt, patient.id)) == 1


def test_the_database_work_of_a_batch_does_not_grow_with_its_texts(
    rt: Runtime, post_twilio: Poster, in_checkin: Callable[..., Any]
) -> None:
    """Statements per batch (not a timing): the same for 2 texts and for 8, so the round trips per text
    fall as batches fill (bench/sms_inbound.py prints them under load)."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    def batch_of(size: int) -> list[str]:
        patients = [in_checkin() for _ in range(size)]
        for patient in patients:
            _store(post_twilio, patient.phone, "182")
        statements.clear()
        event.listen(rt.engine, "before_cursor_execute", count)
        try:
            assert process_pending(rt)["processed"] == size
        finally:
            event.remove(rt.engine, "before_cursor_execute", count)
        return list(statements)

    small, large = batch_of(2), batch_of(8)
    assert len(small) == len(large), (small, large)
    assert len(large) <= 12, large
