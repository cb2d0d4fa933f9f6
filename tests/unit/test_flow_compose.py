"""Combined check-ins (app/flows/compose.py): composition is data; conflicts are file/line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.content import load_content
from app.flows import engine
from app.flows.compose import compile_composed, compose, parse_composition
from app.flows.loader import FlowError, compile_flow

ROOT = Path(__file__).resolve().parents[2] / "content"
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)

COMPOSE = """id: combo
title: {en: Check-in}
languages: [en]
compose:
  modules: [%s]
  done: {en: "Thanks."}
"""


def _module(flow_id: str, module_id: str, measures: str, qtype: str = "yes_no", rule_id: str = "r") -> str:
    answer = "answer: yes_no" if qtype == "yes_no" else "answer: number\n    min: 1\n    max: 9"
    return f"""id: {flow_id}
title: {{en: T}}
languages: [en]
start: q
module: {{id: {module_id}, measures: {{{measures}}}, start_text: {{en: "Q again?"}}}}
nodes:
  - id: q
    type: question
    {answer}
    text: {{en: "Hi. Q?"}}
    next: done
  - id: done
    type: end
    text: {{en: "Bye."}}
rules:
  - id: {rule_id}
    level: URGENT
    reason: x
    when: {{answer: q, is: yes}}
"""


def test_shipped_composition_asks_the_shared_question_once_and_keeps_every_modules_rules() -> None:
    library = load_content(ROOT)
    flow = library.flows["chronic-care-check.hf.diabetes.copd"]
    rule_ids = {r.id for r in flow.rules}
    for module in ("hf-daily-check", "diabetes-glucose-check", "copd-check"):
        assert {r.id for r in library.flows[module].rules} <= rule_ids
    assert flow.nodes["breath_worse"].same_as == "breath"
    # The copd rule on its (shared) breathing question reads the heart-failure answer.
    copd_rule = next(r for r in flow.rules if r.id == "copd-more-breathless")
    assert copd_rule.when.subject == "breath"
    assert library.combined_flow_id("chronic-care-check", ["copd", "heart_failure"]) == "chronic-care-check.hf.copd"
    assert library.combined_flow_id("chronic-care-check", ["depression"]) is None
    # A pinned conversation compiles again from the stored source, to the same version.
    again = compile_composed(library.flow_sources[flow.id])
    assert again.version == flow.version and list(again.nodes) == list(flow.nodes)


def test_a_shared_question_not_asked_earlier_is_asked_and_saved_under_the_shared_id() -> None:
    first = compile_flow(_module("a", "a", "breathing: q", rule_id="ra"), "a.yaml")
    second = compile_flow(_module("b", "b", "breathing: q", rule_id="rb"), "b.yaml")
    composition = parse_composition(COMPOSE % "a, b", "combo.yaml")
    flow = compose(composition, [first, second])
    ctx = engine.PatientContext(first_name="Ana", language="en", program_name="P", program_phone="1")
    step = engine.start(flow, ctx, NOW)
    step = engine.resume(flow, step.state, ctx, engine.Reply("yes"), NOW)
    fired = {e.rule_id for e in step.events if isinstance(e, engine.Escalate)}
    assert fired == {"ra", "rb"}  # one answer, both modules' rules
    assert step.state.status == "completed"
    assert [e.text for e in step.events if isinstance(e, engine.Say)][-1] == "Thanks."


@pytest.mark.parametrize(
    ("modules", "second", "reason"),
    [
        ("a, missing", None, "module 'missing' is not a flow"),
        ("a, b", _module("b", "b", "breathing: q", qtype="number", rule_id="rb"), "is a yes_no question in 'a'"),
        ("a, b", _module("b", "b", "breathing: q", rule_id="ra"), "rule id 'ra' is in both"),
    ],
)
def test_composition_conflicts_are_reported_with_the_file_and_line(
    modules: str, second: str | None, reason: str
) -> None:
    from app.flows.compose import check_composition

    flows = {"a": compile_flow(_module("a", "a", "breathing: q", rule_id="ra"), "a.yaml")}
    if second is not None:
        flows["b"] = compile_flow(second, "b.yaml")
    composition = parse_composition(COMPOSE % modules, "combo.yaml")
    with pytest.raises(FlowError) as raised:
        check_composition(composition, flows)
    assert raised.value.path == "combo.yaml" and raised.value.line == 5
    assert reason in str(raised.value)


def test_a_module_measure_must_name_a_question() -> None:
    with pytest.raises(FlowError, match="measure 'breathing' names 'done', which is not a question"):
        compile_flow(_module("a", "a", "breathing: done"), "a.yaml")
