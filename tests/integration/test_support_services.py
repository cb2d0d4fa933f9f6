"""Provisioning of real PostgreSQL and Redis for the suite.

Why: if the fallback to throwaway servers broke, the suite would pass on machines with local servers
and fail (or silently skip) everywhere else; these tests exercise each branch of the rule.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.support import services


@pytest.fixture
def fresh_choice() -> Iterator[None]:
    """Re-run the rule in this test and leave no test-specific choice behind for the next."""
    services.reset_cache()
    yield
    services.reset_cache()


def select_one(url: str) -> int:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select 1")).scalar_one())
    finally:
        engine.dispose()


def ping_from_another_process(code: str, url: str) -> str:
    """Workers run in subprocesses: the URLs must work there, not only in this interpreter."""
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


PG_CHILD = (
    "import sys, sqlalchemy as sa; e = sa.create_engine(sys.argv[1]);"
    "c = e.connect(); print(c.execute(sa.text('select 41 + 1')).scalar())"
)
REDIS_CHILD = "import sys, redis; print(redis.Redis.from_url(sys.argv[1]).ping())"


def test_postgres_admin_url_answers_select_1() -> None:
    url, how = services.postgres_admin_url()
    assert how in {"env", "local", "embedded"}
    assert url.startswith("postgresql+psycopg://")
    assert sa.engine.make_url(url).database == "postgres"
    assert select_one(url) == 1
    assert services.postgres_admin_url() == (url, how)  # cached


def test_create_and_drop_database_even_while_connected() -> None:
    admin, _ = services.postgres_admin_url()
    name = f"outreach_support_{uuid.uuid4().hex[:8]}"
    url = services.create_database(admin, name)
    assert sa.engine.make_url(url).database == name

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (x int)"))
        conn.execute(sa.text("insert into t values (1)"))
    leaked = engine.connect()  # a worker that never let go
    assert leaked.execute(sa.text("select count(*) from t")).scalar_one() == 1

    # Recreating gives an empty database.
    services.create_database(admin, name)
    with sa.create_engine(url, poolclass=NullPool).connect() as conn:
        assert conn.execute(sa.text("select to_regclass('t')")).scalar() is None

    services.drop_database(admin, name)
    # Its backend was terminated: discard it rather than leave it for the garbage collector, whose
    # SQLAlchemy finalizer would log a traceback mid-way through some unrelated code.
    leaked.invalidate()
    leaked.close()
    engine.dispose()
    with sa.create_engine(admin, poolclass=NullPool).connect() as conn:
        exists = conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": name}).first()
    assert exists is None
    services.drop_database(admin, name)  # dropping what is gone is fine


def test_database_names_are_checked() -> None:
    admin, _ = services.postgres_admin_url()
    with pytest.raises(ValueError):
        services.create_database(admin, 'x"; drop database postgres; --')


def test_redis_url_answers_set_and_get() -> None:
    url, how = services.redis_url()
    assert how in {"env", "local", "embedded"}
    if how == "local":
        assert url.endswith("/15")
    client = redis.Redis.from_url(url)
    key = f"outreach-support-{uuid.uuid4().hex}"
    try:
        client.set(key, "value", ex=60)
        assert client.get(key) == b"value"
    finally:
        client.delete(key)
        client.close()


def test_sqlalchemy_url_pins_psycopg() -> None:
    assert services.sqlalchemy_url("postgresql://u:p@h:5433/d") == "postgresql+psycopg://u:p@h:5433/d"
    assert services.sqlalchemy_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert services.sqlalchemy_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert (
        services.sqlalchemy_url("postgresql://postgres@/postgres?host=%2Frun%2Fpg&port=5432")
        == "postgresql+psycopg://postgres@/postgres?host=/run/pg&port=5432"
    )


def test_reachable_env_urls_are_used(monkeypatch: pytest.MonkeyPatch, fresh_choice: None) -> None:
    pg, _ = services.postgres_admin_url()
    rd, _ = services.redis_url()
    services.reset_cache()
    monkeypatch.setenv("TEST_DATABASE_URL", pg.replace("postgresql+psycopg://", "postgresql://", 1))
    monkeypatch.setenv("TEST_REDIS_URL", rd)
    assert services.postgres_admin_url() == (pg, "env")
    assert services.redis_url() == (rd, "env")


@pytest.mark.slow
def test_unreachable_env_postgres_starts_an_embedded_server(
    monkeypatch: pytest.MonkeyPatch, fresh_choice: None, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://127.0.0.1:1/nowhere")
    url, how = services.postgres_admin_url()
    assert how == "embedded"
    assert "?host=/" in url and "%" not in url  # a plain socket path, safe in .ini files and env vars
    assert select_one(url) == 1
    assert ping_from_another_process(PG_CHILD, url) == "42"
    name = f"outreach_embedded_{os.getpid()}"
    assert select_one(services.create_database(url, name)) == 1
    services.drop_database(url, name)
    assert "PostgreSQL: embedded" in capfd.readouterr().err


@pytest.mark.slow
def test_unreachable_env_redis_starts_an_embedded_server(monkeypatch: pytest.MonkeyPatch, fresh_choice: None) -> None:
    monkeypatch.setenv("TEST_REDIS_URL", "redis://127.0.0.1:1/0")
    url, how = services.redis_url()
    assert how == "embedded"
    assert url.startswith("redis://127.0.0.1:") and not url.startswith("redis://127.0.0.1:1/")
    client = redis.Redis.from_url(url)
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()
    assert ping_from_another_process(REDIS_CHILD, url) == "True"


@pytest.mark.slow
def test_no_env_and_no_local_servers_fall_back_to_embedded(monkeypatch: pytest.MonkeyPatch, fresh_choice: None) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.setattr(services, "LOCAL_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:1/postgres")
    monkeypatch.setattr(services, "LOCAL_REDIS_URL", "redis://127.0.0.1:1/15")
    pg, pg_how = services.postgres_admin_url()
    rd, rd_how = services.redis_url()
    assert (pg_how, rd_how) == ("embedded", "embedded")
    assert select_one(pg) == 1
    assert redis.Redis.from_url(rd).ping()
