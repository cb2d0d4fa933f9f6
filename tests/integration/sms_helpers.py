"""Small helpers shared by the SMS channel's integration tests (tests/integration/test_sms_*.py).

Not a test module and not fixtures: plain functions over the conftest fixtures' objects, so each test
still reads top to bottom.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from app import create_app
from app.config import ROOT
from app.conversations.service import start_conversation
from app.jobs import QUEUE_NAME, RqQueue
from app.messaging.outbound import queue_text
from app.models import Answer, Message, Patient
from app.runtime import Runtime, clear_current
from tests.conftest import API_TOKEN, FROM_NUMBER, PUBLIC_BASE_URL
from tests.support.fake_twilio import FakeTwilio, sign

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}

Params = Mapping[str, str] | Sequence[tuple[str, str]]

_sids = itertools.count(1)


def new_sid(prefix: str = "SM") -> str:
    return f"{prefix}{next(_sids):032x}"


class Clock:
    """A settable clock for ``rt.clock``: tests move time instead of sleeping."""

    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, when: dt.datetime) -> dt.datetime:
        self.now = when
        return when

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self.now = self.now + delta
        return self.now


@contextmanager
def fake_hang(fake: FakeTwilio, seconds: float) -> Iterator[None]:
    """Shorten (or lengthen) how long ``hang`` / ``accept_then_hang`` hold an answer, for one test."""
    before = fake.hang_seconds
    fake.hang_seconds = seconds
    try:
        yield
    finally:
        fake.hang_seconds = before


def wall_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def install_clock(rt: Runtime, start: dt.datetime | None = None) -> Clock:
    clock = Clock(start or wall_now())
    rt.clock = clock
    return clock


@contextmanager
def custom_app(app_config: Mapping[str, Any], **overrides: Any) -> Iterator[tuple[Flask, Runtime]]:
    """An app like the ``app`` fixture's, with some settings changed (a Messaging Service, a rate …)."""
    application = create_app({**app_config, **overrides})
    rt: Runtime = application.extensions["outreach"]
    try:
        yield application, rt
    finally:
        rt.engine.dispose()
        clear_current()


class ThreadWorker(SimpleWorker):
    """A real RQ worker that can run in a thread: signals and SIGALRM timeouts only work in the main one."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


def run_worker(rt: Runtime) -> int:
    """Run every queued job with a real RQ worker in burst mode (the ``run_jobs`` fixture, for any app and
    any thread); returns how many jobs were waiting when it started."""
    assert isinstance(rt.jobs, RqQueue)
    queue = Queue(QUEUE_NAME, connection=rt.jobs.connection)
    before = queue.count
    ThreadWorker([queue], connection=rt.jobs.connection).work(burst=True)
    return before


def signed_post(
    client: FlaskClient,
    path: str,
    params: Params,
    *,
    token: str,
    query: str = "",
    signature: str | None = None,
    base_url: str | None = None,
) -> TestResponse:
    """Post form parameters signed the way Twilio signs them: over the public URL, raw query included."""
    public_url = PUBLIC_BASE_URL + path + (f"?{query}" if query else "")
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    headers = {"X-Twilio-Signature": signature if signature is not None else sign(public_url, pairs, token)}
    kwargs: dict[str, Any] = {"data": MultiDict(pairs), "headers": headers}
    if base_url is not None:
        kwargs["base_url"] = base_url
    return client.post(path + (f"?{query}" if query else ""), **kwargs)


def inbound_params(phone: str, body: str, sid: str | None = None) -> dict[str, str]:
    return {
        "MessageSid": sid or new_sid(),
        "AccountSid": "AC" + "feed" * 8,
        "From": phone,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
    }


def queue_one(rt: Runtime, patient: Patient | None, body: str, *, to: str | None = None, kind: str = "prompt") -> int:
    """Queue one outbound text the way the app does (intent row + RQ job after commit); returns its id."""
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id) if patient is not None else None
        message = queue_text(
            session,
            rt,
            to=to or (owner.phone if owner else ""),
            body=body,
            kind=kind,
            patient=owner,
            now=rt.now(),
        )
        return message.id


def start_checkin(rt: Runtime, patient: Patient, now: dt.datetime, flow_id: str = "hf-daily-check") -> int:
    """Start a conversation directly (as a due touch would) and return its id; the prompt is queued."""
    with rt.sessions() as session, session.begin():
        owner = session.get(Patient, patient.id)
        assert owner is not None
        return start_conversation(session, rt, owner, flow_id, now).id


def message_rows(rt: Runtime, **where: Any) -> list[Message]:
    with rt.sessions() as session:
        query = select(Message).order_by(Message.id)
        for name, value in where.items():
            query = query.where(getattr(Message, name) == value)
        return list(session.scalars(query).all())


def message_row(rt: Runtime, message_id: int) -> Message:
    with rt.sessions() as session:
        row = session.get(Message, message_id)
        assert row is not None
        return row


def patient_row(rt: Runtime, patient_id: int) -> Patient:
    with rt.sessions() as session:
        row = session.get(Patient, patient_id)
        assert row is not None
        return row


def answers(rt: Runtime, patient_id: int) -> list[Answer]:
    with rt.sessions() as session:
        return list(session.scalars(select(Answer).where(Answer.patient_id == patient_id).order_by(Answer.id)).all())


def transcript(client: FlaskClient, patient_id: int) -> dict[int, dict[str, Any]]:
    """GET /api/v1/patients/<id>/messages, keyed by message id."""
    response = client.get(f"/api/v1/patients/{patient_id}/messages", headers=AUTH)
    assert response.status_code == 200
    payload = response.get_json()
    assert isinstance(payload, dict)
    return {int(m["id"]): m for m in payload["messages"]}


def texts_to(fake: FakeTwilio, phone: str) -> list[str]:
    return [str(m["Body"]) for m in fake.messages if m["To"] == phone]


def posts(fake: FakeTwilio) -> list[dict[str, Any]]:
    """Create calls (POST …/Messages.json) the server received, in order, whatever it answered."""
    return [r for r in fake.requests if r["method"] == "POST" and r["path"].endswith("/Messages.json")]


def lookups(fake: FakeTwilio) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == "GET" and r["path"].endswith("/Messages.json")]


# -- worker processes ---------------------------------------------------------------------------------

#: The production worker command (Procfile), in burst mode.
RQ_CLI = [str(ROOT / ".venv/bin/rq"), "worker", "--burst", "--worker-class", "app.worker.OutreachWorker", "outreach"]


def worker_env(app_config: Mapping[str, Any], fake: FakeTwilio, **extra: str) -> dict[str, str]:
    """The environment a production worker gets (app/config.py settings_from_env), aimed at the fake."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}
    env.update(
        DATABASE_URL=str(app_config["database_url"]),
        REDIS_URL=str(app_config["redis_url"]),
        RQ_REDIS_URL=str(app_config["redis_url"]),
        SECRET_KEY=str(app_config["secret_key"]),
        OUTREACH_CHANNEL="twilio",
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=fake.base_url,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        OUTREACH_SMS_RATE="0",
        PYTHONFAULTHANDLER="1",
    )
    env.update(extra)
    return env


def start_worker_process(
    command: Sequence[str], app_config: Mapping[str, Any], fake: FakeTwilio, log: Path, **extra_env: str
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=worker_env(app_config, fake, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a work horse it forks dies with it
        )


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state_and_ppid = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(state_and_ppid[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def kill_process_group(worker: subprocess.Popen[bytes]) -> int:
    """SIGKILL a worker this test started: its process group, and the work horses it forked (RQ moves each
    horse into a process group of its own, so the worker's group alone would leave them running)."""
    if worker.poll() is None:
        horses = _children(worker.pid)
        os.killpg(worker.pid, signal.SIGKILL)
        for horse in horses:
            with suppress(ProcessLookupError):
                os.killpg(horse, signal.SIGKILL)
            with suppress(ProcessLookupError):
                os.kill(horse, signal.SIGKILL)
    return worker.wait(timeout=10)
