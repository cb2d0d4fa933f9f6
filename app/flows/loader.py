"""Load flow files into compiled :class:`~app.flows.model.Flow` objects.

Why track lines: a clinician or content editor who mistypes a node must be told the file, the line and
the reason at load time, not discover it when a patient's conversation reaches that node.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from app.flows.answers import CHOICE_MEANINGS
from app.flows.model import (
    LEVELS,
    RECORD_FIELDS,
    Branch,
    Choice,
    Condition,
    Effect,
    Flow,
    Module,
    Node,
    Rule,
    Score,
    Waits,
)

NODE_TYPES = {"message", "question", "education", "wait", "end"}
NODE_FIELDS: dict[str, set[str]] = {
    "message": set(),
    "education": {"topic"},
    "wait": {"after", "after_hours"},
    "end": {"result", "start_flow"},
    "question": {
        "answer",
        "unit",
        "min",
        "max",
        "choices",
        "hint",
        "on_unanswered",
        "symptom",
        "assess",
        "meter",
        "partly",
        "instructions",
        "measure",
        "example",
        "menu",
    },
}
#: Channels an answer instruction or a hint may be given for (app/flows/instructions.py).
CHANNELS = ("sms", "voice")
QUESTION_TYPES = {"number", "yes_no", "choice", "scale", "text"}
CONDITION_KINDS = {"answer", "score", "rise", "fall", "consecutive"}
COMPARATORS = {"is", "is_not", "at_least", "at_most", "above", "below", "between", "in", "answered", "unknown"}
BASELINES = {"lowest", "highest", "last"}
#: Flow-wide defaults for question attributes (a node's own value wins).
DEFAULT_FIELDS = {"symptom", "assess"}
PLACEHOLDERS = {
    "first_name",
    "program_name",
    "program_phone",
    "appointment_date",
    "appointment_time",
    "medication_name",
    "dose_time",
    # The care-plan goal a weekly goal check asks about (campaign goal-check's enrollment variable).
    "goal_text",
    # The program's resource list for a social need (content/resources.yaml, app/flows/resources.py).
    "resources_housing",
    "resources_food",
    "resources_transportation",
    "resources_utilities",
}
_PLACEHOLDER = re.compile(r"{([a-z_]+)}")
_DURATION = re.compile(r"^(\d+)\s*(m|min|h|d)$")


class FlowError(ValueError):
    """An invalid content file: where and why."""

    def __init__(self, path: str, line: int, reason: str):
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            raise FlowError(loader.name, key_node.start_mark.line + 1, "mapping keys must be plain text")
        key = str(key) if not isinstance(key, bool) else ("yes" if key else "no")
        if key in result:
            raise FlowError(loader.name, key_node.start_mark.line + 1, f"duplicate key '{key}'")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml_with_lines(source: str, path: str) -> Any:
    loader = _LineLoader(source)
    loader.name = path
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise FlowError(path, line, f"not valid YAML: {exc.problem or exc}") from None
    finally:
        loader.dispose()


def parse_duration_minutes(value: Any, path: str, line: int) -> int:
    if isinstance(value, int):
        return value
    match = _DURATION.match(str(value).strip())
    if not match:
        raise FlowError(path, line, f"'{value}' is not a duration like 30m, 4h or 2d")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"m": 1, "min": 1, "h": 60, "d": 1440}[unit]


class _Compiler:
    def __init__(self, path: str, data: Any):
        self.path = path
        self.data = data

    def fail(self, line: int, reason: str) -> FlowError:
        return FlowError(self.path, line, reason)

    def line_of(self, mapping: Any, key: str | None = None) -> int:
        if isinstance(mapping, LineDict):
            if key is not None and key in mapping.key_lines:
                return mapping.key_lines[key]
            return mapping.line
        return int(getattr(mapping, "line", 0))

    def require(self, mapping: LineDict, key: str, what: str) -> Any:
        if key not in mapping or mapping[key] is None:
            raise self.fail(mapping.line, f"{what}: '{key}' is required")
        return mapping[key]

    def check_keys(self, mapping: LineDict, allowed: Iterable[str], what: str) -> None:
        allowed_set = set(allowed)
        for key in mapping:
            if key not in allowed_set:
                raise self.fail(self.line_of(mapping, key), f"{what}: unknown field '{key}'")

    def local_text(self, value: Any, line: int, what: str, languages: tuple[str, ...]) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise self.fail(line, f"{what}: text must give one entry per language ({', '.join(languages)})")
        texts: dict[str, str] = {}
        for lang in languages:
            text = value.get(lang)
            if not isinstance(text, str) or not text.strip():
                raise self.fail(self.line_of(value), f"{what}: missing '{lang}' text")
            for name in _PLACEHOLDER.findall(text):
                if name not in PLACEHOLDERS:
                    raise self.fail(self.line_of(value, lang), f"{what}: unknown variable {{{name}}} in '{lang}'")
            texts[lang] = text.strip()
        for lang in value:
            if lang not in languages:
                raise self.fail(self.line_of(value, lang), f"{what}: language '{lang}' is not in languages")
        return texts

    def compile(self) -> Flow:
        data = self.data
        if not isinstance(data, LineDict):
            raise self.fail(1, "a flow file must be a mapping with id, languages, start and nodes")
        self.check_keys(
            data,
            {
                "id",
                "title",
                "languages",
                "start",
                "nodes",
                "rules",
                "effects",
                "scores",
                "waits",
                "thresholds",
                "defaults",
                "description",
                "sources",
                "reviewed",
                "internal",
                "module",
            },
            "flow",
        )
        flow_id = self.require(data, "id", "flow")
        if not isinstance(flow_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", flow_id):
            raise self.fail(self.line_of(data, "id"), "flow: id must be lowercase letters, digits and dashes")
        stem = Path(self.path).stem
        if stem != flow_id:
            raise self.fail(self.line_of(data, "id"), f"flow: id '{flow_id}' does not match file name '{stem}'")
        languages = self.require(data, "languages", "flow")
        if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
            raise self.fail(self.line_of(data, "languages"), "flow: languages must be a list like [en, es]")
        langs = tuple(languages)
        title = self.local_text(self.require(data, "title", "flow"), self.line_of(data, "title"), "title", langs)
        self.thresholds = data.get("thresholds") or {}
        if not isinstance(self.thresholds, Mapping):
            raise self.fail(self.line_of(data, "thresholds"), "thresholds must be a mapping of name: number")
        defaults = data.get("defaults")
        if defaults is not None and not isinstance(defaults, LineDict):
            raise self.fail(self.line_of(data, "defaults"), "defaults must be a mapping like {symptom: true}")
        self.defaults: dict[str, Any] = dict(defaults or {})
        if isinstance(defaults, LineDict):
            self.check_keys(defaults, DEFAULT_FIELDS, "defaults")
        for key, value in self.defaults.items():
            if not isinstance(value, bool):
                raise self.fail(self.line_of(defaults, key), f"defaults: '{key}' must be true or false")
        raw_nodes = self.require(data, "nodes", "flow")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            raise self.fail(self.line_of(data, "nodes"), "flow: nodes must be a non-empty list")
        nodes: dict[str, Node] = {}
        for raw in raw_nodes:
            node = self.node(raw, langs)
            if node.id in nodes:
                raise self.fail(node.line, f"node '{node.id}' is defined twice")
            nodes[node.id] = node
        scores = tuple(self.score(raw, nodes) for raw in (data.get("scores") or []))
        self.known_subjects = {n.id for n in nodes.values() if n.type == "question"} | {s.id for s in scores}
        for node in nodes.values():
            for branch in node.next:
                if branch.goto not in nodes:
                    raise self.fail(node.line, f"node '{node.id}': goes to unknown node '{branch.goto}'")
                if branch.when is not None:
                    self.check_condition(branch.when)
            if node.on_unanswered and node.on_unanswered not in nodes:
                raise self.fail(node.line, f"node '{node.id}': on_unanswered names unknown node '{node.on_unanswered}'")
        start = self.require(data, "start", "flow")
        if start not in nodes:
            raise self.fail(self.line_of(data, "start"), f"flow: start node '{start}' does not exist")
        rules = tuple(self.rule(raw, langs) for raw in (data.get("rules") or []))
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise self.fail(rule.line, f"rule '{rule.id}' is defined twice")
            seen.add(rule.id)
        effects = tuple(self.effect(raw) for raw in (data.get("effects") or []))
        for effect in effects:
            if effect.id in seen:
                raise self.fail(effect.line, f"effect '{effect.id}' is defined twice (or shares a rule's id)")
            seen.add(effect.id)
        waits = self.waits(data.get("waits"))
        module = self.module(data["module"], nodes, start, langs) if "module" in data else None
        return Flow(
            id=flow_id,
            version="",
            title=title,
            languages=langs,
            start=start,
            nodes=nodes,
            rules=rules,
            scores=scores,
            effects=effects,
            waits=waits,
            source_path=self.path,
            thresholds={str(k): float(v) for k, v in self.thresholds.items()},
            internal=self.flag(data, "internal", "flow", default=False),
            module=module,
        )

    def module(self, raw: Any, nodes: Mapping[str, Node], start: str, langs: tuple[str, ...]) -> Module:
        """The ``module:`` section: what this flow measures in a combined check-in (see ``Module``)."""
        if not isinstance(raw, LineDict):
            raise self.fail(self.line_of(raw), "module: must be a mapping with id, conditions and measures")
        self.check_keys(raw, {"id", "conditions", "measures", "start_text"}, "module")
        module_id = self.require(raw, "id", "module")
        if not isinstance(module_id, str) or not re.fullmatch(r"[a-z][a-z0-9]*", module_id):
            raise self.fail(self.line_of(raw, "id"), "module: id must be lowercase letters and digits, like hf")
        conditions = raw.get("conditions") or []
        if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
            raise self.fail(self.line_of(raw, "conditions"), "module: conditions must be a list like [heart_failure]")
        measures = raw.get("measures") or {}
        if not isinstance(measures, LineDict):
            raise self.fail(self.line_of(raw, "measures"), "module: measures must map a measure to a question id")
        seen: dict[str, str] = {}
        for measure, question in measures.items():
            line = self.line_of(measures, measure)
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(measure)):
                raise self.fail(line, f"module: measure '{measure}' must be lowercase letters, digits and _")
            if question not in nodes or nodes[question].type != "question":
                raise self.fail(line, f"module: measure '{measure}' names '{question}', which is not a question")
            if question in seen:
                raise self.fail(line, f"module: question '{question}' is already measure '{seen[question]}'")
            seen[question] = str(measure)
        start_text: dict[str, str] = {}
        if "start_text" in raw:
            start_text = self.local_text(raw["start_text"], self.line_of(raw, "start_text"), "module start_text", langs)
            if nodes[start].type != "question":
                raise self.fail(self.line_of(raw, "start_text"), "module: start_text needs a question as start node")
        return Module(
            id=module_id,
            conditions=tuple(conditions),
            measures={str(k): str(v) for k, v in measures.items()},
            start_text=start_text,
            line=raw.line,
        )

    def node(self, raw: Any, langs: tuple[str, ...]) -> Node:
        if not isinstance(raw, LineDict):
            raise self.fail(self.line_of(raw), "each node must be a mapping with id and type")
        node_id = self.require(raw, "id", "node")
        what = f"node '{node_id}'"
        node_type = self.require(raw, "type", what)
        if node_type not in NODE_TYPES:
            raise self.fail(
                self.line_of(raw, "type"),
                f"{what}: unknown type '{node_type}' (expected one of {', '.join(sorted(NODE_TYPES))})",
            )
        common = {"id", "type", "text", "next"}
        # Unknown fields first: a typo ("nxt:") must be reported as itself, not as a missing field.
        self.check_keys(raw, common | NODE_FIELDS[node_type], what)
        text: dict[str, str] = {}
        if "text" in raw:
            text = self.local_text(raw["text"], self.line_of(raw, "text"), what, langs)
        elif node_type in {"message", "question"}:
            raise self.fail(raw.line, f"{what}: 'text' is required")
        next_branches = self.branches(raw.get("next"), self.line_of(raw, "next"), what)
        if node_type == "end":
            if next_branches:
                raise self.fail(self.line_of(raw, "next"), f"{what}: an end node has no next")
            start_flow = raw.get("start_flow")
            if start_flow is not None and not (isinstance(start_flow, str) and start_flow.strip()):
                raise self.fail(self.line_of(raw, "start_flow"), f"{what}: start_flow must name a flow")
            return Node(
                id=node_id,
                type="end",
                text=text,
                result=str(raw.get("result", "completed")),
                start_flow=start_flow,
                line=raw.line,
            )
        if not next_branches:
            raise self.fail(raw.line, f"{what}: 'next' is required (use an end node to finish)")
        if node_type == "message":
            return Node(id=node_id, type="message", text=text, next=next_branches, line=raw.line)
        if node_type == "wait":
            minutes = parse_duration_minutes(self.require(raw, "after", what), self.path, self.line_of(raw, "after"))
            after_hours: dict[str, str] = {}
            if "after_hours" in raw:
                after_hours = self.local_text(raw["after_hours"], self.line_of(raw, "after_hours"), what, langs)
            return Node(
                id=node_id, type="wait", text=text, next=next_branches, wait_minutes=minutes,
                after_hours=after_hours, line=raw.line,
            )  # fmt: skip
        if node_type == "education":
            return Node(
                id=node_id,
                type="education",
                text=text,
                next=next_branches,
                education=str(self.require(raw, "topic", what)),
                line=raw.line,
            )
        qtype = self.require(raw, "answer", what)
        if qtype not in QUESTION_TYPES:
            raise self.fail(
                self.line_of(raw, "answer"),
                f"{what}: unknown answer type '{qtype}' (expected one of {', '.join(sorted(QUESTION_TYPES))})",
            )
        hints = self.by_channel(raw, "hint", what, langs, flat="sms") if "hint" in raw else {}
        instructions = self.by_channel(raw, "instructions", what, langs) if "instructions" in raw else {}
        minimum = raw.get("min")
        maximum = raw.get("max")
        if qtype in {"number", "scale"}:
            if not isinstance(minimum, int | float) or not isinstance(maximum, int | float):
                raise self.fail(raw.line, f"{what}: a {qtype} question needs numeric 'min' and 'max'")
            if minimum >= maximum:
                raise self.fail(self.line_of(raw, "min"), f"{what}: min must be below max")
        choices: tuple[Choice, ...] = ()
        if qtype == "choice":
            raw_choices = self.require(raw, "choices", what)
            if not isinstance(raw_choices, list) or len(raw_choices) < 2:
                raise self.fail(self.line_of(raw, "choices"), f"{what}: a choice question needs at least two choices")
            choices = tuple(self.choice(c, langs, what) for c in raw_choices)
        elif qtype == "scale" and "choices" in raw:
            # Words for scale points ("several days" = 1), so patients may answer in words or numbers.
            raw_choices = raw["choices"]
            if not isinstance(raw_choices, list) or not raw_choices:
                raise self.fail(self.line_of(raw, "choices"), f"{what}: scale choices must be a list")
            choices = tuple(self.choice(c, langs, what) for c in raw_choices)
            for choice in choices:
                if choice.value is None or not (float(minimum) <= choice.value <= float(maximum)):  # type: ignore[arg-type]
                    raise self.fail(
                        self.line_of(raw, "choices"),
                        f"{what}: scale choice '{choice.id}' needs a value from {minimum} to {maximum}",
                    )
        symptom = self.flag(raw, "symptom", what, default=qtype == "yes_no" and self.defaults.get("symptom", False))
        if symptom and qtype != "yes_no":
            raise self.fail(self.line_of(raw, "symptom"), f"{what}: 'symptom' is for yes_no questions")
        partly: bool | None = None
        if "partly" in raw:
            if qtype != "yes_no":
                raise self.fail(self.line_of(raw, "partly"), f"{what}: 'partly' is for yes_no questions")
            if raw["partly"] is not False:
                raise self.fail(
                    self.line_of(raw, "partly"), f"{what}: 'partly' may only be no (a partial answer is NO)"
                )
            partly = False
        assess = self.flag(raw, "assess", what, default=self.defaults.get("assess", symptom))
        if assess and qtype == "text":
            raise self.fail(self.line_of(raw, "assess"), f"{what}: a text question cannot be 'assess'")
        meter = self.meter(raw, qtype, what)
        measure, example = self.number_words(raw, qtype, what, langs, minimum, maximum)
        if "menu" in raw and qtype not in {"choice", "scale"}:
            raise self.fail(self.line_of(raw, "menu"), f"{what}: 'menu' is for choice and scale questions")
        menu = self.flag(raw, "menu", what, default=qtype == "scale")
        return Node(
            id=node_id,
            type="question",
            text=text,
            next=next_branches,
            question_type=qtype,
            hint=hints.get("sms", {}),
            voice_hint=hints.get("voice", {}),
            instructions=instructions,
            measure=measure,
            example=example,
            menu=menu,
            unit=raw.get("unit"),
            minimum=minimum,
            maximum=maximum,
            choices=choices,
            on_unanswered=raw.get("on_unanswered"),
            symptom=symptom,
            partly=partly,
            assess=assess,
            meter=meter,
            line=raw.line,
        )

    def by_channel(
        self, raw: LineDict, key: str, what: str, langs: tuple[str, ...], *, flat: str | None = None
    ) -> dict[str, dict[str, str]]:
        """``{sms: {en, es}, voice: {en, es}}`` (either channel may be left out). With ``flat``, a plain
        ``{en, es}`` is that channel's text (a ``hint`` written before voice existed is the SMS hint)."""
        value = raw[key]
        line = self.line_of(raw, key)
        where = f"{what} {key}"
        shape = f"a mapping like {{voice: {{{', '.join(langs)}}}, sms: {{...}}}}"
        if not isinstance(value, Mapping) or not value:
            raise self.fail(line, f"{where}: must be {shape}")
        if flat is not None and not any(k in CHANNELS for k in value):
            return {flat: self.local_text(value, line, where, langs)}
        found: dict[str, dict[str, str]] = {}
        for channel, texts in value.items():
            channel_line = self.line_of(value, channel)
            if channel not in CHANNELS:
                raise self.fail(
                    channel_line, f"{where}: unknown channel '{channel}' (expected {' or '.join(CHANNELS)})"
                )
            if not isinstance(texts, Mapping):
                raise self.fail(
                    channel_line, f"{where}: '{channel}' must give one text per language ({', '.join(langs)})"
                )
            found[str(channel)] = self.local_text(texts, channel_line, f"{where} {channel}", langs)
        return found

    def number_words(
        self, raw: LineDict, qtype: str, what: str, langs: tuple[str, ...], minimum: Any, maximum: Any
    ) -> tuple[dict[str, str], str | None]:
        """``measure`` ({en: your weight, es: su peso}) and ``example`` (182) of a number question."""
        for key in ("measure", "example"):
            if key in raw and qtype != "number":
                raise self.fail(self.line_of(raw, key), f"{what}: '{key}' is for number questions")
        measure = (
            self.local_text(raw["measure"], self.line_of(raw, "measure"), f"{what} measure", langs)
            if "measure" in raw
            else {}
        )
        example: str | None = None
        if "example" in raw:
            value = raw["example"]
            line = self.line_of(raw, "example")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(line, f"{what}: example must be a number, like 182")
            if not float(minimum) <= float(value) <= float(maximum):
                raise self.fail(line, f"{what}: example {value} is outside min {minimum} and max {maximum}")
            example = str(value)
        return measure, example

    def flag(self, raw: LineDict, key: str, what: str, *, default: bool) -> bool:
        if key not in raw:
            return default
        value = raw[key]
        if not isinstance(value, bool):
            raise self.fail(self.line_of(raw, key), f"{what}: '{key}' must be true or false")
        return value

    def meter(self, raw: LineDict, qtype: str, what: str) -> dict[str, str]:
        if "meter" not in raw:
            return {}
        value = raw["meter"]
        line = self.line_of(raw, "meter")
        if qtype != "number":
            raise self.fail(line, f"{what}: 'meter' is for number questions")
        if not isinstance(value, LineDict) or not value or set(value) - {"low", "high"}:
            raise self.fail(line, f"{what}: meter must be a mapping like {{low: LO, high: HI}}")
        for key, label in value.items():
            if not isinstance(label, str) or not label.strip():
                raise self.fail(line, f"{what}: meter '{key}' needs the text to save, like LO")
        return {str(k): str(v).strip() for k, v in value.items()}

    def choice(self, raw: Any, langs: tuple[str, ...], what: str) -> Choice:
        if not isinstance(raw, LineDict):
            raise self.fail(self.line_of(raw), f"{what}: each choice needs id and label")
        self.check_keys(raw, {"id", "label", "words", "value", "means"}, f"{what} choice")
        choice_id = str(self.require(raw, "id", f"{what} choice"))
        label = self.local_text(
            self.require(raw, "label", f"{what} choice '{choice_id}'"),
            self.line_of(raw, "label"),
            f"{what} choice '{choice_id}'",
            langs,
        )
        words_raw = raw.get("words") or {}
        for lang in langs:
            for word in words_raw.get(lang, []) or []:
                if isinstance(word, bool):
                    # YAML reads a bare yes/no/on/off as true/false: the patient's "yes" would never match.
                    raise self.fail(
                        self.line_of(words_raw, lang), f"{what} choice '{choice_id}': put yes/no words in quotes"
                    )
        words = {lang: tuple(str(w) for w in words_raw.get(lang, [])) for lang in langs}
        value = raw.get("value")
        means = raw.get("means")
        if means is not None and means not in CHOICE_MEANINGS:
            raise self.fail(
                self.line_of(raw, "means"),
                f"{what} choice '{choice_id}': means is one of {', '.join(sorted(CHOICE_MEANINGS))}",
            )
        return Choice(
            id=choice_id,
            label=label,
            words=words,
            value=float(value) if value is not None else None,
            means=means,
        )

    def branches(self, raw: Any, line: int, what: str) -> tuple[Branch, ...]:
        if raw is None:
            return ()
        if isinstance(raw, str):
            return (Branch(when=None, goto=raw),)
        if not isinstance(raw, list):
            raise self.fail(line, f"{what}: next must be a node id or a list of {{if, goto}}")
        result = []
        for item in raw:
            if not isinstance(item, LineDict) or "goto" not in item:
                raise self.fail(self.line_of(item) or line, f"{what}: each branch needs 'goto'")
            self.check_keys(item, {"if", "goto"}, f"{what} branch")
            when = self.condition(item["if"], self.line_of(item, "if"), what) if "if" in item else None
            result.append(Branch(when=when, goto=str(item["goto"])))
        if result[-1].when is not None:
            raise self.fail(self.line_of(raw[-1]), f"{what}: the last branch must have no 'if' (the default)")
        return tuple(result)

    def condition(self, raw: Any, line: int, what: str) -> Condition:
        if not isinstance(raw, LineDict):
            raise self.fail(line, f"{what}: a condition must be a mapping")
        for group in ("all", "any"):
            if group in raw:
                children = raw[group]
                if not isinstance(children, list) or not children:
                    raise self.fail(self.line_of(raw, group), f"{what}: '{group}' needs a list of conditions")
                return Condition(
                    kind=group,
                    children=tuple(self.condition(c, self.line_of(c), what) for c in children),
                    line=raw.line,
                )
        kinds = [k for k in raw if k in CONDITION_KINDS]
        if len(kinds) != 1:
            raise self.fail(raw.line, f"{what}: a condition names exactly one of {', '.join(sorted(CONDITION_KINDS))}")
        kind = kinds[0]
        comparators = [k for k in raw if k in COMPARATORS]
        if len(comparators) != 1:
            raise self.fail(
                raw.line, f"{what}: a condition needs exactly one comparison ({', '.join(sorted(COMPARATORS))})"
            )
        self.check_keys(raw, {kind, comparators[0], "within_days", "count", "baseline"}, f"{what} condition")
        baseline = raw.get("baseline", "")
        if "baseline" in raw and (kind not in {"rise", "fall"} or baseline not in BASELINES):
            raise self.fail(
                self.line_of(raw, "baseline"),
                f"{what}: baseline is for rise/fall and is one of {', '.join(sorted(BASELINES))}",
            )
        operand = raw[comparators[0]]
        self.check_operand(comparators[0], operand, self.line_of(raw, comparators[0]), what)
        if comparators[0] == "unknown" and kind != "answer":
            raise self.fail(self.line_of(raw, "unknown"), f"{what}: 'unknown' is for answer conditions")
        return Condition(
            kind=kind,
            subject=str(raw[kind]),
            comparator=comparators[0],
            operand=operand,
            within_days=float(raw.get("within_days", 1)),
            baseline=str(baseline),
            count=int(raw.get("count", 2)),
            line=raw.line,
        )

    def check_operand(self, comparator: str, operand: Any, line: int, what: str) -> None:
        def numeric(value: Any) -> bool:
            if isinstance(value, str) and value.startswith("$"):
                if value[1:] not in self.thresholds:
                    raise self.fail(line, f"{what}: unknown threshold '{value}' (declare it under thresholds)")
                return True
            return isinstance(value, int | float) and not isinstance(value, bool)

        if comparator in {"at_least", "at_most", "above", "below"} and not numeric(operand):
            raise self.fail(line, f"{what}: '{comparator}' needs a number or a $threshold")
        if comparator == "between" and not (
            isinstance(operand, list) and len(operand) == 2 and all(numeric(v) for v in operand)
        ):
            raise self.fail(line, f"{what}: 'between' needs [low, high]")
        if comparator == "in" and not isinstance(operand, list):
            raise self.fail(line, f"{what}: 'in' needs a list")
        if comparator in {"answered", "unknown"} and not isinstance(operand, bool):
            raise self.fail(line, f"{what}: '{comparator}' needs true or false")

    def check_condition(self, condition: Condition) -> None:
        if condition.kind in {"all", "any"}:
            for child in condition.children:
                self.check_condition(child)
            return
        if condition.subject not in self.known_subjects:
            raise self.fail(condition.line, f"condition refers to unknown question or score '{condition.subject}'")

    def score(self, raw: Any, nodes: Mapping[str, Node]) -> Score:
        if not isinstance(raw, LineDict):
            raise self.fail(self.line_of(raw), "each score needs id and sum")
        self.check_keys(raw, {"id", "sum", "prorate"}, "score")
        score_id = str(self.require(raw, "id", "score"))
        what = f"score '{score_id}'"
        raw_parts = self.require(raw, "sum", what)
        if not isinstance(raw_parts, list) or not raw_parts:
            raise self.fail(self.line_of(raw, "sum"), f"{what}: sum needs a list of question ids")
        parts: list[tuple[str, ...]] = []
        for part in raw_parts:
            # A part is a question id, or a list of alternatives: the first one answered counts.
            alternatives = part if isinstance(part, list) else [part]
            if not alternatives:
                raise self.fail(self.line_of(raw, "sum"), f"{what}: an empty list of alternatives")
            for question in alternatives:
                if not isinstance(question, str) or question not in nodes or nodes[question].type != "question":
                    raise self.fail(self.line_of(raw, "sum"), f"{what}: '{question}' is not a question")
            parts.append(tuple(alternatives))
        max_missing: int | None = None
        if "prorate" in raw:
            prorate = raw["prorate"]
            if not isinstance(prorate, LineDict) or set(prorate) != {"max_missing"}:
                raise self.fail(self.line_of(raw, "prorate"), f"{what}: prorate must be {{max_missing: N}}")
            max_missing = prorate["max_missing"]
            if not isinstance(max_missing, int) or isinstance(max_missing, bool) or not 0 < max_missing < len(parts):
                raise self.fail(
                    self.line_of(raw, "prorate"),
                    f"{what}: max_missing must be a whole number from 1 to {len(parts) - 1}",
                )
        return Score(id=score_id, parts=tuple(parts), prorate_max_missing=max_missing, line=raw.line)

    def rule(self, raw: Any, langs: tuple[str, ...]) -> Rule:
        if not isinstance(raw, LineDict):
            raise self.fail(self.line_of(raw), "each rule needs id, level, reason and when")
        self.check_keys(raw, {"id", "level", "reason", "when", "tell", "crisis_line", "stop", "group"}, "rule")
        rule_id = str(self.require(raw, "id", "rule"))
        what = f"rule '{rule_id}'"
        level = self.require(raw, "level", what)
        if level not in LEVELS:
            raise self.fail(self.line_of(raw, "level"), f"{what}: level must be one of {', '.join(LEVELS)}")
        when = self.condition(self.require(raw, "when", what), self.line_of(raw, "when"), what)
        self.check_condition(when)
        tell = self.local_text(raw["tell"], self.line_of(raw, "tell"), f"{what} tell", langs) if "tell" in raw else {}
        return Rule(
            id=rule_id,
            level=level,
            reason=str(self.require(raw, "reason", what)),
            when=when,
            tell=tell,
            crisis_line=bool(raw.get("crisis_line", False)),
            stop=bool(raw.get("stop", False)),
            group=self.group(raw, what),
            line=raw.line,
        )

    def effect(self, raw: Any) -> Effect:
        """One ``effects:`` entry: ``{id, when, set: {field: value}}``; fields and values from RECORD_FIELDS."""
        if not isinstance(raw, LineDict):
            raise self.fail(self.line_of(raw), "each effect needs id, when and set")
        self.check_keys(raw, {"id", "when", "set"}, "effect")
        effect_id = str(self.require(raw, "id", "effect"))
        what = f"effect '{effect_id}'"
        when = self.condition(self.require(raw, "when", what), self.line_of(raw, "when"), what)
        self.check_condition(when)
        changes = self.require(raw, "set", what)
        if not isinstance(changes, LineDict) or not changes:
            raise self.fail(self.line_of(raw, "set"), f"{what}: set must be a mapping like {{preferred_time: morning}}")
        clean: dict[str, str | bool] = {}
        for key, value in changes.items():
            if key not in RECORD_FIELDS:
                raise self.fail(
                    self.line_of(changes, key),
                    f"{what}: cannot set '{key}' (known: {', '.join(sorted(RECORD_FIELDS))})",
                )
            shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if shown not in RECORD_FIELDS[key]:
                raise self.fail(
                    self.line_of(changes, key),
                    f"{what}: {key} cannot be '{shown}' (one of {', '.join(sorted(RECORD_FIELDS[key]))})",
                )
            clean[key] = value if isinstance(value, bool) else shown
        return Effect(id=effect_id, when=when, changes=clean, line=raw.line)

    def group(self, raw: LineDict, what: str) -> str | None:
        if "group" not in raw:
            return None
        group = raw["group"]
        if not isinstance(group, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", group):
            raise self.fail(self.line_of(raw, "group"), f"{what}: group must be a name like hf_signs")
        return group

    def waits(self, raw: Any) -> Waits:
        if raw is None:
            return Waits()
        if not isinstance(raw, LineDict):
            raise self.fail(self.line_of(raw), "waits must be a mapping")
        self.check_keys(raw, {"reminder_after", "expire_after"}, "waits")
        reminder = parse_duration_minutes(
            raw.get("reminder_after", 240), self.path, self.line_of(raw, "reminder_after")
        )
        expire = parse_duration_minutes(raw.get("expire_after", 1440), self.path, self.line_of(raw, "expire_after"))
        if reminder >= expire:
            raise self.fail(raw.line, "waits: reminder_after must be shorter than expire_after")
        return Waits(reminder_after_minutes=reminder, expire_after_minutes=expire)


def flow_version(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def compile_flow(source: str, path: str) -> Flow:
    """Compile one flow's YAML source; raises FlowError with the file, line and reason."""
    data = load_yaml_with_lines(source, path)
    return replace(_Compiler(path, data).compile(), version=flow_version(source))


def load_flow(path: Path, display_root: Path | None = None) -> Flow:
    shown = str(path.relative_to(display_root)) if display_root else str(path)
    return compile_flow(path.read_text(encoding="utf-8"), shown)
