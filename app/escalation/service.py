"""Opening escalations: a new trigger joins an open escalation of the same reason, never piles up."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.escalation.levels import higher, sla_due_at
from app.flows.engine import Escalate
from app.models import Escalation, EscalationStatus, EscalationTrigger, Patient
from app.runtime import Runtime
from app.scheduling.calendar import next_business_day_end

log = logging.getLogger(__name__)


def open_or_join(
    session: Session,
    patient: Patient,
    *,
    level: str,
    reason: str,
    rule_id: str,
    detail: Mapping[str, Any],
    conversation_id: int | None,
    now: dt.datetime,
) -> Escalation:
    existing = session.scalars(
        select(Escalation)
        .where(
            Escalation.patient_id == patient.id,
            Escalation.reason == reason,
            Escalation.status.in_([EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED]),
        )
        .order_by(Escalation.id)
        .with_for_update()
    ).first()
    if existing is None:
        existing = Escalation(
            patient_id=patient.id,
            level=level,
            reason=reason,
            reasons=_reasons([], reason, detail),
            status=EscalationStatus.OPEN,
            created_at=now,
            sla_due_at=sla_due_at(level, now, next_business_day_end=next_business_day_end(now, patient.timezone)),
        )
        session.add(existing)
        session.flush()
        log.info("escalation opened id=%s level=%s reason=%s", existing.id, level, reason)
    else:
        existing.reasons = _reasons(existing.reasons or [], reason, detail)
        raised = higher(existing.level, level)
        if raised != existing.level:
            existing.level = raised
            existing.sla_due_at = sla_due_at(
                raised, now, next_business_day_end=next_business_day_end(now, patient.timezone)
            )
            if existing.status == EscalationStatus.ACKNOWLEDGED:
                existing.status = EscalationStatus.OPEN
        log.info("escalation joined id=%s level=%s reason=%s", existing.id, existing.level, reason)
    session.add(
        EscalationTrigger(
            escalation_id=existing.id,
            conversation_id=conversation_id,
            rule_id=rule_id,
            level=level,
            reason=reason,
            detail=dict(detail),
            created_at=now,
        )
    )
    return existing


def _reasons(known: list[str], reason: str, detail: Mapping[str, Any]) -> list[str]:
    """Every distinct reason that fed this escalation, in order: a joined sign of a group (``detail["signs"]``,
    see ``Rule.group``) shows as its own reason, so staff read "weight_gain, dizziness" on one task."""
    signs = detail.get("signs")
    extra = [str(s) for s in signs] if isinstance(signs, list) else []
    return list(dict.fromkeys([*known, reason, *extra]))


def escalate(
    session: Session,
    rt: Runtime,
    patient: Patient,
    *,
    level: str,
    reason: str,
    rule_id: str,
    detail: Mapping[str, Any],
    conversation_id: int | None,
    now: dt.datetime,
) -> Escalation:
    """Open or join the escalation, and page the on-call nurse at once when it is an EMERGENCY."""
    from app.escalation.paging import page_if_due

    escalation = open_or_join(
        session,
        patient,
        level=level,
        reason=reason,
        rule_id=rule_id,
        detail=detail,
        conversation_id=conversation_id,
        now=now,
    )
    page_if_due(session, rt, escalation, now)
    return escalation


def escalate_event(
    session: Session,
    rt: Runtime,
    patient: Patient,
    event: Escalate,
    *,
    conversation_id: int | None,
    now: dt.datetime,
    extra: Mapping[str, Any] | None = None,
) -> Escalation:
    """What the engine or the routing decided (an :class:`Escalate` event), opened or joined and paged as
    :func:`escalate` does; ``extra`` adds to the event's detail (where it came from)."""
    return escalate(
        session,
        rt,
        patient,
        level=event.level,
        reason=event.reason,
        rule_id=event.rule_id,
        detail={**event.detail, **(extra or {})},
        conversation_id=conversation_id,
        now=now,
    )
