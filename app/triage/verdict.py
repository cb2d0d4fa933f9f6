"""What triage concludes about one inbound message: the shapes every caller relies on.

Pure data, no I/O. The engine's red-flag intent, the inbound path (inside or outside a conversation,
opted-out patients, unknown numbers), ``outreach triage`` and ``outreach triage-eval`` all read a
:class:`Verdict`; how the findings are made lives beside this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: ``current``: a red flag happening now → EMERGENCY (911, or 988 when ``crisis_line``).
#: ``confirm``: a red flag that is past, resolved, uncertain or hypothetical but not ruled out → ask a yes/no
#: "right now?" question and put a same-day (URGENT) item in front of a nurse.
#: ``symptom``: a symptom worth a nurse's look that is not a red flag (swelling, dizziness, fever…) → URGENT
#: when it arrives outside a conversation; inside a flow the flow's own questions grade it.
Status = Literal["current", "confirm", "symptom"]


@dataclass(frozen=True)
class Finding:
    #: Stable code staff read through ``app/web/labels.py``: chest_pain, breathing, stroke, unresponsive,
    #: seizure, fainting, overdose, suicide, bleeding, allergic_reaction, severe_hypoglycemia, confusion,
    #: coughing_blood, … (symptoms: swelling, dizziness, fever, …).
    reason: str
    status: Status
    #: 988 (Suicide & Crisis Lifeline) must be said.
    crisis_line: bool = False
    #: Poison Control (1-800-222-1222) must be said (overdose, a child swallowing pills).
    poison_control: bool = False
    #: The National Domestic Violence Hotline (1-800-799-7233, text START to 88788) must be said, with 911 in
    #: danger (interpersonal violence: thehotline.org).
    violence_line: bool = False
    #: The words that matched, for staff on the escalation (never logged).
    evidence: str = ""


@dataclass(frozen=True)
class Verdict:
    findings: tuple[Finding, ...] = ()

    def reasons(self, status: Status) -> tuple[str, ...]:
        seen: list[str] = []
        for finding in self.findings:
            if finding.status == status and finding.reason not in seen:
                seen.append(finding.reason)
        return tuple(seen)

    @property
    def emergency(self) -> tuple[str, ...]:
        """Every red flag happening now: each one fires (DESIGN §4.3)."""
        return self.reasons("current")

    @property
    def to_confirm(self) -> tuple[str, ...]:
        """Red flags to ask about ("right now?"), not counting those already current."""
        current = set(self.emergency)
        return tuple(r for r in self.reasons("confirm") if r not in current)

    @property
    def symptoms(self) -> tuple[str, ...]:
        return self.reasons("symptom")

    @property
    def level(self) -> Literal["EMERGENCY", "URGENT"] | None:
        if self.emergency:
            return "EMERGENCY"
        if self.to_confirm or self.symptoms:
            return "URGENT"
        return None

    @property
    def confirm(self) -> bool:
        """Ask the "right now?" question: something to confirm and nothing already an emergency."""
        return bool(self.to_confirm) and not self.emergency

    @property
    def crisis_line(self) -> bool:
        return any(f.crisis_line for f in self.findings if f.status in ("current", "confirm"))

    @property
    def poison_control(self) -> bool:
        return any(f.poison_control for f in self.findings if f.status in ("current", "confirm"))

    @property
    def violence_line(self) -> bool:
        return any(f.violence_line for f in self.findings if f.status in ("current", "confirm"))

    def to_json(self) -> dict[str, Any]:
        """The ``outreach triage`` line: ``{"level", "reasons", "confirm", "crisis_line"}`` (DESIGN §3)."""
        reasons = [*self.emergency, *self.to_confirm]
        reasons += [r for r in self.symptoms if r not in reasons]
        return {"level": self.level, "reasons": reasons, "confirm": self.confirm, "crisis_line": self.crisis_line}
