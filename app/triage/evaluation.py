"""Score a :class:`~app.triage.matcher.Triage` on a labeled TSV (``lang expect reason text``).

Scoring (../shared/triage/README.md: ``expect`` is the minimum safe outcome): an EMERGENCY row passes when
the level is EMERGENCY; a CONFIRM row when the verdict is an emergency or asks to confirm; a NONE row fails
only when it opens an EMERGENCY.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from app.triage.matcher import Triage
from app.triage.verdict import Verdict

EXPECTS = ("EMERGENCY", "CONFIRM", "NONE")
#: Targets from issue 7.
EMERGENCY_RECALL_TARGET = 0.98
FALSE_ALARM_TARGET = 0.05


@dataclass(frozen=True)
class Row:
    line: int
    language: str
    expect: str
    reason: str
    text: str


@dataclass
class Report:
    rows: int = 0
    #: reason → (passed, total) over EMERGENCY rows
    by_reason: dict[str, list[int]] = field(default_factory=dict)
    emergency: list[int] = field(default_factory=lambda: [0, 0])
    confirm: list[int] = field(default_factory=lambda: [0, 0])
    none_alarms: list[int] = field(default_factory=lambda: [0, 0])
    misses: list[tuple[Row, Verdict]] = field(default_factory=list)

    @staticmethod
    def rate(pair: list[int]) -> float:
        return pair[0] / pair[1] if pair[1] else 1.0

    @property
    def meets_targets(self) -> bool:
        return (
            self.rate(self.emergency) >= EMERGENCY_RECALL_TARGET
            and (self.none_alarms[0] / self.none_alarms[1] if self.none_alarms[1] else 0.0) <= FALSE_ALARM_TARGET
            and self.confirm[0] == self.confirm[1]
        )

    def summary(self) -> list[str]:
        """Exactly six lines (a hook reads the last six of ``outreach triage-eval``)."""
        alarms = self.none_alarms[0] / self.none_alarms[1] if self.none_alarms[1] else 0.0
        return [
            f"rows: {self.rows}",
            f"EMERGENCY recall: {self.emergency[0]}/{self.emergency[1]} = {self.rate(self.emergency):.1%}",
            f"EMERGENCY on NONE rows (false alarms): {self.none_alarms[0]}/{self.none_alarms[1]} = {alarms:.1%}",
            f"CONFIRM rows at least confirmed: {self.confirm[0]}/{self.confirm[1]} = {self.rate(self.confirm):.1%}",
            f"failing rows: {len(self.misses)}",
            "targets (recall >= 98%, false alarms <= 5%, every CONFIRM confirmed): "
            + ("met" if self.meets_targets else "NOT met"),
        ]


def parse_rows(lines: Iterable[str], path: str = "<tsv>") -> list[Row]:
    """Rows of a ``lang expect reason text`` TSV (header first). Raises ValueError with the line on bad rows."""
    rows: list[Row] = []
    iterator = iter(lines)
    header = next(iterator, "").rstrip("\r\n").split("\t")
    if header != ["lang", "expect", "reason", "text"]:
        raise ValueError(f"{path}:1: header must be: lang, expect, reason, text (tab-separated)")
    for number, line in enumerate(iterator, start=2):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 4 or parts[1] not in EXPECTS:
            raise ValueError(f"{path}:{number}: expected 4 tab-separated fields with expect in {', '.join(EXPECTS)}")
        rows.append(Row(number, parts[0], parts[1], parts[2], parts[3]))
    return rows


def passes(row: Row, verdict: Verdict) -> bool:
    if row.expect == "EMERGENCY":
        return verdict.level == "EMERGENCY"
    if row.expect == "CONFIRM":
        return bool(verdict.emergency) or verdict.confirm
    return verdict.level != "EMERGENCY"


def evaluate(triage: Triage, rows: Iterable[Row]) -> Report:
    report = Report()
    for row in rows:
        verdict = triage.assess(row.text, row.language)
        ok = passes(row, verdict)
        report.rows += 1
        if row.expect == "EMERGENCY":
            pair = report.by_reason.setdefault(row.reason, [0, 0])
            pair[0] += ok
            pair[1] += 1
            report.emergency[0] += ok
            report.emergency[1] += 1
        elif row.expect == "CONFIRM":
            report.confirm[0] += ok
            report.confirm[1] += 1
        else:
            report.none_alarms[0] += not ok
            report.none_alarms[1] += 1
        if not ok:
            report.misses.append((row, verdict))
    return report
