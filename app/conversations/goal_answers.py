"""The weekly goal check's answer back to the care plan (issue 12 item 3; app/careplan/goals.py enrolls).

Here, in the conversations package, because recording an answer is the conversation's business and the
care plan package depends on scheduling, which depends on conversations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CarePlanGoal, Patient

#: The flow of the weekly goal check (content/flows/goal-check.yaml).
GOAL_FLOW = "goal-check"
#: The flow's question whose answer (0-10) is the goal's confidence.
CONFIDENCE_QUESTION = "confidence"


def weekly_goal(session: Session, patient_id: int) -> CarePlanGoal | None:
    """The goal the weekly check asks about: the first (by plan position) with the weekly check on."""
    return session.scalars(
        select(CarePlanGoal)
        .where(CarePlanGoal.patient_id == patient_id, CarePlanGoal.weekly_check.is_(True))
        .order_by(CarePlanGoal.position)
    ).first()


def record_goal_confidence(
    session: Session, patient: Patient, variables: Mapping[str, str] | None, value: float, now: dt.datetime
) -> CarePlanGoal | None:
    """Write the patient's 0-10 answer (``value``) and ``now`` to the goal the check asked about: the
    weekly goal whose text is the conversation's ``goal_text`` (or, when the plan changed its text since,
    the current weekly goal). Returns the goal, or None when the plan has no weekly goal any more."""
    text = (variables or {}).get("goal_text")
    goal = None
    if text:
        goal = session.scalars(
            select(CarePlanGoal)
            .where(CarePlanGoal.patient_id == patient.id, CarePlanGoal.text == text)
            .order_by(CarePlanGoal.position)
        ).first()
    goal = goal or weekly_goal(session, patient.id)
    if goal is None:
        return None
    goal.confidence = max(0, min(10, round(value)))
    goal.confidence_at = now
    return goal
