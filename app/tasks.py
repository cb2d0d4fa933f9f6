"""RQ job functions: thin, ids in, service call, nothing else (the runtime is built on first use)."""

from __future__ import annotations

import datetime as dt

from app import runtime


def send_message(message_id: int) -> dict[str, int]:
    from app.outbound import deliver_many

    return deliver_many(runtime.current(), [message_id])


def send_messages(message_ids: list[int]) -> dict[str, int]:
    from app.outbound import deliver_many

    return deliver_many(runtime.current(), message_ids)


def process_inbound(message_id: int) -> str:
    """Process one stored inbound text (app/inbound.py ``process_inbound``; enqueued by name)."""
    from app.inbound import process_inbound as process

    return process(runtime.current(), message_id)


def run_tick(now_iso: str | None = None) -> dict[str, int]:
    from app.scheduling.sweeper import tick

    now = dt.datetime.fromisoformat(now_iso) if now_iso else dt.datetime.now(dt.UTC)
    return tick(runtime.current(), now)
