"""The care-manager queue: what to work next, and the acknowledge / resolve actions with their audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from app.models import AuditEvent, Escalation, EscalationStatus, EscalationTrigger

OUTCOMES = (
    "reached_patient",
    "advised_911",
    "appointment_made",
    "medication_adjusted",
    "no_action_needed",
    "unable_to_reach",
    "duplicate",
)


class ActionRefused(Exception):
    """Why an action was refused, as a code the UI translates."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def open_queue(session: Session) -> Sequence[Escalation]:
    """Most severe first, then the most signs at once (several heart-failure signs in one check-in rank
    above one sign of the same level: ``sign_count`` in a trigger's detail, see ``Rule.group``), then
    the earliest SLA deadline: the order a nurse should work them."""
    severity = case({"EMERGENCY": 0, "URGENT": 1, "ROUTINE": 2, "INFO": 3}, value=Escalation.level, else_=4)
    signs = (
        select(func.coalesce(func.max(EscalationTrigger.detail["sign_count"].as_integer()), 1))
        .where(EscalationTrigger.escalation_id == Escalation.id)
        .scalar_subquery()
    )
    return session.scalars(
        select(Escalation)
        .options(selectinload(Escalation.patient), selectinload(Escalation.triggers))
        .where(
            Escalation.status.in_([EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED]),
            Escalation.level != "INFO",  # INFO is for the timeline only (DESIGN §4.4)
        )
        .order_by(severity, signs.desc(), Escalation.sla_due_at.is_(None), Escalation.sla_due_at, Escalation.created_at)
        .limit(500)
    ).all()


def acknowledge(session: Session, escalation: Escalation, user_id: int, now: dt.datetime) -> None:
    if escalation.status != EscalationStatus.OPEN:
        raise ActionRefused("not_open")
    escalation.status = EscalationStatus.ACKNOWLEDGED
    escalation.acknowledged_at = now
    escalation.acknowledged_by_id = user_id
    session.add(
        AuditEvent(
            user_id=user_id,
            action="escalation.acknowledged",
            subject_type="escalation",
            subject_id=escalation.id,
            at=now,
        )
    )


def resolve(session: Session, escalation: Escalation, user_id: int, outcome: str, note: str, now: dt.datetime) -> None:
    if escalation.status == EscalationStatus.RESOLVED:
        raise ActionRefused("already_resolved")
    if outcome not in OUTCOMES:
        raise ActionRefused("outcome_required")
    if escalation.acknowledged_at is None:
        escalation.acknowledged_at = now
        escalation.acknowledged_by_id = user_id
    escalation.status = EscalationStatus.RESOLVED
    escalation.resolved_at = now
    escalation.resolved_by_id = user_id
    escalation.outcome = outcome
    escalation.note = note.strip()[:4000] or None
    session.add(
        AuditEvent(
            user_id=user_id,
            action="escalation.resolved",
            subject_type="escalation",
            subject_id=escalation.id,
            detail={"outcome": outcome},
            at=now,
        )
    )
