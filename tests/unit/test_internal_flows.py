"""Internal flows (started by the system only, e.g. the "right now?" check) are marked and kept out of
campaigns, the API and `outreach simulate` (issue 7 tester findings)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app import config
from app.content import load_content
from app.flows.loader import FlowError, compile_flow
from app.flows.model import Condition
from app.flows.routing import RIGHT_NOW_FLOW


def test_the_right_now_check_is_internal_and_no_shipped_campaign_uses_an_internal_flow() -> None:
    library = load_content(config.CONTENT_DIR)
    assert library.flows[RIGHT_NOW_FLOW].internal
    assert not library.flows["hf-daily-check"].internal
    internal = {f for f, flow in library.flows.items() if flow.internal}
    for campaign in library.campaigns.values():
        assert not {t.flow for t in campaign.touches} & internal


def test_internal_must_be_true_or_false() -> None:
    text = (Path(config.CONTENT_DIR) / "flows" / f"{RIGHT_NOW_FLOW}.yaml").read_text(encoding="utf-8")
    with pytest.raises(FlowError, match="internal"):
        compile_flow(text.replace("internal: true", "internal: sometimes"), f"{RIGHT_NOW_FLOW}.yaml")


def test_a_campaign_touch_may_not_name_an_internal_flow(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(config.CONTENT_DIR, content)
    campaign = content / "campaigns" / "medication-adherence.yaml"
    text = campaign.read_text(encoding="utf-8")
    assert "flow: med-reminder" in text
    campaign.write_text(text.replace("flow: med-reminder", f"flow: {RIGHT_NOW_FLOW}"), encoding="utf-8")
    with pytest.raises(FlowError, match=f"unknown flow '{RIGHT_NOW_FLOW}'"):
        load_content(content)


def _answer_tests(condition: Condition) -> list[Condition]:
    if condition.kind in {"all", "any"}:
        return [c for child in condition.children for c in _answer_tests(child)]
    return [condition] if condition.kind == "answer" else []


def test_every_emergency_question_treats_not_sure_as_at_least_urgent() -> None:
    # Issue 7 tester findings: "not sure" at a question whose answer is an EMERGENCY must never end as a
    # silent ROUTINE could-not-assess (docs/flow-format.md, "Not sure at an emergency question").
    library = load_content(config.CONTENT_DIR)
    missing = []
    for flow in library.flows.values():
        questions = {n.id: n for n in flow.questions()}
        emergency = {
            c.subject
            for rule in flow.rules
            if rule.level == "EMERGENCY"
            for c in _answer_tests(rule.when)
            if c.comparator in {"is", "in"}
            and questions.get(c.subject) is not None
            and questions[c.subject].question_type == "yes_no"
        }
        covered = {
            c.subject
            for rule in flow.rules
            if rule.level in {"EMERGENCY", "URGENT"}
            for c in _answer_tests(rule.when)
            if c.comparator == "unknown" and c.operand is True
        }
        missing += [f"{flow.id}:{q}" for q in sorted(emergency - covered)]
    assert missing == []


@pytest.mark.parametrize("operand", [1, "sometimes", "'true'"])
def test_unknown_needs_true_or_false(operand: object) -> None:
    text = (Path(config.CONTENT_DIR) / "flows" / "hf-daily-check.yaml").read_text(encoding="utf-8")
    assert "{answer: chest, unknown: true}" in text
    with pytest.raises(FlowError, match="'unknown' needs true or false"):
        compile_flow(
            text.replace("{answer: chest, unknown: true}", f"{{answer: chest, unknown: {operand}}}"),
            "hf-daily-check.yaml",
        )
