"""Start a flow now for one patient: staff's "check on this patient now" (issue 7, item 9).

It is outreach the program starts, so the same rules hold as for a scheduled touch: never to an opted-out
or unreachable patient (DESIGN §4.1), one conversation at a time (§4.3), and only inside the patient's
quiet-hours window in their own time zone, narrowed by the program (§4.2, 47 CFR 64.1200(c)(1)).
Refused starts are not deferred: staff see the reason (and, for quiet hours, when it would be allowed)
and decide.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.conversations.addressing import ADDRESSED_TO
from app.conversations.service import (
    ConversationBusy,
    NothingToMonitor,
    active_conversation,
    resolve_flow_id,
    start_conversation,
)
from app.flows.model import Flow
from app.messaging.calls import start_voice_checkin, wants_voice
from app.models import Conversation, Patient, Program
from app.runtime import Runtime
from app.scheduling.calendar import next_allowed, within_quiet_window

#: Text variables filled from an enrollment's (or this request's) variables, by the input they come from
#: (app/conversations/variables.py renders them); the other variables come from the patient and the program.
VARIABLE_INPUTS = {
    "appointment_date": "appointment_at",
    "appointment_time": "appointment_at",
    "dose_time": "dose_time",
    "medication_name": "medication_name",
}


class StartRefused(Exception):
    """The flow cannot start now. ``code``: ``opted_out`` | ``unreachable`` | ``conversation_active`` |
    ``quiet_hours``; ``allowed_at`` (UTC) is the next window start for ``quiet_hours``."""

    def __init__(self, code: str, message: str, allowed_at: dt.datetime | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.allowed_at = allowed_at


class UnknownFlow(LookupError):
    pass


class MissingVariables(ValueError):
    """The flow's texts need inputs (``appointment_at``...) that were not given."""

    def __init__(self, flow_id: str, missing: list[str]):
        super().__init__(f"flow '{flow_id}' needs {', '.join(missing)}")
        self.missing = missing


def outreach_window(program: Program) -> tuple[int, int]:
    """The program's sending hours, never wider than 08:00-21:00 local (as the scheduler applies them)."""
    return max(8, program.quiet_start_hour), min(21, program.quiet_end_hour)


def required_inputs(flow: Flow) -> set[str]:
    """The variable inputs (``appointment_at``, ``dose_time``, ``medication_name``) the flow's texts use."""
    names: set[str] = set()
    texts = [node.text for node in flow.nodes.values()] + [node.hint for node in flow.nodes.values()]
    texts += [node.voice_hint for node in flow.nodes.values()]
    texts += [by_language for node in flow.nodes.values() for by_language in node.instructions.values()]
    texts += [rule.tell for rule in flow.rules]
    for text in texts:
        for template in text.values():
            names.update(field for _, field, _, _ in string.Formatter().parse(template) if field)
    return {VARIABLE_INPUTS[name] for name in names if name in VARIABLE_INPUTS}


def start_flow_now(
    session: Session,
    rt: Runtime,
    patient: Patient,
    flow_id: str,
    now: dt.datetime,
    variables: Mapping[str, str] | None = None,
    *,
    caregiver_id: int | None = None,
) -> Conversation:
    """Start ``flow_id`` for ``patient`` at ``now`` (UTC) and queue its first text once, in this transaction.

    ``caregiver_id``: the flow is addressed to that caregiver of the patient (texted to the caregiver's
    phone, never by call; only the caregiver's replies answer it: app/conversations/service.py
    ``ADDRESSED_TO``).

    The caller passes the patient row locked (``with_for_update``) so two requests for one patient
    cannot both start. Raises ``UnknownFlow`` (also for an internal flow), ``MissingVariables`` (the flow's
    texts need an input that was not given) or ``StartRefused`` (opted out, unreachable, a conversation is active, or
    outside the quiet-hours window in the patient's time zone, or ``nothing_to_monitor``: a combined
    check-in such as ``chronic-care-check`` whose modules the patient's care plan does not name).
    """
    try:
        flow_id = resolve_flow_id(session, rt, patient, flow_id)
    except NothingToMonitor:
        raise StartRefused(
            "nothing_to_monitor", "The patient's care plan names no monitoring this check-in covers."
        ) from None
    flow = rt.content.flows.get(flow_id)
    if flow is None or flow.internal:  # an internal flow (the "right now?" check) is the system's own
        raise UnknownFlow(flow_id)
    missing = sorted(required_inputs(flow) - set(variables or {}))
    if missing:
        raise MissingVariables(flow_id, missing)
    if patient.opted_out:
        raise StartRefused("opted_out", "The patient has opted out of texts.")
    if not patient.reachable:
        raise StartRefused("unreachable", "The patient cannot be reached (inactive, or the phone is invalid).")
    if active_conversation(session, patient.id) is not None:
        raise StartRefused("conversation_active", "The patient is in a conversation; try again when it ends.")
    program = session.get(Program, patient.program_id)
    assert program is not None
    start_hour, end_hour = outreach_window(program)
    if not within_quiet_window(now, patient.timezone, start_hour, end_hour):
        allowed_at = next_allowed(now, patient.timezone, start_hour, end_hour)
        raise StartRefused(
            "quiet_hours",
            f"It is outside {start_hour:02d}:00-{end_hour:02d}:00 in the patient's time zone "
            f"({patient.timezone}); the next allowed time is {allowed_at.isoformat()}.",
            allowed_at,
        )
    # The preferred channel decides (issue 9, item 9): a call, or a text.
    begin = start_voice_checkin if wants_voice(patient) and caregiver_id is None else start_conversation
    if caregiver_id is not None:
        variables = {**(variables or {}), ADDRESSED_TO: str(caregiver_id)}
    try:
        with session.begin_nested():
            return begin(session, rt, patient, flow.id, now, variables=variables)
    except (ConversationBusy, IntegrityError):
        # Another worker started one between the check and the insert (the unique index caught it).
        raise StartRefused("conversation_active", "The patient is in a conversation; try again when it ends.") from None
