"""The RQ worker class the Procfile runs.

Why not RQ's default forking worker: it forks a fresh process per job, so each job would rebuild the
runtime (content library, database pool, Twilio client) — about a second of work for a 200 ms send.
This worker runs jobs in its own process, builds the runtime once at boot (a bad configuration fails
there, not on a patient's first text), and send jobs get their concurrency from threads
(``outbound.deliver_many``). Scale out with more worker processes.
"""

from __future__ import annotations

from typing import Any

from rq import SimpleWorker

from app.bootstrap import current_runtime


class OutreachWorker(SimpleWorker):
    def work(self, *args: Any, **kwargs: Any) -> bool:
        current_runtime()
        return bool(super().work(*args, **kwargs))
