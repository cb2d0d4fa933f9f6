"""Job transport: RQ on Redis in production and tests, in-process in the embedded demo.

Redis carries only ids. Every job re-reads its rows from SQL and is safe to run twice, so a flushed
Redis loses nothing: the sweeper (``outreach tick``) re-enqueues due work from SQL.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

QUEUE_NAME = "outreach"


class JobQueue(Protocol):
    name: str

    def enqueue(self, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None: ...

    def enqueue_at(self, when: dt.datetime, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
        """Run later (a retry after backoff). The row in SQL is the truth: the sweeper also finds it."""
        ...


class InProcessQueue:
    """Runs each job at once in the calling process: the demo needs no Redis."""

    name = "in-process"

    def enqueue(self, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
        try:
            func(*args)
        except Exception:
            # The row stays in SQL; the next tick retries it, as a worker would.
            log.exception("in-process job failed job_id=%s", job_id)

    def enqueue_at(self, when: dt.datetime, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
        # No timer thread here: the next tick (every 30 s in the demo) picks the row up when it is due.
        return None


class RqQueue:
    name = "rq"

    def __init__(self, redis_url: str, queue_name: str = QUEUE_NAME):
        from redis import Redis
        from rq import Queue

        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self.connection)

    def enqueue(self, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
        self.queue.enqueue(func, *args, job_id=job_id, result_ttl=60, failure_ttl=7 * 24 * 3600)

    def enqueue_at(self, when: dt.datetime, func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
        self.queue.enqueue_at(when, func, *args, job_id=job_id, result_ttl=60, failure_ttl=7 * 24 * 3600)

    def ping(self) -> bool:
        return bool(self.connection.ping())
