"""Escalation levels and their default service levels (DESIGN §4.4)."""

from __future__ import annotations

import datetime as dt
import enum


class EscalationLevel(enum.StrEnum):
    EMERGENCY = "EMERGENCY"
    URGENT = "URGENT"
    ROUTINE = "ROUTINE"
    INFO = "INFO"

    @property
    def rank(self) -> int:
        """Higher is more severe; used to raise a joined escalation and to sort the queue."""
        return {"EMERGENCY": 3, "URGENT": 2, "ROUTINE": 1, "INFO": 0}[self.value]


#: Time to acknowledge. ROUTINE is a callback within one business day (see sla_due_at).
ACK_WITHIN: dict[EscalationLevel, dt.timedelta | None] = {
    EscalationLevel.EMERGENCY: dt.timedelta(minutes=15),
    EscalationLevel.URGENT: dt.timedelta(hours=1),
    EscalationLevel.ROUTINE: None,
    EscalationLevel.INFO: None,
}


def higher(a: str, b: str) -> str:
    return a if EscalationLevel(a).rank >= EscalationLevel(b).rank else b


def sla_due_at(level: str, opened: dt.datetime, *, next_business_day_end: dt.datetime | None) -> dt.datetime | None:
    """When the escalation breaches its SLA; ROUTINE falls due at the end of the next business day."""
    window = ACK_WITHIN[EscalationLevel(level)]
    if window is not None:
        return opened + window
    if level == EscalationLevel.ROUTINE:
        return next_business_day_end
    return None
