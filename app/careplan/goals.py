"""The weekly goal check (issue 12 item 3): a care-plan goal with the weekly check on is asked about once a
week ("This week, did you <goal>?" then the 0-10 confidence ruler), and the answer goes back to the goal.

- :func:`sync_goal_check` (called when a plan is saved) keeps the patient enrolled in the campaign
  ``goal-check`` while the plan has a goal with the weekly check on, with that goal's text as the
  enrollment's ``goal_text`` (the first such goal, in the plan's order); no such goal: the enrollment ends.
  The anchor is kept when the plan changes, so the weekly day does not move.
- ``app.conversations.goal_answers.record_goal_confidence`` (called when the flow ``goal-check`` saves
  its ``confidence`` answer) writes the answer and its time to the goal the conversation asked about. A
  confidence of 4 or less opens a ROUTINE task through the flow's own rule (content/flows/goal-check.yaml).

Clinical source: the confidence ruler of motivational interviewing (Rollnick, Miller & Butler 2008).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.goal_answers import weekly_goal
from app.models import Enrollment, Patient
from app.runtime import Runtime

#: The campaign of the weekly goal check (content/campaigns/goal-check.yaml).
GOAL_CAMPAIGN = "goal-check"


def sync_goal_check(session: Session, rt: Runtime, patient: Patient, actor: str, now: dt.datetime) -> None:
    """Enroll in, update or end the weekly goal check to match the saved plan (see the module docstring).

    A program that does not run ``goal-check`` (its campaign list leaves it out) enrolls nobody. Enrolling
    may raise ConsentRequired like any enrollment (the caller's transaction is then rolled back)."""
    from app.programs.enrollment import unenroll
    from app.programs.programs import campaign_allowed
    from app.scheduling.enrollments import ACTIVE, enroll

    active = session.scalars(
        select(Enrollment).where(
            Enrollment.patient_id == patient.id, Enrollment.campaign == GOAL_CAMPAIGN, Enrollment.status == ACTIVE
        )
    ).first()
    goal = weekly_goal(session, patient.id)
    if goal is None or rt.content.campaign(GOAL_CAMPAIGN) is None:
        if active is not None:
            unenroll(session, active, "no_weekly_goal", actor, now)
        return
    if active is None and not campaign_allowed(patient.program, GOAL_CAMPAIGN):
        return
    variables = {"goal_text": goal.text}
    if active is not None and (active.variables or {}).get("goal_text") == goal.text:
        return
    enroll(session, rt, patient, GOAL_CAMPAIGN, active.anchor_date if active else None, now, variables=variables)
