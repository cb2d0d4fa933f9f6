"""The shipped content: every file loads, every transcript passes in every language, every rule is
covered both ways, and the linter finds no errors (unreachable nodes, dead ends, reading level)."""

from __future__ import annotations

import pytest

from app.config import CONTENT_DIR
from app.content import ContentLibrary, load_content
from app.content_lint import lint
from app.flows.transcripts import CaseResult, coverage_gaps, load_transcripts, run_file

REQUIRED_FLOWS = {
    "post-discharge",
    "hf-daily-check",
    "diabetes-glucose-check",
    "copd-check",
    "phq2",
    "phq9",
    "gad7",
    "med-reminder",
    "appointment-reminder",
}


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return load_content(CONTENT_DIR)


@pytest.fixture(scope="module")
def results(library: ContentLibrary) -> dict[str, list[CaseResult]]:
    education = {lang: library.education_for(lang) for lang in ("en", "es")}
    resources = {lang: library.resources.variables(lang, program=None, zip_code=None) for lang in ("en", "es")}
    by_flow: dict[str, list[CaseResult]] = {}
    for transcript in load_transcripts(CONTENT_DIR / "flows" / "tests", CONTENT_DIR.parent):
        by_flow.setdefault(transcript.flow_id, []).extend(
            run_file(transcript, library.flows, library.intents, education, resources)
        )
    return by_flow


def test_every_transcript_case_passes(results: dict[str, list[CaseResult]]) -> None:
    failures = [f"{r.flow_id} [{r.language}] {r.case}: {f}" for rs in results.values() for r in rs for f in r.failures]
    assert failures == []
    assert sum(len(rs) for rs in results.values()) > 0


def test_every_flow_has_transcripts_in_every_language(
    library: ContentLibrary, results: dict[str, list[CaseResult]]
) -> None:
    for flow in library.flows.values():
        if not library.needs_own_transcripts(flow):
            continue  # a combined check-in of some modules only (the one of every module has transcripts)
        languages = {r.language for r in results.get(flow.id, [])}
        assert languages == set(flow.languages), flow.id


def test_every_rule_is_triggered_and_not_triggered_in_each_language(
    library: ContentLibrary, results: dict[str, list[CaseResult]]
) -> None:
    gaps = [gap for flow in library.flows.values() for gap in coverage_gaps(flow, results.get(flow.id, []))]
    assert gaps == []


def _is_collision(error: str) -> bool:
    return "when sent alone; the patient would never reach the flow" in error


def test_the_linter_finds_no_errors(library: ContentLibrary) -> None:
    report = lint(library)
    assert [e for e in report.errors if not _is_collision(e)] == []
    assert {row.language for row in report.segments} == {"en", "es"}


def test_no_answer_word_is_a_whole_message_keyword(library: ContentLibrary) -> None:
    assert [e for e in lint(library).errors if _is_collision(e)] == []


def test_the_content_library_has_the_programs_flows(library: ContentLibrary) -> None:
    assert set(library.flows) >= REQUIRED_FLOWS
