"""A patient's care plan (issue 12 item 3): conditions, goals, thresholds, medications, monitoring.

The plan is where the check-ins take their orders from:

- ``conditions`` are ``patients.conditions`` (campaigns' ``conditions:`` and the combined check-in read them);
- ``thresholds`` are ``patients.thresholds``, the per-patient overrides of a flow's clinical thresholds that
  the engine reads (``weight_gain_1_day_lb: 2``); every change is a ``threshold_changes`` row (from, to,
  who, when) and an audit event;
- ``goals`` the patient chose ("walk 10 minutes a day"), each with a weekly check and the patient's last
  0-10 confidence and when it was given; a goal with the weekly check on enrolls the patient in the weekly
  goal check (app/careplan/goals.py), which writes each answer back to the goal;
- ``medications`` with dose times ("08:00"): their times are the ``dose_times`` of the patient's active
  medication-reminder enrollments (campaigns with ``times: dose_times``);
- ``monitoring``: the modules the daily check-in composes (``hf``, ``diabetes``, ``copd``; None: the
  modules of the patient's conditions). Two or more modules: the patient's module campaigns
  (hf-remote-monitoring...) are replaced by the one combined campaign (chronic-care).

Saving a plan re-derives the schedule: pending occurrences only (sent ones are kept), with a timeline row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.careplan.goals import sync_goal_check
from app.flows.compose import select_modules
from app.models import (
    AuditEvent,
    CarePlan,
    CarePlanGoal,
    CarePlanMedication,
    Enrollment,
    Patient,
    ThresholdChange,
)
from app.patients.service import set_thresholds
from app.patients.thresholds import threshold_problems
from app.programs.combined import combined_campaign, module_campaigns
from app.programs.enrollment import note_event, unenroll
from app.programs.programs import campaign_allowed
from app.runtime import Runtime
from app.scheduling.enrollments import ACTIVE, derive_touches, enroll, note, reschedule_if_changed


class CarePlanInvalid(ValueError):
    """A plan that names something unknown: ``fields`` maps each field to its problem."""

    def __init__(self, fields: Mapping[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = dict(fields)


@dataclass(frozen=True)
class Goal:
    text: str
    weekly_check: bool = True
    #: "How sure are you that you can do it?" 0 (not at all) to 10 (totally sure); None: not asked yet.
    confidence: int | None = None


@dataclass(frozen=True)
class Medication:
    name: str
    dose: str | None = None
    #: Local times of day, "HH:MM".
    times: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanInput:
    """A whole plan (PUT replaces it). ``monitoring`` None: follow the patient's conditions."""

    conditions: tuple[str, ...]
    goals: tuple[Goal, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    medications: tuple[Medication, ...] = ()
    monitoring: tuple[str, ...] | None = None


def module_ids(rt: Runtime) -> dict[str, tuple[str, ...]]:
    """Every monitoring module a plan may name: module id → the conditions it monitors."""
    found: dict[str, tuple[str, ...]] = {}
    for composition in rt.content.compositions.values():
        for flow in select_modules(composition, rt.content.flows, list(composition.modules)):
            assert flow.module is not None
            found[flow.module.id] = flow.module.conditions
    return found


def _unmonitored_thresholds(rt: Runtime, data: PlanInput) -> dict[str, str]:
    """The plan's thresholds that belong to a monitoring module the plan does not compose: name -> module."""
    wanted = list(data.monitoring) if data.monitoring is not None else list(data.conditions)
    monitored: set[str] = set()
    for composition in rt.content.compositions.values():
        for flow in select_modules(composition, rt.content.flows, wanted):
            if flow.module is not None:
                monitored.add(flow.module.id)
    owners: dict[str, str] = {}
    for flow in rt.content.flows.values():
        if flow.module is not None:
            for name in flow.thresholds:
                owners.setdefault(name, flow.module.id)
    return {name: owners[name] for name in sorted(data.thresholds) if name in owners and owners[name] not in monitored}


def _monitored(rt: Runtime, patient: Patient, plan: CarePlan | None) -> list[str]:
    """The module ids the daily check-in composes for this patient, in composition order."""
    wanted = plan.monitoring if plan is not None and plan.monitoring is not None else list(patient.conditions or [])
    found: list[str] = []
    for composition in rt.content.compositions.values():
        for flow in select_modules(composition, rt.content.flows, wanted):
            if flow.module is not None and flow.module.id not in found:
                found.append(flow.module.id)
    return found


def care_plan_json(session: Session, rt: Runtime, patient: Patient) -> dict[str, Any]:
    """The plan as the API shows it (see ``app/api/schemas.py CarePlanOut``)."""
    plan = session.scalar(select(CarePlan).where(CarePlan.patient_id == patient.id))
    goals = session.scalars(
        select(CarePlanGoal).where(CarePlanGoal.patient_id == patient.id).order_by(CarePlanGoal.position)
    ).all()
    medications = session.scalars(
        select(CarePlanMedication)
        .where(CarePlanMedication.patient_id == patient.id)
        .order_by(CarePlanMedication.position)
    ).all()
    last_change: dict[str, ThresholdChange] = {}
    for change in session.scalars(
        select(ThresholdChange).where(ThresholdChange.patient_id == patient.id).order_by(ThresholdChange.id)
    ):
        last_change[change.name] = change
    defaults: dict[str, float] = {}
    for flow in rt.content.flows.values():
        for name, value in flow.thresholds.items():
            defaults.setdefault(name, value)
    overrides = dict(patient.thresholds or {})
    return {
        "patient_id": patient.id,
        "revision": plan.revision if plan is not None else 0,
        "updated_by": plan.updated_by if plan is not None else None,
        "updated_at": plan.updated_at.isoformat() if plan is not None else None,
        "conditions": list(patient.conditions or []),
        "goals": [
            {
                "text": g.text,
                "weekly_check": g.weekly_check,
                "confidence": g.confidence,
                "confidence_at": g.confidence_at.isoformat() if g.confidence_at is not None else None,
            }
            for g in goals
        ],
        "thresholds": [
            {
                "name": name,
                "value": float(overrides[name]),
                "default": defaults.get(name),
                "changed_by": last_change[name].changed_by if name in last_change else None,
                "changed_at": last_change[name].changed_at.isoformat() if name in last_change else None,
            }
            for name in sorted(overrides)
        ],
        "medications": [{"name": m.name, "dose": m.dose, "times": list(m.times)} for m in medications],
        "monitoring": list(plan.monitoring) if plan is not None and plan.monitoring is not None else None,
        "monitored_modules": _monitored(rt, patient, plan),
    }


def save_care_plan(
    session: Session, rt: Runtime, patient: Patient, data: PlanInput, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Replace the patient's plan and re-derive their schedule (pending occurrences only; sent kept).

    Raises CarePlanInvalid (an unknown module or threshold), or ConsentRequired / UnknownCampaign from
    enrolling (the caller's transaction is then rolled back: nothing is written). ``actor``: who changed
    it (kept on the plan, each threshold change and the audit event)."""
    modules = module_ids(rt)
    problems: dict[str, str] = {}
    if data.monitoring is not None and (unknown := sorted(set(data.monitoring) - set(modules))):
        problems["monitoring"] = f"unknown modules: {', '.join(unknown)} (known: {', '.join(sorted(modules))})"
    if unknown := sorted(set(data.thresholds) - rt.content.threshold_names()):
        problems["thresholds"] = f"unknown thresholds: {', '.join(unknown)}"
    elif ranges := threshold_problems(data.thresholds, rt.content.threshold_defaults()):
        # A value that switches an alert off (glucose 0, weight gain 9999) or crossed bands.
        problems["thresholds"] = "; ".join(f"{k}: {v}" for k, v in ranges.items())
    elif "monitoring" not in problems and (unmonitored := _unmonitored_thresholds(rt, data)):
        # A glucose threshold on a COPD-only plan would never be read: the plan is likely wrong.
        problems["thresholds"] = "; ".join(
            f"{name}: the plan does not monitor {module}" for name, module in unmonitored.items()
        )
    if problems:
        raise CarePlanInvalid(problems)
    plan = session.scalar(select(CarePlan).where(CarePlan.patient_id == patient.id).with_for_update())
    before = care_plan_json(session, rt, patient)
    if plan is None:
        plan = CarePlan(patient_id=patient.id, revision=0, updated_by=actor, updated_at=now)
        session.add(plan)
    plan.revision += 1
    plan.updated_by = actor[:200]
    plan.updated_at = now
    plan.monitoring = list(data.monitoring) if data.monitoring is not None else None
    patient.conditions = list(dict.fromkeys(data.conditions))
    set_thresholds(session, patient, data.thresholds, actor, now)
    # A goal kept with the same confidence keeps when it was given (the weekly check's answer); a new
    # confidence from staff is dated now.
    given = {
        g.text: (g.confidence, g.confidence_at)
        for g in session.scalars(select(CarePlanGoal).where(CarePlanGoal.patient_id == patient.id)).all()
    }
    session.execute(delete(CarePlanGoal).where(CarePlanGoal.patient_id == patient.id))
    for position, goal in enumerate(data.goals):
        old_confidence, old_at = given.get(goal.text, (None, None))
        session.add(
            CarePlanGoal(
                patient_id=patient.id,
                position=position,
                text=goal.text,
                weekly_check=goal.weekly_check,
                confidence=goal.confidence,
                confidence_at=None if goal.confidence is None else old_at if goal.confidence == old_confidence else now,
            )
        )
    session.execute(delete(CarePlanMedication).where(CarePlanMedication.patient_id == patient.id))
    for position, medication in enumerate(data.medications):
        session.add(
            CarePlanMedication(
                patient_id=patient.id,
                position=position,
                name=medication.name,
                dose=medication.dose,
                times=sorted(set(medication.times)),
            )
        )
    session.flush()
    _feed_dose_times(session, rt, patient, data.medications, now)
    _combine_monitoring(session, rt, patient, plan, actor, now)
    sync_goal_check(session, rt, patient, actor, now)
    monitoring_changed = before["monitored_modules"] != _monitored(rt, patient, plan)
    reschedule_if_changed(session, rt, patient, now)
    if monitoring_changed:
        _rederive_combined(session, rt, patient, now)
    after = care_plan_json(session, rt, patient)
    session.add(
        AuditEvent(
            action="care_plan.changed",
            subject_type="patient",
            subject_id=patient.id,
            detail={"by": actor[:200], "revision": plan.revision, "before": before, "after": after},
            at=now,
        )
    )
    return after


def _feed_dose_times(
    session: Session, rt: Runtime, patient: Patient, medications: Sequence[Medication], now: dt.datetime
) -> None:
    """The plan's dose times become the ``dose_times`` of each active medication-reminder enrollment
    (``enroll`` checks the consent caps and re-derives pending occurrences)."""
    times = sorted({t for m in medications for t in m.times})
    if not times:
        return
    for enrollment in _active(session, patient):
        campaign = rt.content.campaign(enrollment.campaign)
        if campaign is None or not any(t.times_variable == "dose_times" for t in campaign.touches):
            continue
        variables = {**(enrollment.variables or {}), "dose_times": ",".join(times)}
        names = [m.name for m in medications if m.times]
        if names:
            variables["medication_name"] = ", ".join(names)[:200]
        if variables != enrollment.variables:
            enroll(session, rt, patient, enrollment.campaign, enrollment.anchor_date, now, variables=variables)
            note(
                session,
                patient.id,
                "schedule_rederived",
                "care_plan_changed",
                now,
                enrollment_id=enrollment.id,
                detail={"dose_times": variables["dose_times"], "version": enrollment.schedule_version},
            )


def _combine_monitoring(
    session: Session, rt: Runtime, patient: Patient, plan: CarePlan, actor: str, now: dt.datetime
) -> None:
    """Two or more monitored modules: the patient's module campaigns give way to the combined one."""
    if len(_monitored(rt, patient, plan)) < 2:
        return
    program = patient.program
    modules_of = module_campaigns(rt.content)
    active = _active(session, patient)
    for composition_id in sorted({modules_of[e.campaign] for e in active if e.campaign in modules_of}):
        combined = combined_campaign(rt.content, composition_id)
        if combined is None or not campaign_allowed(program, combined):
            continue
        replaced = [e for e in active if modules_of.get(e.campaign) == composition_id]
        anchor = min(e.anchor_date for e in replaced)
        for enrollment in replaced:
            unenroll(session, enrollment, "combined_check_in", actor, now)
            note(session, patient.id, "enrollment_stopped", "combined_check_in", now, enrollment_id=enrollment.id)
        session.flush()
        enrollment = enroll(session, rt, patient, combined, anchor, now)
        note_event(session, patient.id, "enrollment.created", enrollment, "care plan", actor, now)


def _rederive_combined(session: Session, rt: Runtime, patient: Patient, now: dt.datetime) -> None:
    """The monitoring changed: the combined check-in's pending occurrences are derived again (what they
    ask is chosen when each one starts; sent ones are kept), with a timeline row."""
    for enrollment in _active(session, patient):
        campaign = rt.content.campaign(enrollment.campaign)
        if campaign is None or not any(t.flow in rt.content.compositions for t in campaign.touches):
            continue
        enrollment.schedule_version += 1
        derive_touches(session, rt, enrollment, patient, now)
        note(
            session,
            patient.id,
            "schedule_rederived",
            "care_plan_changed",
            now,
            enrollment_id=enrollment.id,
            detail={"version": enrollment.schedule_version},
        )


def _active(session: Session, patient: Patient) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.patient_id == patient.id, Enrollment.status == ACTIVE)
            .order_by(Enrollment.id)
        ).all()
    )
