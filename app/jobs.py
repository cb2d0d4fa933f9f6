"""Job transport: RQ on Redis in production and tests, in-process in the embedded demo.

Redis carries only ids. Every job re-reads its rows from SQL and is safe to run twice, so a flushed
Redis loses nothing: the sweeper (``outreach tick``) re-enqueues due work from SQL.

For the same reason an enqueue never fails its caller: it runs after the rows it names are committed
(``app.db.after_commit``), so raising then would turn a stored inbound text or a queued reply into a 500
that Twilio does not retry. A Redis that is down is logged (job name and id only, no patient data) and
the work waits in SQL for the next tick; ``/healthz`` reports the queue as degraded meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from importlib import import_module
from typing import Any, Protocol

log = logging.getLogger(__name__)

QUEUE_NAME = "outreach"

#: A job: the function itself, or its dotted name (``"app.tasks.process_inbound"``) so a service can enqueue
#: a job without importing the job module (RQ imports it by name on the worker).
Job = Callable[..., Any] | str


def resolve(job: Job) -> Callable[..., Any]:
    """The function a job names (``"package.module.function"``), or the function itself."""
    if callable(job):
        return job
    module, _, name = job.rpartition(".")
    func: Callable[..., Any] = getattr(import_module(module), name)
    return func


def job_name(job: Job) -> str:
    return job if isinstance(job, str) else getattr(job, "__name__", "?")


class JobQueue(Protocol):
    name: str

    def enqueue(self, func: Job, *args: Any, job_id: str | None = None) -> None:
        """Run ``func(*args)`` soon on a worker. Best effort: never raises for a transport failure."""
        ...

    def enqueue_at(self, when: dt.datetime, func: Job, *args: Any, job_id: str | None = None) -> None:
        """Run later (a retry after backoff). The row in SQL is the truth: the sweeper also finds it."""
        ...

    def enqueue_once(self, func: Job, *, key: str, ttl_seconds: int) -> None:
        """Enqueue ``func()`` unless a job enqueued under ``key`` has not started yet (it calls
        :meth:`started` first thing). For work that a job finds in SQL by itself (all pending inbound
        texts): one webhook in many pays an enqueue, the others one cheap check. ``ttl_seconds`` bounds
        how long a lost job can hold the key. Best effort, as :meth:`enqueue`."""
        ...

    def started(self, key: str) -> None:
        """The job enqueued under ``key`` is running: the next :meth:`enqueue_once` enqueues another."""
        ...


class InProcessQueue:
    """Runs each job at once in the calling process: the demo needs no Redis."""

    name = "in-process"

    def enqueue(self, func: Job, *args: Any, job_id: str | None = None) -> None:
        try:
            resolve(func)(*args)
        except Exception:
            # The row stays in SQL; the next tick retries it, as a worker would.
            log.exception("in-process job failed job_id=%s", job_id)

    def enqueue_at(self, when: dt.datetime, func: Job, *args: Any, job_id: str | None = None) -> None:
        # No timer thread here: the next tick (every 30 s in the demo) picks the row up when it is due.
        return None

    def enqueue_once(self, func: Job, *, key: str, ttl_seconds: int) -> None:
        self.enqueue(func, job_id=key)

    def started(self, key: str) -> None:
        return None


#: How long an enqueue waits to connect to Redis before leaving the work to the sweeper (seconds).
CONNECT_TIMEOUT_SECONDS = 2.0


class RqQueue:
    name = "rq"

    def __init__(self, redis_url: str, queue_name: str = QUEUE_NAME):
        from redis import Redis
        from rq import Queue

        self.connection = Redis.from_url(redis_url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
        self.queue = Queue(queue_name, connection=self.connection)

    def enqueue(self, func: Job, *args: Any, job_id: str | None = None) -> None:
        from redis.exceptions import RedisError

        try:
            self.queue.enqueue(_rq_target(func), *args, job_id=job_id, result_ttl=60, failure_ttl=7 * 24 * 3600)
        except RedisError as exc:
            _left_to_sweeper(func, job_id, exc)

    def enqueue_at(self, when: dt.datetime, func: Job, *args: Any, job_id: str | None = None) -> None:
        from redis.exceptions import RedisError

        try:
            self.queue.enqueue_at(
                when, _rq_target(func), *args, job_id=job_id, result_ttl=60, failure_ttl=7 * 24 * 3600
            )
        except RedisError as exc:
            _left_to_sweeper(func, job_id, exc)

    def enqueue_once(self, func: Job, *, key: str, ttl_seconds: int) -> None:
        """``SET outreach:once:<key> NX EX ttl``, and the enqueue only when that set the key. Correct
        against a job already running: it deletes the key (:meth:`started`) before it reads SQL, so work
        committed before a failed ``SET NX`` is seen by the job holding the key."""
        from redis.exceptions import RedisError

        try:
            if not self.connection.set(_once_key(key), b"1", nx=True, ex=ttl_seconds):
                return
        except RedisError as exc:
            _left_to_sweeper(func, key, exc)
            return
        self.enqueue(func, job_id=None)

    def started(self, key: str) -> None:
        from redis.exceptions import RedisError

        try:
            self.connection.delete(_once_key(key))
        except RedisError as exc:  # the key expires by itself (``ttl_seconds``)
            log.warning("queue unavailable (%s): once-key %s not cleared", type(exc).__name__, key)

    def ping(self) -> bool:
        return bool(self.connection.ping())


def _once_key(key: str) -> str:
    return f"outreach:once:{key}"


def _rq_target(func: Job) -> Any:
    """RQ takes a function or its dotted name alike (a name is imported on the worker)."""
    return func


def _left_to_sweeper(func: Job, job_id: str | None, exc: Exception) -> None:
    # Job ids and function names carry row ids only; the exception's class says what failed.
    log.warning(
        "queue unavailable (%s): job %s id=%s not enqueued, left to the sweeper",
        type(exc).__name__,
        job_name(func),
        job_id,
    )
