"""The composition root: one object that holds the settings, database, job queue, channel and content.

Why: Flask views, RQ jobs and CLI commands all need the same wiring. ``create_app`` builds a Runtime and
registers it as the process's current one; an RQ worker process that has no app yet builds one from the
environment on first use (never at import time).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings

if TYPE_CHECKING:
    from app.channels.base import Channel
    from app.channels.rate_limit import RateLimiter
    from app.content import ContentLibrary
    from app.jobs import JobQueue


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    jobs: JobQueue
    channel: Channel
    content: ContentLibrary
    rate_limiter: RateLimiter
    #: The time, injectable so tests (and `outreach tick --now`) can move it; always aware UTC.
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def now(self) -> dt.datetime:
        return self.clock()


_lock = threading.RLock()  # re-entrant: building a runtime registers it as current
_current: Runtime | None = None


def set_current(runtime: Runtime) -> None:
    global _current
    with _lock:
        _current = runtime


def current() -> Runtime:
    """The runtime of this process; a worker started without an app builds one from the environment."""
    global _current
    with _lock:
        if _current is None:
            from app import build_runtime
            from app.config import settings_from_env

            _current = build_runtime(settings_from_env())
        return _current


def clear_current() -> None:
    global _current
    with _lock:
        _current = None
