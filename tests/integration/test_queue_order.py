"""``open_episodes`` picks the episodes of a page from plain columns, then loads only those (bench/queue_pages.py):
the order (severity, then most signs, then the earliest deadline), the filters and the cap must be what a
nurse would get from all rows at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from app.escalation.queue import QueueFilter, open_episodes
from app.models import Escalation, EscalationTrigger, Patient
from app.runtime import Runtime

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)


def _open(
    rt: Runtime, patient: Patient, level: str, minutes_due: int, signs: int = 1, assigned: int | None = None
) -> int:
    with rt.sessions() as s, s.begin():
        e = Escalation(
            patient_id=patient.id,
            level=level,
            reason="weight_gain",
            reasons=["weight_gain"],
            status="open",
            created_at=NOW - dt.timedelta(minutes=30),
            sla_due_at=NOW + dt.timedelta(minutes=minutes_due),
            assigned_to_id=assigned,
        )
        s.add(e)
        s.flush()
        s.add(
            EscalationTrigger(
                escalation_id=e.id, rule_id="r", level=level, reason="weight_gain", detail={"sign_count": signs}
            )
        )
        return e.id


def test_order_filters_and_cap_over_many_rows(rt: Runtime, make_patient: Callable[..., Patient]) -> None:
    p = [make_patient(given_name=f"P{n}") for n in range(6)]
    _open(rt, p[0], "ROUTINE", 5)
    _open(rt, p[1], "URGENT", 60)
    _open(rt, p[2], "URGENT", 90, signs=3)  # more signs beats an earlier deadline
    _open(rt, p[3], "URGENT", -10)  # overdue
    _open(rt, p[4], "EMERGENCY", 10)
    _open(rt, p[5], "ROUTINE", 1)
    _open(rt, p[5], "EMERGENCY", 30)  # one episode, EMERGENCY by its worst part

    with rt.sessions() as s:

        def names(limit: int = 300, **filters: Any) -> list[str]:
            episodes = open_episodes(
                s,
                scope=None,
                filters=QueueFilter(**filters),
                user_id=0,
                team_ids=frozenset(),
                now=NOW,
                limit=limit,
            )
            return [e.patient.given_name for e in episodes]

        assert names() == ["P5", "P4", "P2", "P3", "P1", "P0"]  # P5: its ROUTINE part is due first
        assert names(limit=3) == ["P5", "P4", "P2"]
        assert names(level="URGENT") == ["P2", "P3", "P1"]
        assert names(overdue=True) == ["P3"]
        assert names(search="p5") == ["P5"]
        first = open_episodes(s, scope=None, filters=QueueFilter(), user_id=0, team_ids=frozenset(), now=NOW, limit=2)[
            0
        ]
        assert [e.level for e in first.escalations] == ["EMERGENCY", "ROUTINE"] and first.patient.program.name
