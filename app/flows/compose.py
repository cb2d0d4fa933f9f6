"""Combined check-ins: one conversation composed from several condition modules, as data.

A patient with heart failure, diabetes and COPD gets ONE daily check-in instead of three (issue 12 item 4).
Each module flow declares what it measures (``module:`` in the flow file, :class:`app.flows.model.Module`);
a composition file names the modules in conversation order::

    id: chronic-care-check
    title: {en: Daily check-in, es: Control diario}
    languages: [en, es]
    compose:
      modules: [hf-daily-check, diabetes-glucose-check, copd-check]
      done: {en: "Thank you, {first_name}. ...", es: "Gracias, {first_name}. ..."}
    waits: {reminder_after: 4h, expire_after: 24h}

:func:`compose` builds a plain :class:`Flow` for a chosen subset of the modules (the ones in the patient's
care plan), so the engine runs it like any other flow:

- the modules' questions follow one another; a module's "completed" end goes on to the next module's
  start, and only the last one thanks the patient (with ``compose.done``); an end with another result
  ("we could not read a number") is said and the conversation goes on;
- a measure two modules share (``breathing``) is asked once, where the first module asks it: the later
  module's question becomes ``same_as`` the first one (not asked again, its branches still taken), and
  its rules read the shared answer;
- every module's rules are kept, each on its own trigger; a node id taken by an earlier module is
  renamed ``<module>.<id>``; a rule id or threshold two modules define differently is an error;
- the composed flow's id is ``<composition id>.<module id>...`` (``chronic-care-check.hf.copd``) and its
  version a hash of the composition and module sources, so a conversation stays pinned to what it
  started on.

Pure: no I/O beyond parsing the given text. Errors are :class:`FlowError` with the file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from app.flows.loader import (
    FlowError,
    LineDict,
    _Compiler,
    compile_flow,
    load_yaml_with_lines,
)
from app.flows.model import Branch, Condition, Flow, Node, Rule, Score, Waits

#: History-reading conditions: their subject must keep its id (earlier answers are stored under it).
_HISTORY_KINDS = {"rise", "fall", "consecutive"}


@dataclass(frozen=True)
class Composition:
    """A parsed composition file (``compose:``): the modules it may combine, in conversation order."""

    id: str
    title: Mapping[str, str]
    languages: tuple[str, ...]
    modules: tuple[str, ...]
    done: Mapping[str, str]
    waits: Waits
    source: str
    path: str
    module_lines: Mapping[str, int] = field(default_factory=dict)
    line: int = 0


def is_composition(source: str, path: str) -> bool:
    """Whether the YAML text is a composition file (it has a top-level ``compose:`` key)."""
    data = load_yaml_with_lines(source, path)
    return isinstance(data, LineDict) and "compose" in data


def parse_composition(source: str, path: str) -> Composition:
    """Parse a composition file; raises FlowError (file, line, reason)."""
    data = load_yaml_with_lines(source, path)
    compiler = _Compiler(path, data)
    if not isinstance(data, LineDict):
        raise compiler.fail(1, "a composition file must be a mapping")
    compiler.check_keys(
        data, {"id", "title", "languages", "compose", "waits", "description", "sources", "reviewed"}, "composition"
    )
    comp_id = compiler.require(data, "id", "composition")
    if not isinstance(comp_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", comp_id):
        raise compiler.fail(
            compiler.line_of(data, "id"), "composition: id must be lowercase letters, digits and dashes"
        )
    stem = path.rsplit("/", 1)[-1].removesuffix(".yaml")
    if stem != comp_id:
        raise compiler.fail(compiler.line_of(data, "id"), f"composition: id '{comp_id}' does not match file name")
    languages = compiler.require(data, "languages", "composition")
    if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
        raise compiler.fail(compiler.line_of(data, "languages"), "composition: languages must be a list like [en, es]")
    langs = tuple(languages)
    title = compiler.local_text(
        compiler.require(data, "title", "composition"), compiler.line_of(data, "title"), "title", langs
    )
    spec = compiler.require(data, "compose", "composition")
    if not isinstance(spec, LineDict):
        raise compiler.fail(compiler.line_of(data, "compose"), "compose: must be a mapping with modules and done")
    compiler.check_keys(spec, {"modules", "done"}, "compose")
    modules = compiler.require(spec, "modules", "compose")
    if not isinstance(modules, list) or not modules or not all(isinstance(m, str) for m in modules):
        raise compiler.fail(compiler.line_of(spec, "modules"), "compose: modules must be a list of flow ids")
    if len(set(modules)) != len(modules):
        raise compiler.fail(compiler.line_of(spec, "modules"), "compose: a module is listed twice")
    done = compiler.local_text(
        compiler.require(spec, "done", "compose"), compiler.line_of(spec, "done"), "compose done", langs
    )
    waits = compiler.waits(data.get("waits"))
    line = compiler.line_of(spec, "modules")
    return Composition(
        id=comp_id,
        title=title,
        languages=langs,
        modules=tuple(modules),
        done=done,
        waits=waits,
        source=source,
        path=path,
        module_lines={m: line for m in modules},
        line=compiler.line_of(data, "compose"),
    )


def composed_id(composition_id: str, module_ids: Sequence[str]) -> str:
    """``chronic-care-check.hf.diabetes.copd``: the flow id of a composition of these modules (module ids)."""
    return ".".join((composition_id, *module_ids))


def check_composition(composition: Composition, flows: Mapping[str, Flow]) -> None:
    """Validate a composition against the loaded flows by composing every module together (the loader's
    check): unknown or non-module flows, missing languages, shared measures of different question types,
    clashing rule ids or thresholds are FlowErrors naming the composition file's line."""
    compose(composition, [_module_flow(composition, flows, m) for m in composition.modules])


def _module_flow(composition: Composition, flows: Mapping[str, Flow], flow_id: str) -> Flow:
    line = composition.module_lines.get(flow_id, composition.line)
    flow = flows.get(flow_id)
    if flow is None:
        raise FlowError(composition.path, line, f"compose: module '{flow_id}' is not a flow")
    if flow.module is None:
        raise FlowError(composition.path, line, f"compose: flow '{flow_id}' has no module: section")
    return flow


def select_modules(composition: Composition, flows: Mapping[str, Flow], wanted: Sequence[str]) -> list[Flow]:
    """The composition's module flows that ``wanted`` names (by flow id, module id or a condition the
    module monitors), in the composition's order."""
    chosen = []
    wanted_set = set(wanted)
    for flow_id in composition.modules:
        flow = _module_flow(composition, flows, flow_id)
        assert flow.module is not None
        if flow_id in wanted_set or flow.module.id in wanted_set or wanted_set & set(flow.module.conditions):
            chosen.append(flow)
    return chosen


def compose(composition: Composition, modules: Sequence[Flow]) -> Flow:
    """One flow asking the ``modules`` (module flows, in conversation order) as one conversation (see
    the module docstring). Raises FlowError naming the composition file's line on a conflict."""
    if not modules:
        raise FlowError(composition.path, composition.line, "compose: no module to compose")

    def fail(flow: Flow, reason: str) -> FlowError:
        return FlowError(composition.path, composition.module_lines.get(flow.id, composition.line), reason)

    nodes: dict[str, Node] = {}
    rules: list[Rule] = []
    scores: list[Score] = []
    thresholds: dict[str, float] = {}
    #: shared measure -> (composed node id of the question that asks it, its question type, module flow id)
    measured: dict[str, tuple[str, str | None, str]] = {}
    rule_owner: dict[str, str] = {}
    renamed: list[dict[str, str]] = []
    taken: set[str] = set()
    for flow in modules:
        assert flow.module is not None
        missing = [lang for lang in composition.languages if lang not in flow.languages]
        if missing:
            raise fail(flow, f"compose: module '{flow.id}' has no {', '.join(missing)} text")
        ids = {node_id: node_id if node_id not in taken else f"{flow.module.id}.{node_id}" for node_id in flow.nodes}
        taken.update(ids.values())
        renamed.append(ids)

    starts = [renamed[i][flow.start] for i, flow in enumerate(modules)]
    for index, flow in enumerate(modules):
        assert flow.module is not None
        ids = renamed[index]
        last = index == len(modules) - 1
        # Answers this module reads under another id: its shared questions read the first asker's answer.
        answer_ids = dict(ids)
        same_as: dict[str, str] = {}
        for measure, question in flow.module.measures.items():
            qtype = flow.nodes[question].question_type
            if measure in measured:
                first, first_type, first_flow = measured[measure]
                if first_type != qtype:
                    raise fail(
                        flow,
                        f"compose: measure '{measure}' is a {first_type} question in '{first_flow}' "
                        f"but a {qtype} question in '{flow.id}'",
                    )
                same_as[question] = first
                answer_ids[question] = first
            else:
                measured[measure] = (ids[question], qtype, flow.id)
        for rule in flow.rules:
            for subject in _history_subjects(rule.when):
                if answer_ids.get(subject, subject) != subject:
                    raise fail(flow, f"compose: rule '{rule.id}' reads the history of '{subject}', renamed here")
            if rule.id in rule_owner:
                raise fail(flow, f"compose: rule id '{rule.id}' is in both '{rule_owner[rule.id]}' and '{flow.id}'")
            rule_owner[rule.id] = flow.id
            rules.append(replace(rule, when=_rewrite(rule.when, answer_ids)))
        for score in flow.scores:
            scores.append(
                replace(score, parts=tuple(tuple(answer_ids.get(q, q) for q in part) for part in score.parts))
            )
        for name, value in flow.thresholds.items():
            if name in thresholds and thresholds[name] != value:
                raise fail(flow, f"compose: threshold '{name}' differs between modules")
            thresholds[name] = value
        next_start = None if last else starts[index + 1]
        # Ends that go on: a completed end of a module that is not the last leads to the next start.
        skip = {
            node_id: next_start
            for node_id, node in flow.nodes.items()
            if node.type == "end" and node.result == "completed" and next_start is not None
        }

        def target(goto: str, ids: Mapping[str, str] = ids, skip: Mapping[str, str | None] = skip) -> str:
            return skip.get(goto) or ids[goto]

        for node_id, node in flow.nodes.items():
            if node_id in skip:
                continue
            new = replace(
                node,
                id=ids[node_id],
                next=tuple(
                    Branch(when=_rewrite(b.when, answer_ids) if b.when else None, goto=target(b.goto))
                    for b in node.next
                ),
                on_unanswered=target(node.on_unanswered) if node.on_unanswered else None,
                same_as=same_as.get(node_id),
            )
            if node.type == "end":
                if last and node.result == "completed":
                    new = replace(new, text=dict(composition.done))
                elif not last:
                    # "We could not read a number": said, and the check-in goes on.
                    assert next_start is not None
                    new = replace(new, type="message", next=(Branch(when=None, goto=next_start),), start_flow=None)
            if index > 0 and node_id == flow.start and flow.module.start_text:
                new = replace(new, text=dict(flow.module.start_text))
            nodes[new.id] = new
    return Flow(
        id=composed_id(composition.id, [m.module.id for m in modules if m.module is not None]),
        version=composed_version(composition, modules),
        title=composition.title,
        languages=composition.languages,
        start=starts[0],
        nodes=nodes,
        rules=tuple(rules),
        scores=tuple(scores),
        waits=composition.waits,
        thresholds=thresholds,
        source_path=composition.path,
        composed_of=tuple((m.id, m.version) for m in modules),
    )


def composed_version(composition: Composition, modules: Sequence[Flow]) -> str:
    digest = hashlib.sha256(composition.source.encode("utf-8"))
    for flow in modules:
        digest.update(f"\0{flow.id}@{flow.version}".encode())
    return digest.hexdigest()[:12]


def composed_source(composition: Composition, modules: Sequence[Flow], sources: Mapping[str, str]) -> str:
    """What a conversation on a composed flow is pinned to: the composition's and its modules' sources as
    one JSON text (kept in ``flow_versions``), which :func:`compile_composed` compiles back."""
    return json.dumps(
        {
            "compose": {"path": composition.path, "source": composition.source},
            "modules": [{"id": m.id, "path": m.source_path, "source": sources[m.id]} for m in modules],
        },
        ensure_ascii=False,
    )


def is_composed_source(source: str) -> bool:
    return source.startswith('{"compose":')


def compile_composed(source: str) -> Flow:
    """Compile a stored :func:`composed_source` text again (an older version a conversation is pinned to)."""
    data = json.loads(source)
    composition = parse_composition(data["compose"]["source"], data["compose"]["path"])
    modules = [compile_flow(m["source"], m["path"]) for m in data["modules"]]
    return compose(composition, modules)


def _history_subjects(condition: Condition) -> list[str]:
    found = [condition.subject] if condition.kind in _HISTORY_KINDS else []
    for child in condition.children:
        found.extend(_history_subjects(child))
    return found


def _rewrite(condition: Condition, ids: Mapping[str, str]) -> Condition:
    subject = condition.subject
    if condition.kind != "score" and subject:
        subject = ids.get(subject, subject)
    return replace(condition, subject=subject, children=tuple(_rewrite(c, ids) for c in condition.children))
