"""Redis is transport only (DESIGN §1 "Jobs"): with Redis down, every webhook still answers 200 and commits
its rows, the enqueue that fails after the commit is logged and left to the sweeper, ``/healthz`` says the
queue is degraded, and once Redis is back the sweeper (``outreach tick``) sends what was waiting."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import RedisError

from app.messaging.inbound import PENDING_GRACE
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import (
    custom_app,
    inbound_params,
    install_clock,
    message_rows,
    patient_row,
    run_worker,
    signed_post,
    start_checkin,
    texts_to,
    wall_now,
)
from tests.support import services
from tests.support.fake_twilio import FakeTwilio


class ThrowawayRedis:
    """A ``redis-server`` of this test's own on a fixed loopback port, to stop and start again."""

    def __init__(self, workdir: Path):
        self.port = services._free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [services._redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                if Redis.from_url(self.url).ping():
                    return
            except RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@contextmanager
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _post(client: Any, fake: FakeTwilio, phone: str, body: str) -> int:
    return signed_post(client, "/twilio/sms", inbound_params(phone, body), token=fake.auth_token).status_code


def test_redis_down_webhooks_answer_200_and_the_sweeper_sends_the_replies_when_it_returns(
    caplog: pytest.LogCaptureFixture,
    app_config: dict[str, Any],
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO)
    in_checkin = make_patient(phone="+13125550101")
    stopping = make_patient(phone="+13125550102")
    stranger = "+13125550199"
    with throwaway_redis(tmp_path) as redis_server, custom_app(app_config, redis_url=redis_server.url) as (app, rt):
        app.config["PROPAGATE_EXCEPTIONS"] = False
        client = app.test_client()
        clock = install_clock(rt, wall_now())
        start_checkin(rt, in_checkin, clock.now)
        run_worker(rt)
        [prompt] = texts_to(fake_twilio, in_checkin.phone)

        redis_server.stop()
        assert _post(client, fake_twilio, in_checkin.phone, "182") == 200  # a reply: the next question is queued
        assert _post(client, fake_twilio, stopping.phone, "STOP") == 200  # an opt-out: the confirmation is queued
        assert _post(client, fake_twilio, stranger, "who is this?") == 200  # an unknown sender
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json == {"status": "degraded", "database": "ok", "queue": "degraded"}

        # Everything was committed, nothing was sent. The texts wait in SQL for their processing (store
        # first, then process); the STOP took effect in the webhook's own transaction, its confirmation queued.
        inbound = message_rows(rt, direction="inbound")
        assert len(inbound) == 3
        assert {m.from_number: m.status for m in inbound} == {
            in_checkin.phone: "pending",
            stopping.phone: "received",
            stranger: "pending",
        }
        assert patient_row(rt, stopping.id).opted_out is True
        waiting = [m for m in message_rows(rt, direction="outbound") if m.status == "queued"]
        assert {m.to_number for m in waiting} == {stopping.phone}
        assert len(fake_twilio.messages) == 1
        failures = [r for r in caplog.records if "left to the sweeper" in r.getMessage()]
        assert failures, "the failed enqueue is logged"
        for record in caplog.records:
            for secret in ("182", "who is this", in_checkin.phone, stopping.phone, stranger):
                assert secret not in record.getMessage()

        redis_server.start()
        assert client.get("/healthz").json == {"status": "ok", "database": "ok", "queue": "ok"}
        # The sweeper finds the texts whose processing job was lost (pending past the grace period).
        assert tick(rt, clock.advance(PENDING_GRACE + dt.timedelta(seconds=1)))["inbound"] == 2
        run_worker(rt)
        assert {m.status for m in message_rows(rt, direction="inbound")} == {"received"}
        assert len(texts_to(fake_twilio, in_checkin.phone)) == 2  # the prompt, then the next question
        assert texts_to(fake_twilio, in_checkin.phone)[0] == prompt
        assert len(texts_to(fake_twilio, stopping.phone)) == 1  # the opt-out confirmation
        assert len(texts_to(fake_twilio, stranger)) == 1  # the generic reply
        assert {m.status for m in message_rows(rt, direction="outbound")} <= {"sent", "delivered"}


def test_a_tick_with_redis_down_leaves_due_texts_queued_for_the_next_one(
    app_config: dict[str, Any], fake_twilio: FakeTwilio, make_patient: Callable[..., Any], tmp_path: Path
) -> None:
    patient = make_patient()
    with throwaway_redis(tmp_path) as redis_server, custom_app(app_config, redis_url=redis_server.url) as (_app, rt):
        clock = install_clock(rt, wall_now())
        redis_server.stop()
        start_checkin(rt, patient, clock.now)  # the commit succeeds; its enqueue does not
        counts = tick(rt, clock.advance(dt.timedelta(seconds=30)))  # nor does the sweeper's: no exception
        assert counts["requeued"] == 1
        redis_server.start()
        tick(rt, clock.advance(dt.timedelta(seconds=30)))
        run_worker(rt)
        assert len(texts_to(fake_twilio, patient.phone)) == 1
