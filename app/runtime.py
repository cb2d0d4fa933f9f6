"""The composition root: one object that holds the settings, database, job queue, channel and content.

Why: Flask views, RQ jobs and CLI commands all need the same wiring. ``app.bootstrap.build_runtime`` builds a
Runtime and registers it as the process's current one; an RQ worker process that has no app yet builds one
from the environment on first use (``app.bootstrap.current_runtime``, never at import time).
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
    from app.channels.base import Channel, VoiceChannel
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
    #: Phone calls (Twilio Voice, or the console's stand-in); None only in runtimes built by hand.
    voice: VoiceChannel | None = None
    #: Calls per second per account, shared by every worker (app/channels/rate_limit.py).
    call_limiter: RateLimiter | None = None
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
    """The runtime registered in this process. Raises ``LookupError`` when none is: entry points that may
    start without an app (RQ jobs, the worker) use ``app.bootstrap.current_runtime``, which builds one."""
    with _lock:
        if _current is None:
            raise LookupError("no runtime in this process: build one with app.bootstrap.build_runtime")
        return _current


def current_or(build: Callable[[], Runtime]) -> Runtime:
    """The runtime registered in this process, or ``build()``'s (which registers itself) when there is none."""
    global _current
    with _lock:
        if _current is None:
            _current = build()
        return _current


def clear_current() -> None:
    global _current
    with _lock:
        _current = None
