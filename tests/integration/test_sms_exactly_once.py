"""Outbound texts reach Twilio exactly once, whatever fails between our intent row and our commit: a 429, a
500, a hung or dropped connection, a worker killed with SIGKILL mid-call, a flushed Redis."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from app.channels.twilio_sms import build_client
from app.messaging.outbound import SENDING_STUCK_AFTER
from app.models import Message
from app.runtime import Runtime, set_current
from app.scheduling.sweeper import tick
from tests.conftest import FROM_NUMBER
from tests.integration.sms_helpers import (
    RQ_CLI,
    custom_app,
    fake_hang,
    install_clock,
    kill_process_group,
    message_row,
    posts,
    queue_one,
    run_worker,
    start_worker_process,
    texts_to,
    wall_now,
)
from tests.support.fake_twilio import FakeTwilio

BODY = "North Clinic: time for your check-in. Reply STOP to end texts."


def _retry_when_due(rt: Runtime, mid: int) -> None:
    """Move the clock to the message's next attempt and run the sweeper and a worker, as production would."""
    due = message_row(rt, mid).next_attempt_at
    assert due is not None
    install_clock(rt, due)
    tick(rt, due)
    run_worker(rt)


def test_accept_then_hang_records_the_message_and_holds_the_answer(fake_twilio: FakeTwilio, rt: Runtime) -> None:
    """The fake server's new failure kind, as the SIGKILL test below relies on it."""
    fake_twilio.fail_next("accept_then_hang")
    with fake_hang(fake_twilio, 0.6):
        started = wall_now()
        message = build_client(rt.settings).messages.create(to="+12025550100", from_=FROM_NUMBER, body="hi")
        held = wall_now() - started
    assert held >= dt.timedelta(seconds=0.5)
    [recorded] = fake_twilio.messages
    assert message.sid == recorded["sid"]


def test_429_then_accepted_sends_once_and_records_both_attempts(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    clock = install_clock(rt)
    patient = make_patient()
    mid = queue_one(rt, patient, BODY)
    fake_twilio.fail_next("429")
    run_worker(rt)
    row = message_row(rt, mid)
    assert (row.status, row.attempts, row.error_code) == ("queued", 1, "20429")
    assert row.next_attempt_at is not None and row.next_attempt_at > clock.now

    # Not due yet: a tick sends nothing.
    tick(rt, clock.advance(dt.timedelta(seconds=1)))
    run_worker(rt)
    assert len(posts(fake_twilio)) == 1

    _retry_when_due(rt, mid)
    row = message_row(rt, mid)
    assert (row.status, row.attempts) == ("sent", 2)
    assert [r["status"] for r in posts(fake_twilio)] == [429, 201]
    [accepted] = fake_twilio.messages
    assert row.provider_sid == accepted["sid"]
    assert texts_to(fake_twilio, patient.phone) == [BODY]


def test_500_is_retried_after_a_lookup_and_sends_once(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    install_clock(rt)
    patient = make_patient()
    mid = queue_one(rt, patient, BODY)
    fake_twilio.fail_next("500")
    run_worker(rt)
    assert message_row(rt, mid).status == "queued"
    _retry_when_due(rt, mid)
    row = message_row(rt, mid)
    assert (row.status, row.attempts) == ("sent", 2)
    # A 5xx may hide an accepted message: the retry looked before it sent again.
    methods = [(r["method"], r["status"]) for r in fake_twilio.requests]
    assert methods == [("POST", 500), ("GET", 200), ("POST", 201)]
    assert texts_to(fake_twilio, patient.phone) == [BODY]


@pytest.mark.parametrize("kind", ["hang", "accept_then_hang"])
def test_client_timeout_looks_the_message_up_before_trying_again(
    app_config: dict[str, Any], rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], kind: str
) -> None:
    """``hang``: Twilio never took it → one lookup, one more send. ``accept_then_hang``: Twilio took it and
    the answer never came in time → the lookup finds it and nothing is sent again."""
    patient = make_patient()
    # The impatient client (1 s) meets a server that holds its answer for 6 s: a timeout, whatever the load.
    with custom_app(app_config, twilio_timeout_seconds=1.0) as (_app, impatient), fake_hang(fake_twilio, 6.0):
        install_clock(impatient)
        mid = queue_one(impatient, patient, BODY)
        fake_twilio.fail_next(kind)
        run_worker(impatient)
        row = message_row(impatient, mid)
        assert (row.status, row.attempts) == ("queued", 1)
        assert row.error_code is not None and "network" in row.error_code
    # The recovery runs with the normal timeout (10 s): a lookup slowed by a busy machine is not a failure.
    set_current(rt)  # the jobs run in the app fixture's runtime again
    _retry_when_due(rt, mid)
    row = message_row(rt, mid)
    assert row.status == "sent"
    [accepted] = fake_twilio.messages
    assert row.provider_sid == accepted["sid"]
    assert texts_to(fake_twilio, patient.phone) == [BODY]
    expected = ["POST", "GET", "POST"] if kind == "hang" else ["POST", "GET"]
    assert [r["method"] for r in fake_twilio.requests] == expected


def test_accept_then_drop_is_found_by_the_next_attempt_and_marked_sent(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    install_clock(rt)
    patient = make_patient()
    mid = queue_one(rt, patient, BODY)
    fake_twilio.fail_next("accept_then_drop")
    run_worker(rt)
    [accepted] = fake_twilio.messages  # the server has it; the client saw a broken connection
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid) == ("queued", None)
    _retry_when_due(rt, mid)
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid) == ("sent", accepted["sid"])
    assert len(posts(fake_twilio)) == 1
    assert len(fake_twilio.messages) == 1
    # And the sweeper finding nothing left to do stays that way.
    tick(rt, rt.now() + dt.timedelta(hours=1))
    run_worker(rt)
    assert len(posts(fake_twilio)) == 1


@pytest.mark.slow
def test_rq_worker_cli_started_from_the_environment_delivers_a_text(
    app_config: dict[str, Any],
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    tmp_path: Path,
) -> None:
    patient = make_patient()
    mid = queue_one(rt, patient, BODY)
    worker = start_worker_process(RQ_CLI, app_config, fake_twilio, tmp_path / "w.log")
    try:
        fake_twilio.wait_for_messages(1, timeout=60)  # a cold worker imports the app first: slow under load
        assert worker.wait(timeout=60) == 0
    except (TimeoutError, subprocess.TimeoutExpired):
        pytest.fail("the rq worker delivered nothing:\n" + (tmp_path / "w.log").read_text(errors="replace"))
    finally:
        kill_process_group(worker)
    assert message_row(rt, mid).status == "sent"
    assert texts_to(fake_twilio, patient.phone) == [BODY]


@pytest.mark.slow
def test_worker_killed_after_the_provider_accepted_sends_exactly_once(
    app_config: dict[str, Any],
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    tmp_path: Path,
) -> None:
    patient = make_patient()
    mid = queue_one(rt, patient, BODY)  # the intent row, and its job on Redis
    fake_twilio.fail_next("accept_then_hang")
    log = tmp_path / "worker.log"
    with fake_hang(fake_twilio, 20.0):
        worker = start_worker_process(RQ_CLI, app_config, fake_twilio, log)
        try:
            try:
                [accepted] = fake_twilio.wait_for_messages(1, timeout=20)
            except TimeoutError:
                pytest.fail("the worker never reached the server:\n" + log.read_text(errors="replace"))
            # Twilio has the text; our worker still waits for the answer and its row says 'sending'.
            assert message_row(rt, mid).status == "sending"
            assert kill_process_group(worker) == -signal.SIGKILL
        finally:
            kill_process_group(worker)
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid, row.attempts) == ("sending", None, 1)

    # Within the grace period the sweeper leaves it alone: that worker might still be alive.
    clock = install_clock(rt, wall_now() + dt.timedelta(seconds=30))
    tick(rt, clock.now)
    run_worker(rt)
    assert message_row(rt, mid).status == "sending"
    assert len(posts(fake_twilio)) == 1

    clock.set(wall_now() + SENDING_STUCK_AFTER + dt.timedelta(seconds=5))
    assert tick(rt, clock.now)["requeued"] == 1
    run_worker(rt)
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid) == ("sent", accepted["sid"])
    assert len(posts(fake_twilio)) == 1
    assert texts_to(fake_twilio, patient.phone) == [BODY]


def test_flushed_redis_loses_nothing_the_sweeper_requeues_from_sql(
    rt: Runtime, redis_url: str, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    clock = install_clock(rt)
    patient = make_patient()
    mid = queue_one(rt, patient, BODY)
    # FLUSHDB, not FLUSHALL: the suite's Redis may be a developer's local server (db 15) with other data;
    # the app keeps everything in this one database, so for it the two are the same.
    Redis.from_url(redis_url).flushdb()
    assert run_worker(rt) == 0
    assert fake_twilio.messages == []
    assert message_row(rt, mid).status == "queued"

    assert tick(rt, clock.advance(dt.timedelta(seconds=30)))["requeued"] == 1
    run_worker(rt)
    tick(rt, clock.advance(dt.timedelta(minutes=5)))
    run_worker(rt)
    assert texts_to(fake_twilio, patient.phone) == [BODY]
    assert message_row(rt, mid).status == "sent"


def test_a_text_enqueued_twice_by_job_and_sweeper_is_sent_once_by_two_workers_racing(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    clock = install_clock(rt)
    patients = [make_patient() for _ in range(20)]
    ids = [queue_one(rt, p, f"{BODY} #{n}") for n, p in enumerate(patients)]  # one send job each ...
    assert tick(rt, clock.now)["requeued"] == len(ids)  # ... and the sweeper's batch job holds them all again
    workers = [threading.Thread(target=run_worker, args=(rt,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(m["Body"] for m in fake_twilio.messages) == sorted(f"{BODY} #{n}" for n in range(len(ids)))
    assert len(posts(fake_twilio)) == len(ids)
    assert {message_row(rt, mid).status for mid in ids} == {"sent"}
    assert {message_row(rt, mid).attempts for mid in ids} == {1}


def test_recovery_lookup_does_not_take_an_earlier_identical_text_for_this_one(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    """Two identical texts a few seconds apart (a patient sends two unclear replies: two identical
    re-prompts). The worker sending the second dies before its request leaves; the sweeper must send it."""
    clock = install_clock(rt)
    patient = make_patient()
    reprompt = "Sorry, I didn't understand. Please reply with your weight in pounds, like 182."
    first = queue_one(rt, patient, reprompt)
    run_worker(rt)
    second = queue_one(rt, patient, reprompt)
    # What deliver() commits just before calling the provider, then the worker died (SIGKILL, OOM, deploy).
    with rt.sessions() as session, session.begin():
        row = session.get(Message, second)
        assert row is not None
        row.status, row.attempts, row.updated_at = "sending", 1, clock.now
    clock.advance(SENDING_STUCK_AFTER + dt.timedelta(seconds=5))
    tick(rt, clock.now)
    run_worker(rt)
    tick(rt, clock.advance(dt.timedelta(minutes=5)))
    run_worker(rt)
    assert texts_to(fake_twilio, patient.phone) == [reprompt, reprompt]
    rows = [message_row(rt, first), message_row(rt, second)]
    assert [r.status for r in rows] == ["sent", "sent"]
    assert {r.provider_sid for r in rows} == {m["sid"] for m in fake_twilio.messages}


# -- a claim is the claimant's alone; a callback's status is never undone -----------------------------


def _queue_together(rt: Runtime, patient: Any, bodies: list[str]) -> list[int]:
    """Several texts to one number in one transaction: one send job, one recipient group."""
    from app.messaging.outbound import queue_text
    from app.models import Patient

    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        return [
            queue_text(session, rt, to=owner.phone, body=body, kind="page", patient=owner, now=rt.now()).id
            for body in bodies
        ]


def test_a_group_held_past_the_stuck_window_is_sent_once_though_the_sweeper_takes_it_over(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    """Worker 1 sends a recipient's group one text after another; its first call hangs longer than the
    "stuck" window. The sweeper hands the group to worker 2 (the first text is found at Twilio, the second
    is sent). Worker 1 then wakes up: its claim on the second text is gone, so it must not send it."""
    clock = install_clock(rt)
    patient = make_patient()
    bodies = [f"{BODY} (page {n})" for n in range(1, 4)]
    ids = _queue_together(rt, patient, bodies)
    fake_twilio.fail_next("accept_then_hang")
    with fake_hang(fake_twilio, 2.0):
        worker_1 = threading.Thread(target=run_worker, args=(rt,))
        worker_1.start()
        fake_twilio.wait_for_messages(1, timeout=20)  # Twilio has text 1; worker 1 waits for the answer
        clock.advance(SENDING_STUCK_AFTER + dt.timedelta(seconds=5))
        assert tick(rt, clock.now)["requeued"] == len(ids)
        run_worker(rt)  # worker 2
        worker_1.join(timeout=60)
    assert not worker_1.is_alive()
    assert sorted(m["Body"] for m in fake_twilio.messages) == sorted(bodies)
    assert len(posts(fake_twilio)) == len(bodies)
    rows = [message_row(rt, mid) for mid in ids]
    assert [r.status for r in rows] == ["sent"] * len(ids)
    assert sorted(r.provider_sid or "" for r in rows) == sorted(m["sid"] for m in fake_twilio.messages)


def test_a_delivered_callback_is_not_undone_by_the_timeout_recorded_after_it(
    app_config: dict[str, Any],
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.integration.sms_helpers import signed_post

    patient = make_patient()
    caplog.set_level(logging.INFO, logger="app.messaging.outbound")
    # 3 s for the two callbacks to land before the client gives up (the server holds its answer for 8 s).
    with custom_app(app_config, twilio_timeout_seconds=3.0) as (app, impatient), fake_hang(fake_twilio, 8.0):
        clock = install_clock(impatient)
        mid = queue_one(impatient, patient, BODY)
        fake_twilio.fail_next("accept_then_hang")
        worker = threading.Thread(target=run_worker, args=(impatient,))
        worker.start()
        [accepted] = fake_twilio.wait_for_messages(1, timeout=20)
        # Twilio delivered it and says so before our client gave up waiting for the create call's answer.
        for status in ("sent", "delivered"):
            response = signed_post(
                app.test_client(),
                "/twilio/sms/status",
                {"MessageSid": accepted["sid"], "MessageStatus": status},
                token=fake_twilio.auth_token,
                query=f"mid={mid}",
            )
            assert response.status_code == 204
        worker.join(timeout=30)
        # The order this test is about really happened: the timeout was recorded after the callback.
        assert "send failed after a callback set status=delivered" in caplog.text
        row = message_row(impatient, mid)
        assert (row.status, row.provider_sid) == ("delivered", accepted["sid"])
        # Nothing is left to retry: later ticks neither send it again nor move it back.
        tick(impatient, clock.advance(dt.timedelta(hours=1)))
        run_worker(impatient)
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid) == ("delivered", accepted["sid"])
    assert len(posts(fake_twilio)) == 1


@pytest.mark.parametrize("channel", ["twilio", "console"])
def test_a_worker_that_died_after_the_provider_took_the_text_is_reconciled_on_both_channels(
    app_config: dict[str, Any], fake_twilio: FakeTwilio, make_patient: Callable[..., Any], channel: str
) -> None:
    """The crash between the provider's acceptance and our commit, on each channel: the sweeper's
    lookup must find the text (the console's lookup answers truthfully too) and nothing is sent twice."""
    from app.messaging.outbound import _claim

    patient = make_patient()
    with custom_app(app_config, channel=channel) as (_app, crt):
        clock = install_clock(crt)
        mid = queue_one(crt, patient, BODY)
        sends: list[str] = []
        real_send = crt.channel.send

        def counting_send(text: Any) -> Any:
            result = real_send(text)
            sends.append(result.provider_sid)
            return result

        crt.channel.send = counting_send  # type: ignore[method-assign]
        # What a worker does before it dies: claim the row, and the provider accepts the text.
        [claimed] = _claim(crt, [mid], 1)
        crt.channel.send(claimed.text)
        assert message_row(crt, mid).status == "sending"

        clock.advance(SENDING_STUCK_AFTER + dt.timedelta(seconds=5))
        tick(crt, clock.now)
        run_worker(crt)
        tick(crt, clock.advance(dt.timedelta(minutes=5)))
        run_worker(crt)
        row = message_row(crt, mid)
    assert len(sends) == 1
    assert row.provider_sid == sends[0]
    assert row.status in {"sent", "delivered"}
    if channel == "twilio":
        assert texts_to(fake_twilio, patient.phone) == [BODY]
