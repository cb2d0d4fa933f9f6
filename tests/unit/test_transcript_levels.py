"""Transcripts check the level of every escalation, and that nothing unexpected fires on any step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import CONTENT_DIR
from app.content import ContentLibrary, load_content
from app.flows.loader import FlowError, compile_flow
from app.flows.transcripts import TranscriptFile, load_transcripts, run_file

FLOW = """
id: mini
title: {en: Mini, es: Mini}
languages: [en, es]
start: breath
nodes:
  - id: breath
    type: question
    answer: yes_no
    text: {en: "Short of breath?", es: "Le falta el aire?"}
    next: done
  - id: done
    type: end
    result: completed
    text: {en: "Thanks.", es: "Gracias."}
rules:
  - id: breathless
    level: URGENT
    reason: breathing
    when: {answer: breath, is: yes}
"""


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return load_content(CONTENT_DIR)


def _transcripts(tmp_path: Path, body: str) -> list[TranscriptFile]:
    (tmp_path / "mini.yaml").write_text(body, encoding="utf-8")
    return load_transcripts(tmp_path)


def _failures(library: ContentLibrary, transcripts: list[TranscriptFile], source: str = FLOW) -> list[str]:
    flow = compile_flow(source, "mini.yaml")
    return [f for t in transcripts for r in run_file(t, {flow.id: flow}, library.intents) for f in r.failures]


def test_the_level_is_checked(tmp_path: Path, library: ContentLibrary) -> None:
    body = (
        "flow: mini\ncases:\n  - name: yes\n    steps:\n"
        "      - {reply: {en: 'yes', es: 'sí'}, escalate: {breathless: %s}}\n"
    )
    assert _failures(library, _transcripts(tmp_path, body % "URGENT")) == []
    failures = _failures(library, _transcripts(tmp_path, body % "EMERGENCY"))
    assert len(failures) == 2  # en and es
    assert "fired {breathless: URGENT}, expected {breathless: EMERGENCY}" in failures[0]


@pytest.mark.parametrize("escalate", ["", ", escalate: {}", ", escalate: []"])
def test_a_step_that_expects_nothing_fails_when_something_fires(
    tmp_path: Path, library: ContentLibrary, escalate: str
) -> None:
    body = f"flow: mini\ncases:\n  - name: yes\n    steps:\n      - {{reply: {{en: 'yes', es: 'sí'}}{escalate}}}\n"
    failures = _failures(library, _transcripts(tmp_path, body))
    assert len(failures) == 2
    assert "fired {breathless: URGENT}, expected {}" in failures[0]


def test_an_expected_escalation_that_does_not_fire_fails(tmp_path: Path, library: ContentLibrary) -> None:
    body = "flow: mini\ncases:\n  - name: no\n    steps:\n      - {reply: 'no', escalate: {breathless: URGENT}}\n"
    failures = _failures(library, _transcripts(tmp_path, body))
    assert len(failures) == 2
    assert "fired {}, expected {breathless: URGENT}" in failures[0]


@pytest.mark.parametrize(
    ("escalate", "reason"),
    [
        ("[breathless]", "must map each rule to its level"),
        ("breathless", "must be a mapping"),
        ("{breathless: HIGH}", "level 'HIGH' of 'breathless' is not one of"),
    ],
)
def test_the_list_form_and_unknown_levels_are_refused_with_file_and_line(
    tmp_path: Path, escalate: str, reason: str
) -> None:
    body = f"flow: mini\ncases:\n  - name: yes\n    steps:\n      - reply: 'yes'\n        escalate: {escalate}\n"
    with pytest.raises(FlowError) as caught:
        _transcripts(tmp_path, body)
    assert caught.value.line == 6
    assert caught.value.path.endswith("mini.yaml")
    assert reason in caught.value.reason


def test_phq9_item9_as_info_fails_the_shipped_transcripts(library: ContentLibrary) -> None:
    """The issue's case: PHQ-9 item 9 turned from EMERGENCY into INFO used to pass all 300 runs."""
    source = library.flow_sources["phq9"]
    changed, count = re.subn(r"(- id: phq9-item9-self-harm\n\s+level: )EMERGENCY", r"\1INFO", source)
    assert count == 1
    weakened = compile_flow(changed, "phq9.yaml")
    assert next(r for r in weakened.rules if r.id == "phq9-item9-self-harm").level == "INFO"
    transcript = next(t for t in load_transcripts(CONTENT_DIR / "flows" / "tests") if t.flow_id == "phq9")
    education = {lang: library.education_for(lang) for lang in ("en", "es")}

    def failures(flow_source: str) -> list[str]:
        flow = compile_flow(flow_source, "phq9.yaml")
        return [f for r in run_file(transcript, {"phq9": flow}, library.intents, education) for f in r.failures]

    assert failures(source) == []
    weakened_failures = failures(changed)
    assert weakened_failures
    assert all("phq9-item9-self-harm: INFO" in f for f in weakened_failures)


def _converter() -> object:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "transcripts_levels.py"
    spec = importlib.util.spec_from_file_location("transcripts_levels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_conversion_script_writes_levels_and_keeps_comments(library: ContentLibrary) -> None:
    from dataclasses import replace

    flow = compile_flow(FLOW, "mini.yaml")
    mini = replace(library, flows={"mini": flow})
    old = (
        "flow: mini\n"
        "# a comment that stays\n"
        "cases:\n"
        "  - name: listed\n"
        "    steps:\n"
        "      - reply: {en: 'yes', es: 'sí'}   # trailing comment\n"
        "        escalate: [breathless]\n"
        "  - name: unlisted, block style\n"
        "    steps:\n"
        "      - reply: {en: 'yes', es: 'sí'}\n"
        "        say: {en: [Thanks]}\n"
        "  - name: unlisted, flow style\n"
        "    steps:\n"
        "      - {reply: {en: 'yes', es: 'sí'}, answers: {breath: true}}\n"
        "  - name: nothing fires\n"
        "    steps:\n"
        "      - {reply: 'no', escalate: []}\n"
    )
    converted, problems = _converter().convert_text(old, "mini.yaml", mini)  # type: ignore[attr-defined]
    assert problems == []
    assert converted == (
        "flow: mini\n"
        "# a comment that stays\n"
        "cases:\n"
        "  - name: listed\n"
        "    steps:\n"
        "      - reply: {en: 'yes', es: 'sí'}   # trailing comment\n"
        "        escalate: {breathless: URGENT}\n"
        "  - name: unlisted, block style\n"
        "    steps:\n"
        "      - reply: {en: 'yes', es: 'sí'}\n"
        "        escalate: {breathless: URGENT}\n"
        "        say: {en: [Thanks]}\n"
        "  - name: unlisted, flow style\n"
        "    steps:\n"
        "      - {reply: {en: 'yes', es: 'sí'}, answers: {breath: true}, escalate: {breathless: URGENT}}\n"
        "  - name: nothing fires\n"
        "    steps:\n"
        "      - {reply: 'no', escalate: []}\n"
    )
    again, _ = _converter().convert_text(converted, "mini.yaml", mini)  # type: ignore[attr-defined]
    assert again == converted
