"""A program's numbers over a date range (issue 11 item 4): plain functions over set-based SQL queries.

Every figure is for one program (and optionally one campaign) and the half-open range ``[start, end)`` of
UTC instants; the web view turns the viewer's local dates into that range. Definitions (what a number
means is the point of a dashboard, so each is written down):

- ``enrolled``: distinct patients with an enrollment (in the campaign) created before ``end``, whatever its
  status now; ``active_now``: those of them with an active enrollment today.
- ``contacted``: distinct patients with a conversation started in the range (campaign: a conversation a
  touch of that campaign started); ``reached``: of those, patients who answered at least one question
  (an answer whose kind is not ``unanswered``) in a conversation started in the range.
- ``response_rate``: conversations started in the range with at least one answer ÷ conversations started
  in the range (``None`` when none started).
- escalations: created in the range for the program's patients (campaign: with a trigger from one of the
  campaign's conversations), counted by level; INFO is included (it is on the timeline).
- ``median_ack_seconds`` / ``median_resolve_seconds``: median of ``acknowledged_at - created_at`` /
  ``resolved_at - created_at`` over those escalations that have the time (``None`` when none).
- ``sla_breaches``: those escalations acknowledged after ``sla_due_at``, or resolved after it without an
  acknowledgement, or neither while ``sla_due_at`` has passed (the same rule as ``/metrics``'
  ``outreach_escalation_sla_breaches_total``).
- ``opt_outs``: patients of the program (campaign: enrolled in it) whose ``opted_out_at`` is in the range.
- TCM: discharges of the program discharged in the range, by the clock's status at ``now``
  (app/programs/tcm.py: met / due / overdue / cancelled).

Shapes: :func:`program_stats` returns a :class:`ProgramStats`; times are seconds (float).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Select, and_, distinct, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.models import (
    Answer,
    Conversation,
    Discharge,
    Enrollment,
    Escalation,
    EscalationTrigger,
    Patient,
    ScheduledTouch,
)
from app.programs.tcm import clock_of

LEVELS = ("EMERGENCY", "URGENT", "ROUTINE", "INFO")


@dataclass(frozen=True)
class ProgramStats:
    """One program's (and campaign's) figures over ``[start, end)``; see the module docstring."""

    program_id: int
    campaign: str | None
    start: dt.datetime
    end: dt.datetime
    enrolled: int
    active_now: int
    contacted: int
    reached: int
    conversations: int
    answered_conversations: int
    escalations_by_level: dict[str, int]
    median_ack_seconds: float | None
    median_resolve_seconds: float | None
    sla_breaches: int
    opt_outs: int
    tcm: dict[str, int] = field(default_factory=dict)

    @property
    def response_rate(self) -> float | None:
        """Answered ÷ started conversations (0..1), ``None`` when none started."""
        return self.answered_conversations / self.conversations if self.conversations else None

    @property
    def escalations(self) -> int:
        return sum(self.escalations_by_level.values())


def campaign_conversation_ids(program_id: int, campaign: str) -> Select[int | None]:
    """A subquery: ids of conversations a touch of ``campaign`` started for the program's patients."""
    return (
        select(ScheduledTouch.conversation_id)
        .join(Enrollment, Enrollment.id == ScheduledTouch.enrollment_id)
        .join(Patient, Patient.id == Enrollment.patient_id)
        .where(
            Patient.program_id == program_id,
            Enrollment.campaign == campaign,
            ScheduledTouch.conversation_id.is_not(None),
        )
    )


def _conversations(program_id: int, campaign: str | None, start: dt.datetime, end: dt.datetime) -> Select[int]:
    query = (
        select(Conversation.id)
        .join(Patient, Patient.id == Conversation.patient_id)
        .where(Patient.program_id == program_id, Conversation.started_at >= start, Conversation.started_at < end)
    )
    if campaign is not None:
        query = query.where(Conversation.id.in_(campaign_conversation_ids(program_id, campaign)))
    return query


def escalations_in_range(
    program_id: int, campaign: str | None, start: dt.datetime, end: dt.datetime
) -> Select[Escalation]:
    """The escalations a dashboard counts (created in the range; campaign: with a trigger of its own)."""
    query = (
        select(Escalation)
        .join(Patient, Patient.id == Escalation.patient_id)
        .where(Patient.program_id == program_id, Escalation.created_at >= start, Escalation.created_at < end)
    )
    if campaign is not None:
        query = query.where(
            exists().where(
                EscalationTrigger.escalation_id == Escalation.id,
                EscalationTrigger.conversation_id.in_(campaign_conversation_ids(program_id, campaign)),
            )
        )
    return query


def _median_seconds(pairs: list[tuple[dt.datetime, dt.datetime | None]]) -> float | None:
    spans = [(later - earlier).total_seconds() for earlier, later in pairs if later is not None]
    return float(statistics.median(spans)) if spans else None


def program_stats(
    session: Session,
    program_id: int,
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    campaign: str | None = None,
) -> ProgramStats:
    """Every figure of the module docstring for one program (campaign) and range; about ten queries,
    none per patient or per escalation."""
    enrolled_query = (
        select(Enrollment.patient_id, Enrollment.status)
        .join(Patient, Patient.id == Enrollment.patient_id)
        .where(Patient.program_id == program_id, Enrollment.created_at < end)
    )
    if campaign is not None:
        enrolled_query = enrolled_query.where(Enrollment.campaign == campaign)
    enrolled_rows = session.execute(enrolled_query).all()
    enrolled = len({patient_id for patient_id, _status in enrolled_rows})
    active_now = len({patient_id for patient_id, status in enrolled_rows if status == "active"})

    conversations = _conversations(program_id, campaign, start, end).subquery()
    answered = (
        select(Answer.conversation_id)
        .where(Answer.conversation_id.in_(select(conversations.c.id)), Answer.kind != "unanswered")
        .distinct()
        .subquery()
    )
    started = session.scalar(select(func.count()).select_from(conversations)) or 0
    answered_count = session.scalar(select(func.count()).select_from(answered)) or 0
    contacted = (
        session.scalar(
            select(func.count(distinct(Conversation.patient_id))).where(Conversation.id.in_(select(conversations.c.id)))
        )
        or 0
    )
    reached = (
        session.scalar(
            select(func.count(distinct(Conversation.patient_id))).where(
                Conversation.id.in_(select(answered.c.conversation_id))
            )
        )
        or 0
    )

    escalations = escalations_in_range(program_id, campaign, start, end).subquery()
    by_level: Counter[str] = Counter(
        dict(session.execute(select(escalations.c.level, func.count()).group_by(escalations.c.level)).all())
    )
    times = session.execute(
        select(escalations.c.created_at, escalations.c.acknowledged_at, escalations.c.resolved_at)
    ).all()
    due = escalations.c.sla_due_at
    breached = and_(
        due.is_not(None),
        or_(
            escalations.c.acknowledged_at > due,
            and_(escalations.c.acknowledged_at.is_(None), escalations.c.resolved_at > due),
            and_(escalations.c.acknowledged_at.is_(None), escalations.c.resolved_at.is_(None), due < now),
        ),
    )
    sla_breaches = session.scalar(select(func.count()).select_from(escalations).where(breached)) or 0

    opt_query = select(func.count(Patient.id)).where(
        Patient.program_id == program_id, Patient.opted_out_at >= start, Patient.opted_out_at < end
    )
    if campaign is not None:
        opt_query = opt_query.where(
            exists().where(Enrollment.patient_id == Patient.id, Enrollment.campaign == campaign)
        )
    opt_outs = session.scalar(opt_query) or 0

    discharges = session.scalars(
        select(Discharge)
        .options(selectinload(Discharge.attempts))
        .where(Discharge.program_id == program_id, Discharge.discharged_at >= start, Discharge.discharged_at < end)
    ).all()
    tcm = Counter(clock_of(d, now).status for d in discharges)

    return ProgramStats(
        program_id=program_id,
        campaign=campaign,
        start=start,
        end=end,
        enrolled=enrolled,
        active_now=active_now,
        contacted=contacted,
        reached=reached,
        conversations=started,
        answered_conversations=answered_count,
        escalations_by_level={level: int(by_level.get(level, 0)) for level in LEVELS},
        median_ack_seconds=_median_seconds([(created, ack) for created, ack, _res in times]),
        median_resolve_seconds=_median_seconds([(created, res) for created, _ack, res in times]),
        sla_breaches=sla_breaches,
        opt_outs=opt_outs,
        tcm={status: int(tcm.get(status, 0)) for status in ("met", "due", "overdue", "cancelled")},
    )


def answers_export(
    program_id: int, start: dt.datetime, end: dt.datetime, campaign: str | None = None
) -> Select[Answer, str, str, str]:
    """Rows for the answers CSV: the answer, the patient's MRN, given and family name; oldest first."""
    query = (
        select(Answer, Patient.mrn, Patient.given_name, Patient.family_name)
        .join(Patient, Patient.id == Answer.patient_id)
        .where(Patient.program_id == program_id, Answer.answered_at >= start, Answer.answered_at < end)
        .order_by(Answer.answered_at, Answer.id)
    )
    if campaign is not None:
        query = query.where(Answer.conversation_id.in_(campaign_conversation_ids(program_id, campaign)))
    return query


def escalations_export(
    program_id: int, start: dt.datetime, end: dt.datetime, campaign: str | None = None
) -> Select[Escalation, str, str, str]:
    """Rows for the escalations CSV (created in the range), oldest first."""
    base = escalations_in_range(program_id, campaign, start, end).subquery()
    return (
        select(Escalation, Patient.mrn, Patient.given_name, Patient.family_name)
        .join(Patient, Patient.id == Escalation.patient_id)
        .where(Escalation.id.in_(select(base.c.id)))
        .order_by(Escalation.created_at, Escalation.id)
    )
