"""RQ job functions: thin, ids in, service call, nothing else (the runtime is built on first use).

These are entry points: services never import this module. They enqueue a job by its dotted name
(``"app.tasks.send_messages"``, see ``app.jobs.Job``), and RQ imports it by that name on the worker, so
the names here are part of what Redis stores: rename a function and the jobs already queued fail.
"""

from __future__ import annotations

import datetime as dt

from app.bootstrap import current_runtime


def send_message(message_id: int) -> dict[str, int]:
    from app.messaging.outbound import deliver_many

    return deliver_many(current_runtime(), [message_id])


def send_messages(message_ids: list[int]) -> dict[str, int]:
    from app.messaging.outbound import deliver_many

    return deliver_many(current_runtime(), message_ids)


def process_inbound(message_id: int) -> str:
    """Process one stored inbound text (app/messaging/inbound.py ``process_inbound``; enqueued by name)."""
    from app.messaging.inbound import process_inbound as process

    return process(current_runtime(), message_id)


def process_pending_inbound() -> dict[str, int]:
    """Process every pending inbound text in batches (app/messaging/inbound.py ``process_pending``; kicked
    by the SMS webhook through ``JobQueue.enqueue_once``)."""
    from app.messaging.inbound import process_pending

    return process_pending(current_runtime())


def run_tick(now_iso: str | None = None) -> dict[str, int]:
    from app.scheduling.sweeper import tick

    now = dt.datetime.fromisoformat(now_iso) if now_iso else dt.datetime.now(dt.UTC)
    return tick(current_runtime(), now)


def place_call(call_id: int) -> str:
    """Place one outbound call try (app/messaging/calls.py ``place_call``; enqueued by name)."""
    from app.messaging.calls import place_call as place

    return place(current_runtime(), call_id)


def fall_back_to_voice(message_id: int) -> bool:
    """A check-in text refused with 21614: go on by phone (app/messaging/calls.py)."""
    from app.messaging.calls import fall_back_to_voice as fall_back

    return fall_back(current_runtime(), message_id)


def refresh_schedule(patient_id: int) -> int:
    """Derive again the schedule of a patient whose record changed (a preferred time of day, a follow-up
    event; app/conversations/record_updates.py). Returns how many enrollments were rescheduled."""
    from app.scheduling.enrollments import refresh_patient_schedule

    return refresh_patient_schedule(current_runtime(), patient_id)
