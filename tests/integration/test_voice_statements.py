"""The Gather webhook is the path a caller waits on: count its SQL statements (a count, not a timing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import event

from app.runtime import Runtime
from tests.conftest import PatientFactory
from tests.integration.sms_helpers import answers, install_clock
from tests.integration.voice_helpers import MORNING, placed_call
from tests.support.fake_twilio import FakeTwilio

#: Call, patient, conversation and program in one locked SELECT; the keys heard; the history the rules
#: read; the answer; the call's step and turn; the conversation's state; the turn said (was 10).
MAX_STATEMENTS_PER_GATHER = 7


def test_an_answered_question_takes_at_most_seven_statements(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, run_jobs: Callable[[], int], make_patient: PatientFactory
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(preferred_channel="voice")
    call = placed_call(rt, fake_twilio, client, run_jobs, patient)
    call.answer()
    seen: list[str] = []
    engine = rt.sessions.kw["bind"]

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", count)
    try:
        call.press("182#")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("weight", 182.0)]
    assert "short of breath" in " ".join(call.heard())
    assert 0 < len(seen) <= MAX_STATEMENTS_PER_GATHER, seen
