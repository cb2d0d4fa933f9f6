"""Per-sender throughput: with the segment rate set (OUTREACH_SMS_RATE), a burst of queued texts drains
through two concurrent RQ worker processes at the carrier's rate, counted in segments, none dropped and none
duplicated. Separate processes, so a limiter that only worked inside one process would show."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.messaging.outbound import queue_text
from app.models import Message
from app.runtime import Runtime
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import (
    RQ_CLI,
    kill_process_group,
    message_rows,
    start_worker_process,
    wall_now,
)
from tests.support.fake_twilio import FakeTwilio

RATE = 50.0  # segments per second for the one sender
# The issue speaks of 10,000 texts at the limit; 250 texts (300 segments, about 6 s at 50/s) prove the same
# properties on a 2-core CI machine in a reasonable time: the rate holds, nothing is dropped or doubled.
SINGLE = 200
DOUBLE = 50  # two-segment texts: 160+ GSM-7 characters each
#: How late the Twilio server may record a text after its reserved slot on a loaded 2-core machine
#: (sleep overshoot, thread scheduling, a fresh HTTP connection). The limiter reserves slots with Redis'
#: clock and a text never leaves before its slot, so lateness only ever moves texts later. 0.3 s was seen
#: to be too thin (a run recorded the first text 0.32 s late); 1.5 s still fails any limiter that lets the
#: burst through (without one, 300 segments leave within about a second).
LATE_S = 1.5
WINDOW_S = 2.0


def _bodies() -> list[str]:
    singles = [f"North Clinic: check-in reminder number {i}." for i in range(SINGLE)]
    tail = "Weigh yourself before breakfast. " * 5
    doubles = [f"North Clinic: long reminder number {i}. {tail}" for i in range(DOUBLE)]
    assert all(len(body) > 160 for body in doubles)
    return singles + doubles


def _drain_with_two_worker_processes(
    rt: Runtime, app_config: dict[str, Any], fake: FakeTwilio, log: Path, deadline_s: float = 60.0
) -> None:
    """Two real RQ worker processes at once, sharing nothing but Redis and PostgreSQL, until every text
    left; texts the limiter put back come again through the sweeper, as in production."""
    deadline = time.monotonic() + deadline_s
    while True:
        workers = [start_worker_process(RQ_CLI, app_config, fake, log, OUTREACH_SMS_RATE=str(RATE)) for _ in range(2)]
        try:
            for worker in workers:
                worker.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for worker in workers:
                kill_process_group(worker)
        assert [w.returncode for w in workers] == [0, 0], log.read_text(errors="replace")[-3000:]
        with rt.sessions() as session:
            waiting = session.scalars(
                select(Message.next_attempt_at).where(Message.status.in_(("queued", "sending")))
            ).all()
        if not waiting:
            return
        assert time.monotonic() < deadline, f"{len(waiting)} texts still waiting"
        due = min((w for w in waiting if w is not None), default=wall_now())
        pause = (due - wall_now()).total_seconds()
        if pause > 0:
            time.sleep(min(pause, 1.0))  # waiting for the limiter's slot to come, not asserting anything
        tick(rt, wall_now())


@pytest.mark.slow
def test_a_burst_drains_at_the_segment_rate_through_two_workers_exactly_once(
    app_config: dict[str, Any], rt: Runtime, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    bodies = _bodies()
    with rt.sessions() as session, session.begin():
        for n, body in enumerate(bodies):
            queue_text(session, rt, to=f"+1202555{n:04d}", body=body, kind="system", patient=None)
    log = tmp_path / "workers.log"
    _drain_with_two_worker_processes(rt, app_config, fake_twilio, log)
    rows = message_rows(rt, direction="outbound")
    # Both processes took their share of the burst (send jobs carry up to 50 texts each).
    takers = re.findall(r"Worker (\w+): outreach: app\.tasks\.send_message", log.read_text(errors="replace"))
    assert len(set(takers)) >= 2

    accepted = fake_twilio.messages
    # Every text reached the server exactly once, and each row holds the SID the server gave it.
    assert sorted(m["Body"] for m in accepted) == sorted(bodies)
    assert len({m["sid"] for m in accepted}) == len(bodies)
    assert {r.status for r in rows} == {"sent"}
    assert {r.provider_sid for r in rows} == {m["sid"] for m in accepted}
    assert sum(r.segments or 0 for r in rows) == SINGLE + 2 * DOUBLE

    # The rate held, judged on the Twilio server's own timestamps. Texts leave at or after their slots
    # (slot k at start + k / RATE), late by at most LATE_S, so:
    # - from the first text to the last, at least (total - last) / RATE - LATE_S passed;
    # - any WINDOW_S of server time holds at most RATE * (WINDOW_S + LATE_S) segments (+ one text that
    #   straddles the edge): no burst up front, and none later.
    accepted.sort(key=lambda m: m["time"])
    segments = [int(m["num_segments"]) for m in accepted]
    times = [float(m["time"]) for m in accepted]
    total = sum(segments)
    elapsed = times[-1] - times[0]
    assert elapsed >= (total - segments[-1]) / RATE - LATE_S, (elapsed, total)
    busiest = max(
        sum(seg for t, seg in zip(times[i:], segments[i:], strict=True) if t < start + WINDOW_S)
        for i, start in enumerate(times)
    )
    assert busiest <= RATE * (WINDOW_S + LATE_S) + 2, busiest
