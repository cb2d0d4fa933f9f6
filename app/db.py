"""Engine and session factory.

Why not Flask-SQLAlchemy: jobs, the CLI and the web share one plain ``sessionmaker`` so a service
function runs the same way in a request, an RQ worker or a test, and owns its own transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, Engine, create_engine, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

#: A pooled connection idle this long is pinged before use (see ``_ping_if_idle``).
log = logging.getLogger(__name__)
T = TypeVar("T")
PING_IF_IDLE_SECONDS = 2.0
#: Connections are replaced after this age (checked at checkout).
POOL_RECYCLE_SECONDS = 300


class Base(DeclarativeBase):
    pass


def _normalise_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def make_engine(url: str) -> Engine:
    """An engine whose errors never carry patient data (DESIGN §4.8): statement parameters are hidden
    (``hide_parameters``) and PostgreSQL's error text, which quotes the refused row and values, is cut
    down to schema names and the SQLSTATE (``_redact_driver_errors``)."""
    url = _normalise_url(url)
    kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        # No ``pool_pre_ping``: it costs a ``SELECT 1`` round trip (plus two autocommit switches) on
        # every checkout, i.e. on every request. A connection idle for a while is still pinged before
        # use (``_ping_if_idle``); one in steady use is not, and if the server dropped it anyway the
        # error invalidates the whole pool (SQLAlchemy's disconnect handling), as it would mid-request.
        kwargs.update(pool_size=10, max_overflow=20, pool_recycle=POOL_RECYCLE_SECONDS)
    engine = create_engine(url, **kwargs)
    _redact_driver_errors(engine)
    if not url.startswith("sqlite"):
        _ping_if_idle(engine)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


_QUOTED = re.compile(r'"[^"]*"')


def redacted_driver_message(error: BaseException) -> str | None:
    """PostgreSQL's error text without data: the primary message up to its first colon with quoted parts
    blanked, the SQLSTATE, and the table, column, constraint and type names. ``None`` when there is
    nothing to redact (a client-side error such as a refused connection, or SQLite, whose messages name
    constraints and columns, never values).

    Why: the server's text quotes what it refused — ``DETAIL: Failing row contains (…names, numbers…)``,
    ``Key (mrn)=(…) already exists``, ``invalid input syntax for type integer: "…"``.
    """
    diag = getattr(error, "diag", None)
    sqlstate = getattr(diag, "sqlstate", None)
    if diag is None or not sqlstate:
        return None
    primary = _QUOTED.sub('"…"', str(diag.message_primary or "").split(":", 1)[0]).strip()
    names = [
        f"{label}={value}"
        for label, value in (
            ("table", diag.table_name),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
            ("type", diag.datatype_name),
        )
        if value
    ]
    return " ".join([primary or "database error", f"[sqlstate {sqlstate}]", *names])


def _redact_driver_errors(engine: Engine) -> None:
    """Rewrite a failed statement's error text before anything logs or raises it: the driver's exception
    (printed as the cause in tracebacks) and SQLAlchemy's wrapper both get the redacted text."""

    @event.listens_for(engine, "handle_error")
    def _redact(context: Any) -> None:
        original = context.original_exception
        redacted = redacted_driver_message(original)
        if redacted is None:
            return
        original.args = (redacted,)
        wrapper = context.sqlalchemy_exception
        if wrapper is not None:
            wrapper.args = (f"({type(original).__module__}.{type(original).__name__}) {redacted}",)


def _ping_if_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat in the pool: ping on checkout only when
    the connection was idle for ``PING_IF_IDLE_SECONDS`` or more (a restarted server, a proxy's or
    firewall's idle timeout). A failed ping makes the pool replace the connection (``DisconnectionError``),
    exactly what ``pool_pre_ping`` does, without a round trip per request under load."""

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IF_IDLE_SECONDS:
            return  # a fresh connection, or one in use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(str(exc)) from exc
            raise
        if not alive:
            raise DisconnectionError("ping failed")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def run_in_transaction(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction; if the pooled connection turns out dead, once more on a new one.

    The pool pings only idle connections (``_ping_if_idle``), so a server restart can hand a request a
    connection that no longer works. Nothing from the failed attempt was committed, so the work may run
    again; callers must be idempotent (the inbound webhook is: a committed first attempt makes the retry
    a duplicate of its SID).
    """
    for attempt in (1, 2):
        try:
            with factory() as session, session.begin():
                return work(session)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("database connection lost; retrying the transaction once")
    raise AssertionError("unreachable")


def after_commit(session: Session, action: Any) -> None:
    """Run ``action()`` once this session's transaction commits (enqueue a job only for committed rows)."""
    session.info.setdefault("after_commit", []).append(action)


def install_commit_hooks(factory: sessionmaker[Session]) -> None:
    @event.listens_for(factory, "after_commit")
    def _run(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a SAVEPOINT released; the real commit is still to come
        actions = session.info.pop("after_commit", [])
        for action in actions:
            try:
                action()
            except Exception:
                # The transaction is committed: failing now would report stored work as lost. What the
                # action would have started (a job) is found again in SQL by the sweeper.
                log.exception("after-commit action failed; the sweeper will pick its work up from SQL")

    @event.listens_for(factory, "after_rollback")
    def _drop(session: Session) -> None:
        session.info.pop("after_commit", None)
        session.info.pop("send_rows", None)  # app.messaging.outbound.enqueue_delivery's rows, never sent


#: Fewer rows than this go in one executemany INSERT (one round trip), more by COPY (start, data, end).
COPY_FROM_ROWS = 100


def insert_many(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts of column name -> value, every row with the same keys) into ``table`` in the
    session's transaction: PostgreSQL's COPY (one round trip, no SQL text to build and parse for
    thousands of VALUES), an executemany INSERT elsewhere (the embedded SQLite). No ORM objects, no
    column defaults filled: give every column that needs a value. Used by the bulk paths (CSV import,
    bulk enrollment)."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) < COPY_FROM_ROWS:
        session.execute(insert(table), rows)
        return
    columns = [c for c in table.columns if c.name in rows[0]]
    names = ", ".join(f'"{c.name}"' for c in columns)
    converters = [_copy_converter(column) for column in columns]
    names_only = [column.name for column in columns]
    plain = all(convert is None for convert in converters)
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            if plain:
                copy.write_row([row[name] for name in names_only])
            else:
                copy.write_row(
                    [
                        row[name] if convert is None else convert(row[name])
                        for name, convert in zip(names_only, converters, strict=True)
                    ]
                )


def _copy_converter(column: Any) -> Callable[[Any], Any] | None:
    """How one column's Python value is written in COPY: JSON as its text, datetimes in UTC (the
    session's time zone may be another), anything else as it is (None)."""
    if isinstance(column.type, JSON):
        return _json_or_null
    python_type = None
    with contextlib.suppress(NotImplementedError):
        python_type = column.type.python_type
    if python_type is dt.datetime:
        return _utc
    return None


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC)
