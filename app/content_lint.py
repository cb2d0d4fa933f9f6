"""`outreach lint-content`: what a content reviewer needs to know before a flow reaches a patient.

Errors (non-zero exit): invalid files (with file, line, reason), unreachable nodes, nodes from which the
conversation can never end, education text above a grade-6 reading level. Report: every outgoing text's
encoding and SMS segments per language, because one accented letter can double what a message costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from app.channels.segments import segment_info
from app.content import ContentLibrary
from app.flows.model import Flow

SAMPLE_VARIABLES = {
    "first_name": "Guadalupe",
    "program_name": "North Valley Clinic",
    "program_phone": "555-010-0100",
    "appointment_date": "Wednesday, December 16, 2026",
    "appointment_time": "10:30 AM",
    "medication_name": "metoprolol succinate",
    "dose_time": "8:00 AM",
}
MAX_GRADE_EN = 6.0
MIN_FERNANDEZ_HUERTA_ES = 70.0
WARN_SEGMENTS = 3


@dataclass
class LintReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segments: list[tuple[str, str, str, str, int, int]] = field(default_factory=list)
    reading: list[tuple[str, str, float]] = field(default_factory=list)


def _successors(flow: Flow, node_id: str) -> set[str]:
    node = flow.node(node_id)
    targets = {branch.goto for branch in node.next}
    if node.on_unanswered:
        targets.add(node.on_unanswered)
    return targets


def graph_problems(flow: Flow) -> list[str]:
    reachable: set[str] = set()
    frontier = [flow.start]
    while frontier:
        current = frontier.pop()
        if current in reachable:
            continue
        reachable.add(current)
        frontier.extend(_successors(flow, current))
    problems = [
        f"{flow.source_path}:{node.line}: node '{node.id}' can never be reached from '{flow.start}'"
        for node in flow.nodes.values()
        if node.id not in reachable
    ]
    can_end = {n.id for n in flow.nodes.values() if n.type == "end"}
    changed = True
    while changed:
        changed = False
        for node in flow.nodes.values():
            if node.id not in can_end and _successors(flow, node.id) & can_end:
                can_end.add(node.id)
                changed = True
    problems += [
        f"{flow.source_path}:{node.line}: node '{node.id}' is a dead end (no path to an end node)"
        for node in flow.nodes.values()
        if node.id not in can_end
    ]
    return problems


def _outgoing_texts(flow: Flow) -> Iterator[tuple[str, dict[str, str]]]:
    for node in flow.nodes.values():
        if node.text:
            yield node.id, dict(node.text)
        if node.hint:
            yield f"{node.id}.hint", dict(node.hint)
    for rule in flow.rules:
        if rule.tell:
            yield f"rule {rule.id}", dict(rule.tell)


def _education_body(text: str) -> str:
    return " ".join(line for line in text.splitlines() if line.strip())


def reading_scores(library: ContentLibrary, report: LintReport) -> None:
    from app.readability import fernandez_huerta, flesch_kincaid_grade

    for topic, by_language in sorted(library.education.items()):
        for language, item in sorted(by_language.items()):
            where = f"content/education/{topic}/{language}.md"
            body = _education_body(item.body)
            if language == "en":
                grade = flesch_kincaid_grade(body)
                report.reading.append((where, "Flesch-Kincaid grade", grade))
                if grade > MAX_GRADE_EN:
                    report.errors.append(f"{where}: reading grade {grade:.1f} is above {MAX_GRADE_EN:.0f}")
            elif language == "es":
                ease = fernandez_huerta(body)
                report.reading.append((where, "Fernandez-Huerta ease", ease))
                if ease < MIN_FERNANDEZ_HUERTA_ES:
                    report.errors.append(
                        f"{where}: Fernandez-Huerta {ease:.0f} is below {MIN_FERNANDEZ_HUERTA_ES:.0f} (about grade 6)"
                    )
            if len(item.body) > 1600:
                report.errors.append(f"{where}: {len(item.body)} characters is more than one text can carry (1,600)")
        for language in ("en", "es"):
            if language not in by_language:
                report.errors.append(f"content/education/{topic}: no '{language}' text")


def lint(library: ContentLibrary) -> LintReport:
    report = LintReport()
    for flow in library.flows.values():
        report.errors.extend(graph_problems(flow))
        for where, texts in _outgoing_texts(flow):
            for language, template in texts.items():
                rendered = template.format_map(SAMPLE_VARIABLES)
                info = segment_info(rendered)
                report.segments.append((flow.id, where, language, info.encoding, info.characters, info.segments))
                if info.segments > WARN_SEGMENTS:
                    report.warnings.append(f"{flow.id} {where} [{language}]: {info.segments} segments")
        education_topics = {n.education for n in flow.nodes.values() if n.education}
        for topic in sorted(t for t in education_topics if t):
            if topic not in library.education:
                report.errors.append(f"{flow.source_path}: education topic '{topic}' does not exist")
    reading_scores(library, report)
    return report
