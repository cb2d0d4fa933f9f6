"""The care-manager queue: what to work next, grouped by patient episode, and the actions on it (claim,
assign, acknowledge, resolve, undo) with their audit.

An *episode* is one patient's open escalations taken together (one check-in that fired weight gain and
dizziness, plus a red flag an hour later, is one row a nurse works with one call). Each action names the
escalation ids and the state the nurse saw (:func:`fingerprint`); when another user changed them since,
the action is refused with ``stale`` and the UI says who did what (:func:`last_change`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.escalation.levels import EscalationLevel
from app.models import AuditEvent, Escalation, EscalationStatus, EscalationTrigger, Message, Patient, User

OUTCOMES = (
    "reached_patient",
    "advised_911",
    "appointment_made",
    "medication_adjusted",
    "no_action_needed",
    "unable_to_reach",
    "duplicate",
)
OPEN_STATES = (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED)
#: How long after an action its "Undo" still works.
UNDO_WITHIN = dt.timedelta(minutes=15)
#: Inbound texts shown as the patient's own words: from this long before the episode opened.
WORDS_BEFORE = dt.timedelta(minutes=30)


class ActionRefused(Exception):
    """Why an action was refused, as a code the UI translates (not_open, already_resolved,
    outcome_required, stale, not_allowed, nothing_to_undo)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _severity(level: str) -> int:
    try:
        return EscalationLevel(level).rank
    except ValueError:
        return -1


def _sign_count(escalation: Escalation) -> int:
    counts = [int(t.detail.get("sign_count", 1)) for t in escalation.triggers if isinstance(t.detail, dict)]
    return max(counts, default=1)


@dataclass
class Episode:
    """One patient's open escalations, most severe first; ``words`` are their recent inbound texts."""

    patient: Patient
    escalations: list[Escalation]
    words: list[Message] = field(default_factory=list)

    @property
    def primary(self) -> Escalation:
        return self.escalations[0]

    @property
    def ids(self) -> list[int]:
        return [e.id for e in self.escalations]

    @property
    def level(self) -> str:
        return self.primary.level

    @property
    def reasons(self) -> list[str]:
        seen: dict[str, None] = {}
        for escalation in self.escalations:
            for reason in escalation.reasons or [escalation.reason]:
                seen.setdefault(reason, None)
        return list(seen)

    @property
    def triggers(self) -> list[EscalationTrigger]:
        return sorted((t for e in self.escalations for t in e.triggers), key=lambda t: (t.created_at, t.id))

    @property
    def status(self) -> str:
        """``open`` while any part waits for an acknowledgement, else ``acknowledged``."""
        if any(e.status == EscalationStatus.OPEN for e in self.escalations):
            return EscalationStatus.OPEN
        return EscalationStatus.ACKNOWLEDGED

    @property
    def opened_at(self) -> dt.datetime:
        return min(e.created_at for e in self.escalations)

    @property
    def due_at(self) -> dt.datetime | None:
        """The earliest deadline among the parts not yet acknowledged (an acknowledged part is on time)."""
        dues = [e.sla_due_at for e in self.escalations if e.status == EscalationStatus.OPEN and e.sla_due_at]
        return min(dues) if dues else None

    @property
    def assigned_to_id(self) -> int | None:
        return next((e.assigned_to_id for e in self.escalations if e.assigned_to_id), None)

    @property
    def page_count(self) -> int:
        return max(e.page_count for e in self.escalations)

    @property
    def last_paged_at(self) -> dt.datetime | None:
        times = [e.last_paged_at for e in self.escalations if e.last_paged_at]
        return max(times) if times else None

    @property
    def sign_count(self) -> int:
        return max(_sign_count(e) for e in self.escalations)

    def overdue(self, now: dt.datetime) -> bool:
        due = self.due_at
        return due is not None and due < now

    def sort_key(self) -> tuple[Any, ...]:
        due = self.due_at
        return (-_severity(self.level), -self.sign_count, due is None, due or self.opened_at, self.opened_at)


@dataclass(frozen=True)
class QueueFilter:
    """What the nurse asked to see. ``team_ids``: the users of their team(s) (empty: no team)."""

    mine: bool = False
    team: bool = False
    level: str | None = None
    program_id: int | None = None
    overdue: bool = False
    search: str = ""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class _LightTrigger:
    detail: Any


@dataclass
class _LightEscalation:
    """The columns of an escalation the queue's order and filters read (phase 1 of :func:`open_episodes`)."""

    id: int
    patient_id: int
    level: str
    status: str
    sla_due_at: dt.datetime | None
    created_at: dt.datetime
    assigned_to_id: int | None
    triggers: list[_LightTrigger] = field(default_factory=list)
    page_count: int = 0
    last_paged_at: dt.datetime | None = None


@dataclass(frozen=True)
class _PatientId:
    id: int


def _choose(
    light: Sequence[_LightEscalation],
    filters: QueueFilter,
    user_id: int,
    team_ids: frozenset[int],
    now: dt.datetime,
    limit: int,
) -> list[Episode]:
    """Group by patient, filter (level, mine, team, overdue) and order as the queue does; the first ``limit``."""
    grouped: dict[int, list[Any]] = {}
    for escalation in light:
        grouped.setdefault(escalation.patient_id, []).append(escalation)
    episodes = [
        Episode(patient=_PatientId(pid), escalations=sorted(items, key=lambda e: (-_severity(e.level), e.id)))  # type: ignore[arg-type]
        for pid, items in grouped.items()
    ]
    if filters.level:
        episodes = [e for e in episodes if e.level == filters.level]
    if filters.mine:
        episodes = [e for e in episodes if e.assigned_to_id == user_id]
    if filters.team:
        episodes = [e for e in episodes if e.assigned_to_id is not None and e.assigned_to_id in team_ids]
    if filters.overdue:
        episodes = [e for e in episodes if e.overdue(now)]
    episodes.sort(key=Episode.sort_key)
    return episodes[:limit]


def open_episodes(
    session: Session,
    *,
    scope: frozenset[int] | None,
    filters: QueueFilter,
    user_id: int,
    team_ids: frozenset[int],
    now: dt.datetime,
    limit: int = 300,
) -> list[Episode]:
    """Episodes in the order a nurse should work them: most severe first, then the most signs at once
    (``sign_count`` in a trigger's detail, see ``Rule.group``), then the earliest deadline.

    ``scope`` (program ids, None = all) limits the patients; INFO is for the timeline only (DESIGN §4.4)."""
    severity = case({"EMERGENCY": 0, "URGENT": 1, "ROUTINE": 2, "INFO": 3}, value=Escalation.level, else_=4)
    # Phase 1, plain columns (no ORM objects): which episodes make the page, in order, after the filters.
    # With thousands open, building every escalation, trigger and patient object cost more than the
    # rest of the page (bench/queue.py); only the chosen episodes' rows are loaded as objects (phase 2).
    query = (
        select(
            Escalation.id,
            Escalation.patient_id,
            Escalation.level,
            Escalation.status,
            Escalation.sla_due_at,
            Escalation.created_at,
            Escalation.assigned_to_id,
        )
        .join(Patient, Patient.id == Escalation.patient_id)
        .where(Escalation.status.in_(OPEN_STATES), Escalation.level != "INFO")
    )
    if scope is not None:
        query = query.where(Patient.program_id.in_(scope))
    if filters.program_id is not None:
        query = query.where(Patient.program_id == filters.program_id)
    text = filters.search.strip()[:100]
    if text:
        pattern = f"%{_escape_like(text.lower())}%"
        full_name = func.lower(Patient.given_name + " " + Patient.family_name)
        query = query.where(
            or_(full_name.like(pattern, escape="\\"), func.lower(Patient.mrn).like(pattern, escape="\\"))
        )
    query = query.order_by(
        severity, Escalation.sla_due_at.is_(None), Escalation.sla_due_at, Escalation.created_at
    ).limit(limit * 4)
    light = [_LightEscalation(*row) for row in session.execute(query).all()]
    if light:
        by_id = {e.id: e for e in light}
        for escalation_id, detail in session.execute(
            select(EscalationTrigger.escalation_id, EscalationTrigger.detail).where(
                EscalationTrigger.escalation_id.in_(list(by_id))
            )
        ).all():
            by_id[escalation_id].triggers.append(_LightTrigger(detail))
    chosen = _choose(light, filters, user_id, team_ids, now, limit)
    wanted = [i for episode in chosen for i in episode.ids]
    if not wanted:
        return []
    # Phase 2: the chosen episodes' escalations as objects, with their patients and triggers.
    rows = session.scalars(
        select(Escalation)
        .options(selectinload(Escalation.patient).selectinload(Patient.program), selectinload(Escalation.triggers))
        .where(Escalation.id.in_(wanted))
    ).all()
    grouped: dict[int, list[Escalation]] = {}
    for escalation in rows:
        grouped.setdefault(escalation.patient_id, []).append(escalation)
    episodes = [
        Episode(patient=items[0].patient, escalations=sorted(items, key=lambda e: (-_severity(e.level), e.id)))
        for items in grouped.values()
    ]
    episodes.sort(key=Episode.sort_key)
    _attach_words(session, episodes)
    return episodes


def _attach_words(session: Session, episodes: Sequence[Episode], per_episode: int = 2) -> None:
    """The patient's own recent texts (inbound, from shortly before the episode opened), newest last."""
    if not episodes:
        return
    since = min(e.opened_at for e in episodes) - WORDS_BEFORE
    messages = session.scalars(
        select(Message)
        .where(
            Message.patient_id.in_([e.patient.id for e in episodes]),
            Message.direction == "inbound",
            Message.created_at >= since,
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(len(episodes) * 20)
    ).all()
    by_patient: dict[int | None, list[Message]] = {}
    for message in messages:
        by_patient.setdefault(message.patient_id, []).append(message)
    for episode in episodes:
        start = episode.opened_at - WORDS_BEFORE
        mine = [m for m in by_patient.get(episode.patient.id, []) if m.created_at >= start][:per_episode]
        episode.words = list(reversed(mine))


def resolved_since(session: Session, *, scope: frozenset[int] | None, since: dt.datetime) -> Sequence[Escalation]:
    """Escalations resolved at or after ``since`` (the viewer's local midnight), newest first."""
    query = (
        select(Escalation)
        .join(Patient, Patient.id == Escalation.patient_id)
        .options(selectinload(Escalation.patient), selectinload(Escalation.triggers))
        .where(Escalation.status == EscalationStatus.RESOLVED, Escalation.resolved_at >= since)
        .order_by(Escalation.resolved_at.desc())
        .limit(300)
    )
    if scope is not None:
        query = query.where(Patient.program_id.in_(scope))
    return session.scalars(query).all()


# --- the actions ------------------------------------------------------------------------------------


def fingerprint(escalation: Escalation) -> str:
    """The state a nurse saw: status, level and who it is assigned to (``"open:URGENT:"``)."""
    return f"{escalation.status}:{escalation.level}:{escalation.assigned_to_id or ''}"


def parse_seen(raw: str) -> dict[int, str]:
    """``"12=open:URGENT:;13=acknowledged:EMERGENCY:4"`` → ``{12: "open:URGENT:", 13: ...}``; junk ignored."""
    seen: dict[int, str] = {}
    for part in raw.split(";")[:50]:
        key, sep, value = part.partition("=")
        if sep and key.strip().isdigit():
            seen[int(key)] = value.strip()
    return seen


def encode_seen(escalations: Iterable[Escalation]) -> str:
    return ";".join(f"{e.id}={fingerprint(e)}" for e in escalations)


def check_fresh(escalations: Sequence[Escalation], seen: dict[int, str]) -> None:
    """Raises ``ActionRefused("stale")`` when any escalation is no longer in the state the nurse saw."""
    if any(seen.get(e.id) != fingerprint(e) for e in escalations):
        raise ActionRefused("stale")


def _snapshot(escalation: Escalation) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "status": escalation.status,
        "acknowledged_at": iso(escalation.acknowledged_at),
        "acknowledged_by_id": escalation.acknowledged_by_id,
        "resolved_at": iso(escalation.resolved_at),
        "resolved_by_id": escalation.resolved_by_id,
        "outcome": escalation.outcome,
        "note": escalation.note,
        "assigned_to_id": escalation.assigned_to_id,
        "assigned_at": iso(escalation.assigned_at),
    }


def _restore(escalation: Escalation, snapshot: dict[str, Any]) -> None:
    def when(value: Any) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None

    escalation.status = str(snapshot["status"])
    escalation.acknowledged_at = when(snapshot.get("acknowledged_at"))
    escalation.acknowledged_by_id = snapshot.get("acknowledged_by_id")
    escalation.resolved_at = when(snapshot.get("resolved_at"))
    escalation.resolved_by_id = snapshot.get("resolved_by_id")
    escalation.outcome = snapshot.get("outcome")
    escalation.note = snapshot.get("note")
    escalation.assigned_to_id = snapshot.get("assigned_to_id")
    escalation.assigned_at = when(snapshot.get("assigned_at"))


def _audit(
    session: Session,
    user_id: int,
    action: str,
    escalation: Escalation,
    before: dict[str, Any],
    now: dt.datetime,
    **extra: Any,
) -> AuditEvent:
    event = AuditEvent(
        user_id=user_id,
        action=action,
        subject_type="escalation",
        subject_id=escalation.id,
        detail={"before": before, **extra},
        at=now,
    )
    session.add(event)
    return event


def acknowledge(session: Session, escalation: Escalation, user_id: int, now: dt.datetime) -> AuditEvent:
    """Open → acknowledged by ``user_id`` (who also takes it, when nobody has). Raises ``not_open``."""
    if escalation.status != EscalationStatus.OPEN:
        raise ActionRefused("not_open")
    before = _snapshot(escalation)
    escalation.status = EscalationStatus.ACKNOWLEDGED
    escalation.acknowledged_at = now
    escalation.acknowledged_by_id = user_id
    if escalation.assigned_to_id is None:
        escalation.assigned_to_id = user_id
        escalation.assigned_at = now
    return _audit(session, user_id, "escalation.acknowledged", escalation, before, now)


def resolve(
    session: Session, escalation: Escalation, user_id: int, outcome: str, note: str, now: dt.datetime
) -> AuditEvent:
    """Resolved with one of :data:`OUTCOMES` and a note (multi-line, at most 4,000 characters kept).
    Raises ``already_resolved`` or ``outcome_required``."""
    if escalation.status == EscalationStatus.RESOLVED:
        raise ActionRefused("already_resolved")
    if outcome not in OUTCOMES:
        raise ActionRefused("outcome_required")
    before = _snapshot(escalation)
    if escalation.acknowledged_at is None:
        escalation.acknowledged_at = now
        escalation.acknowledged_by_id = user_id
    escalation.status = EscalationStatus.RESOLVED
    escalation.resolved_at = now
    escalation.resolved_by_id = user_id
    escalation.outcome = outcome
    cleaned = note.replace("\r\n", "\n").strip()[:4000]
    escalation.note = cleaned or None
    return _audit(session, user_id, "escalation.resolved", escalation, before, now, outcome=outcome)


def assign(
    session: Session, escalation: Escalation, user_id: int, assignee_id: int | None, now: dt.datetime
) -> AuditEvent:
    """Give the escalation to ``assignee_id`` (``user_id`` itself = a claim; None = release it)."""
    if escalation.status == EscalationStatus.RESOLVED:
        raise ActionRefused("already_resolved")
    before = _snapshot(escalation)
    escalation.assigned_to_id = assignee_id
    escalation.assigned_at = now if assignee_id else None
    return _audit(session, user_id, "escalation.assigned", escalation, before, now, to=assignee_id)


def undo(session: Session, escalation: Escalation, event: AuditEvent, user_id: int, now: dt.datetime) -> AuditEvent:
    """Put the escalation back as it was before ``event`` (the same user's action, under 15 minutes old,
    and nothing else changed it since). Raises ``nothing_to_undo``."""
    if event.user_id != user_id or event.subject_id != escalation.id or now - event.at > UNDO_WITHIN:
        raise ActionRefused("nothing_to_undo")
    later = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.subject_type == "escalation",
            AuditEvent.subject_id == escalation.id,
            AuditEvent.id > event.id,
            AuditEvent.action.like("escalation.%"),
        )
    )
    before = event.detail.get("before") if isinstance(event.detail, dict) else None
    if later or not isinstance(before, dict):
        raise ActionRefused("nothing_to_undo")
    current = _snapshot(escalation)
    _restore(escalation, before)
    return _audit(session, user_id, "escalation.undone", escalation, current, now, undid=event.id)


@dataclass(frozen=True)
class Change:
    """Who last changed an escalation, for the stale-tab message."""

    action: str
    email: str
    at: dt.datetime


def last_change(session: Session, escalation_ids: Sequence[int], *, not_by: int) -> Change | None:
    row = session.execute(
        select(AuditEvent.action, User.email, AuditEvent.at)
        .join(User, User.id == AuditEvent.user_id)
        .where(
            AuditEvent.subject_type == "escalation",
            AuditEvent.subject_id.in_(list(escalation_ids)),
            AuditEvent.action.like("escalation.%"),
            AuditEvent.user_id != not_by,
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    return Change(action=row[0], email=row[1], at=row[2]) if row else None


def open_queue(session: Session, now: dt.datetime | None = None) -> list[Escalation]:
    """Every open escalation of every program, in the queue's order (episodes flattened)."""
    episodes = open_episodes(
        session,
        scope=None,
        filters=QueueFilter(),
        user_id=0,
        team_ids=frozenset(),
        now=now or dt.datetime.now(dt.UTC),
    )
    return [escalation for episode in episodes for escalation in episode.escalations]
