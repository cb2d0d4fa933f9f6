"""`outreach test-flows` and `outreach lint-content` as operators run them."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.cli import main as cli
from app.config import CONTENT_DIR
from app.runtime import Runtime, clear_current

PROBE_FLOW = """id: lint-probe
title: {en: Probe, es: Sonda}
languages: [en, es]
start: level
nodes:
  - id: level
    type: question
    answer: choice
    text: {en: "How high?", es: "Que tan alto?"}
    choices:
      - id: low
        label: {en: Low, es: Bajo}
      - id: high
        label: {en: High, es: Alto}
    next: done
  - id: done
    type: end
    result: completed
    text:
      en: "Unfortunately, considerable physiological deterioration necessitates interdisciplinary consultation."
      es: "Gracias."
"""


@pytest.fixture()
def content_copy(tmp_path: Path) -> Path:
    """A copy of the shipped content that a test edits before the app loads it."""
    edited = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, edited)
    return edited


@pytest.fixture()
def app_on(app_config: dict[str, Any]) -> Iterator[Callable[[Path], Flask]]:
    made: list[Flask] = []

    def make(root: Path) -> Flask:
        clear_current()
        application = create_app({**app_config, "content_dir": root})
        made.append(application)
        return application

    yield make
    for application in made:
        rt: Runtime = application.extensions["outreach"]
        rt.engine.dispose()
    clear_current()


def test_test_flows_with_an_unknown_flow_fails_instead_of_passing_nothing(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["test-flows", "--flow", "no-such-flow"])
    assert result.exit_code == 2
    assert "no flow 'no-such-flow'" in result.output
    assert "0 passed" not in result.output
    ok = app.test_cli_runner().invoke(cli, ["test-flows", "--flow", "phq2"])
    assert ok.exit_code == 0, ok.output
    assert " passed, 0 failed" in ok.output


def test_test_flows_refuses_the_old_list_form_with_file_and_line(
    content_copy: Path, app_on: Callable[[Path], Flask]
) -> None:
    transcript = content_copy / "flows" / "tests" / "phq2.yaml"
    lines = transcript.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if "escalate: {phq2-positive: " in line)
    lines[number] = lines[number].split("escalate:")[0] + "escalate: [phq2-positive]\n"
    transcript.write_text("".join(lines), encoding="utf-8")
    result = app_on(content_copy).test_cli_runner().invoke(cli, ["test-flows"])
    assert result.exit_code == 1
    assert f"flows/tests/phq2.yaml:{number + 1}: 'escalate' must map each rule to its level" in result.output


def test_lint_content_fails_on_a_collision_warns_on_reading_level_and_prints_segment_totals(
    content_copy: Path, app_on: Callable[[Path], Flask]
) -> None:
    (content_copy / "flows" / "lint-probe.yaml").write_text(PROBE_FLOW, encoding="utf-8")
    runner = app_on(content_copy).test_cli_runner()
    result = runner.invoke(cli, ["lint-content", "--segments"])
    assert result.exit_code == 1
    high_line = PROBE_FLOW.splitlines().index("        label: {en: High, es: Alto}") + 1
    assert (
        f"lint-probe.yaml:{high_line}: node 'level': answer word 'Alto' (es, choice 'high') is the opt-out "
        "keyword ALTO" in result.output
    )
    assert "warning: " in result.output and "done [en]: reading grade" in result.output
    totals = result.output.split("segment totals")[1].splitlines()
    assert [line.split()[0] for line in totals[1:4]] == ["en", "es", "all"]
    assert "filled" in totals[3] and "UCS-2" in totals[3]
    assert "lint-probe               done" in result.output  # the per-text table

    strict = runner.invoke(cli, ["lint-content", "--strict"])
    assert strict.exit_code == 1
    reading = [line for line in strict.output.splitlines() if "done [en]: reading grade" in line]
    assert reading and reading[0].startswith("error: ")


def test_lint_content_checks_the_adt_mapping_with_file_line_and_reason(
    content_copy: Path, app_on: Callable[[Path], Flask]
) -> None:
    mapping = content_copy / "adt-mapping.yaml"
    mapping.write_text(
        "discharge:\n  campaigns: [post-discharge-tcm]\ndiagnoses:\n  - codes: [I50]\n    campaigns: [hf-monitoring]\n",
        encoding="utf-8",
    )
    result = app_on(content_copy).test_cli_runner().invoke(args=["lint-content"])
    assert result.exit_code == 1
    assert "content/adt-mapping.yaml:5: diagnosis: unknown campaign 'hf-monitoring'" in result.output


def test_simulate_plays_a_combined_check_in_from_its_composition_and_modules(app: Flask) -> None:
    runner = app.test_cli_runner()
    every = runner.invoke(cli, ["simulate", "chronic-care-check"], input="180\n")
    assert every.exit_code == 0, every.output
    assert "(playing chronic-care-check.hf.diabetes.copd)" in every.output
    assert "weight" in every.output.split("\n")[1].lower()
    two = runner.invoke(cli, ["simulate", "chronic-care-check", "--modules", "copd,diabetes"], input="\n")
    assert two.exit_code == 0, two.output
    assert "(playing chronic-care-check.diabetes.copd)" in two.output
    assert "blood sugar" in two.output
    none = runner.invoke(cli, ["simulate", "chronic-care-check", "--modules", "gout"])
    assert none.exit_code != 0 and "none of 'gout'" in none.output
