"""Shared fixtures: real PostgreSQL and Redis (see tests/support/services.py), the local Twilio REST
server, an app wired to all three, and small factories. Unit tests use none of them.

Database recipe: one database per test session, migrated once with Alembic; every test that uses it
starts from empty tables (TRUNCATE), so tests that run real workers and separate sessions see
committed data exactly as production would.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue, SimpleWorker

from app import create_app
from app.db import Base
from app.jobs import QUEUE_NAME, RqQueue
from app.models import Patient, Program
from app.runtime import Runtime, clear_current
from tests.support import services
from tests.support.fake_twilio import FakeTwilio, sign
from tests.support.jobs import drain_inbound

PUBLIC_BASE_URL = "https://outreach.example.org"
API_TOKEN = "test-api-token-" + "x" * 16
FROM_NUMBER = "+15005550006"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from app.migrations import upgrade

    admin, _how = services.postgres_admin_url()
    name = f"outreach_test_{os.getpid()}"
    url = services.create_database(admin, name)
    upgrade(url)
    yield url
    services.drop_database(admin, name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url, _how = services.redis_url()
    return url


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture()
def fake_twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    twilio_server.reset()
    twilio_server.latency_ms = 0
    return twilio_server


def _truncate(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture()
def app_config(database_url: str, redis_url: str, fake_twilio: FakeTwilio) -> dict[str, Any]:
    _truncate(database_url)
    Redis.from_url(redis_url).flushdb()
    return {
        "database_url": database_url,
        "redis_url": redis_url,
        "secret_key": secrets.token_hex(16),
        "public_base_url": PUBLIC_BASE_URL,
        "channel": "twilio",
        "twilio_account_sid": fake_twilio.account_sid,
        "twilio_auth_token": fake_twilio.auth_token,
        "twilio_from_number": FROM_NUMBER,
        "twilio_api_base_url": fake_twilio.base_url,
        "api_token": API_TOKEN,
        # Throughput limits have their own tests; elsewhere a long code's 1 segment/s only slows the suite.
        "sms_segments_per_second": 0,
        "calls_per_second": 0,
        "session_cookie_secure": False,
        "testing": True,
    }


@pytest.fixture()
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(app_config)
    yield application
    rt: Runtime = application.extensions["outreach"]
    rt.engine.dispose()
    clear_current()


@pytest.fixture()
def rt(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions["outreach"]
    return runtime


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def run_jobs(rt: Runtime) -> Callable[[], int]:
    """Run every queued job with a real RQ worker (burst), as `rq worker` would; returns jobs run."""

    def run() -> int:
        assert isinstance(rt.jobs, RqQueue)
        queue = Queue(QUEUE_NAME, connection=rt.jobs.connection)
        before = queue.count
        SimpleWorker([queue], connection=rt.jobs.connection).work(burst=True)
        return before

    return run


@pytest.fixture()
def program(rt: Runtime) -> Program:
    with rt.sessions() as session, session.begin():
        prog = Program(
            slug="north-clinic", name="North Clinic", phone_display="555-0100", uses_healthcare_exemption=False
        )
        session.add(prog)
    return prog


PatientFactory = Callable[..., Patient]


@pytest.fixture()
def make_patient(rt: Runtime, program: Program) -> PatientFactory:
    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> Patient:
        n = next(counter)
        values: dict[str, Any] = {
            "program_id": program.id,
            "mrn": f"MRN{n:04d}",
            "given_name": "Maria",
            "family_name": "Garcia",
            "phone": f"+1202555{n:04d}",
            "language": "en",
            "timezone": "America/New_York",
            "conditions": ["heart_failure"],
        }
        values.update(overrides)
        with rt.sessions() as session, session.begin():
            patient = Patient(**values)
            session.add(patient)
        return patient

    return make


@pytest.fixture()
def post_twilio(client: FlaskClient, fake_twilio: FakeTwilio, rt: Runtime) -> Callable[..., Any]:
    """Post a webhook signed as Twilio signs it, over the public URL the app must rebuild.

    An inbound text (``/twilio/sms``) is then processed as a worker would (the webhook only stores it):
    its answer is saved, its escalations opened and its replies queued, not sent (``run_jobs`` sends).
    ``process=False`` leaves it stored and pending, as it is between the webhook and the worker."""

    def post(
        path: str, params: dict[str, str], *, token: str | None = None, query: str = "", process: bool = True
    ) -> Any:
        url = PUBLIC_BASE_URL + path + (f"?{query}" if query else "")
        signature = sign(url, params, token or fake_twilio.auth_token)
        response = client.post(
            path + (f"?{query}" if query else ""), data=params, headers={"X-Twilio-Signature": signature}
        )
        if process and path == "/twilio/sms":
            drain_inbound(rt)
        return response

    return post


def at(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
