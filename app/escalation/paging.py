"""Paging for EMERGENCY escalations (DESIGN §4.4): the on-call nurse at once, again if nobody has
acknowledged within the SLA, then the supervisor.

The page says only that an emergency is waiting and where: no name, no diagnosis, no answers (the
phone that receives it is not a clinical system). Staff open the queue to see the patient.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.escalation.levels import ACK_WITHIN, EscalationLevel
from app.i18n import gettext_for
from app.messaging.outbound import queue_text
from app.models import Escalation, EscalationStatus, Patient, Program
from app.patients.phones import mask
from app.runtime import Runtime

log = logging.getLogger(__name__)

REPAGE_AFTER = ACK_WITHIN[EscalationLevel.EMERGENCY] or dt.timedelta(minutes=15)


@dataclass(frozen=True)
class PageStep:
    to: str  # on_call | supervisor
    number: int  # 1 = first page, 2 = re-page, 3 = supervisor


def next_page(page_count: int, last_paged_at: dt.datetime | None, now: dt.datetime) -> PageStep | None:
    """What to send now for an unacknowledged EMERGENCY, if anything."""
    if page_count == 0:
        return PageStep("on_call", 1)
    if last_paged_at is None or now - last_paged_at < REPAGE_AFTER:
        return None
    if page_count == 1:
        return PageStep("on_call", 2)
    if page_count == 2:
        return PageStep("supervisor", 3)
    return None


def page_text(escalation_id: int, step: PageStep, base_url: str) -> str:
    _ = gettext_for("en")
    values = {"id": escalation_id, "url": f"{base_url}/queue"}
    if step.number == 1:
        return _("Outreach: EMERGENCY escalation #%(id)s needs a nurse now. Open %(url)s") % values
    if step.to == "supervisor":
        return (
            _("Outreach: EMERGENCY escalation #%(id)s has not been acknowledged after two pages. Open %(url)s") % values
        )
    return _("Outreach: reminder, EMERGENCY escalation #%(id)s is still not acknowledged. Open %(url)s") % values


def page_if_due(session: Session, rt: Runtime, escalation: Escalation, now: dt.datetime) -> bool:
    if escalation.level != EscalationLevel.EMERGENCY or escalation.status != EscalationStatus.OPEN:
        return False
    step = next_page(escalation.page_count, escalation.last_paged_at, now)
    if step is None:
        return False
    patient = session.get(Patient, escalation.patient_id)
    program = session.get(Program, patient.program_id) if patient else None
    number = None
    if program is not None:
        number = program.supervisor_phone if step.to == "supervisor" else program.on_call_phone
        number = number or program.on_call_phone
    escalation.page_count = step.number
    escalation.last_paged_at = now
    if not number:
        log.error("EMERGENCY escalation id=%s: no on-call number set for the program; queue only", escalation.id)
        return False
    queue_text(
        session,
        rt,
        to=number,
        body=page_text(escalation.id, step, rt.settings.public_base_url),
        kind="page",
        patient=None,
        send_key=f"page:{escalation.id}:{step.number}",
        now=now,
    )
    log.warning("EMERGENCY escalation id=%s paged %s (page %s)", escalation.id, mask(step.to), step.number)
    return True


def repage_due(session: Session, rt: Runtime, now: dt.datetime) -> int:
    """The sweeper's part: re-page EMERGENCY escalations nobody has acknowledged."""
    waiting = session.scalars(
        select(Escalation)
        .where(
            Escalation.level == EscalationLevel.EMERGENCY,
            Escalation.status == EscalationStatus.OPEN,
            Escalation.page_count < 3,
            Escalation.last_paged_at <= now - REPAGE_AFTER,
        )
        .with_for_update(skip_locked=True)
    ).all()
    return sum(page_if_due(session, rt, escalation, now) for escalation in waiting)
