"""The RQ worker class ``bench/sms_inbound.py`` starts: the app's ``OutreachWorker``, counting PostgreSQL
round trips, and running only the inbound-processing jobs.

Round trips: see :func:`count_round_trips` (every psycopg operation that waited for the server).
Statements: SQLAlchemy's ``before_cursor_execute`` on the runtime's engine (an ``executemany`` is one).
Both are added to the Redis hash ``bench:counts`` after every job.

Only ``app.tasks.process_pending_inbound`` and ``app.tasks.process_inbound`` run: the target is "answer
stored, next question queued", so the send jobs the replies queue are parked (their texts counted in
``bench:counts`` ``parked_texts``, the jobs left unrun) instead of calling the Twilio server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

import psycopg
from sqlalchemy import event

from app.bootstrap import current_runtime
from app.messaging.inbound import PROCESS_JOB, PROCESS_PENDING_JOB
from app.worker import OutreachWorker

COUNTS_KEY = "bench:counts"
RUNS = (PROCESS_JOB, PROCESS_PENDING_JOB)
_counts: Counter[str] = Counter()
_installed = False


def count_round_trips(counts: Counter[str], key: str = "round_trips") -> Callable[[], None]:
    """Count, in ``counts[key]``, the exchanges with PostgreSQL of every psycopg connection in this process;
    returns the function that removes the count again.

    psycopg runs every operation through ``Connection.wait(generator)``; the generator yields each time it
    must wait for the socket. An operation that never waits (switching ``autocommit`` on an idle
    connection, the pool's rollback of a connection with no transaction open) is not a round trip and is
    not counted; one that waits is counted once (a statement, ``BEGIN``, ``COMMIT``, a connection's
    start-up; an ``executemany`` in pipeline mode may count a few)."""
    original = psycopg.Connection.wait

    def counted(gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        try:
            waiting = next(gen)
        except StopIteration as stop:
            return stop.value
        counts[key] += 1
        while True:
            ready = yield waiting
            try:
                waiting = gen.send(ready)
            except StopIteration as stop:
                return stop.value

    def wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, counted(gen), *args, **kwargs)

    psycopg.Connection.wait = wait  # type: ignore[method-assign]

    def remove() -> None:
        psycopg.Connection.wait = original  # type: ignore[method-assign]

    return remove


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    count_round_trips(_counts)

    @event.listens_for(current_runtime().engine, "before_cursor_execute")
    def _statement(*_args: Any) -> None:
        _counts["statements"] += 1


class CountingWorker(OutreachWorker):
    def work(self, *args: Any, **kwargs: Any) -> bool:
        _install()
        return bool(super().work(*args, **kwargs))

    def execute_job(self, job: Any, queue: Any) -> Any:
        if job.func_name not in RUNS:
            if job.func_name.endswith("send_messages") and job.args:
                _counts["parked_texts"] += len(job.args[0])
            else:
                _counts["parked_jobs"] += 1
            self._flush()
            return None
        result = super().execute_job(job, queue)
        _counts["jobs"] += 1
        self._flush()
        return result

    def _flush(self) -> None:
        if _counts:
            pipe = self.connection.pipeline(transaction=False)
            for key, value in _counts.items():
                pipe.hincrby(COUNTS_KEY, key, value)
            pipe.execute()
            _counts.clear()
