"""Rewrite flow transcripts so every step states the level of what it escalates.

Before: a step listed rule ids (``escalate: [weight-gain-1-day]``) and a step without ``escalate`` checked
nothing. After: ``escalate: {weight-gain-1-day: URGENT}`` and a step without ``escalate`` asserts that
nothing fired (docs/flow-format.md, "Transcripts"). This script makes the old files mean the same under
the new rule:

- a listed rule gets the level the flow gives it (a red flag, ``red-flag:<id>``, gets the level it fired
  with when the case runs);
- a step that fires something but has no ``escalate`` key gets the mapping of what it fires now (the
  behaviour the file already accepted, written down so a change of level is caught);
- ``escalate: []`` is left alone (it still means "nothing fires").

The rewrite works on the text (positions from the YAML parser), so comments and layout stay. A step whose
escalations differ between languages cannot be written as one mapping: it is reported and left alone.

Usage: ``.venv/bin/python scripts/transcripts_levels.py [--check] [FILE.yaml ...]`` (default: every file
in content/flows/tests). ``--check`` writes nothing and exits 1 when a file would change.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from app.config import CONTENT_DIR
from app.content import ContentLibrary, load_content
from app.flows.loader import LineDict, load_yaml_with_lines
from app.flows.model import Flow
from app.flows.transcripts import TranscriptFile, run_file

Edit = tuple[int, int, str]  # (start index, end index, replacement)


def _mapping_text(pairs: Sequence[tuple[str, str]]) -> str:
    parts = []
    for rule_id, level in pairs:
        key = rule_id
        try:
            plain_ok = yaml.safe_load(f"{{{key}: x}}") == {key: "x"}
        except yaml.YAMLError:
            plain_ok = False
        parts.append(f"{key if plain_ok else repr(key)}: {level}")
    return "{" + ", ".join(parts) + "}"


def _node_value(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _fired_by_step(
    transcript: TranscriptFile, flow: Flow, library: ContentLibrary
) -> dict[tuple[int, int], dict[str, tuple[tuple[str, str], ...]]]:
    """(case index, step index) → {language: fired pairs}, from running every case as the engine does."""
    education = {lang: library.education_for(lang) for lang in ("en", "es")}
    fired: dict[tuple[int, int], dict[str, tuple[tuple[str, str], ...]]] = {}
    for case_index, case in enumerate(transcript.cases):
        single = TranscriptFile(transcript.path, transcript.flow_id, [case])
        for result in run_file(single, {flow.id: flow}, library.intents, education):
            for step_index, pairs in result.fired_by_step.items():
                fired.setdefault((case_index, step_index), {})[result.language] = tuple(sorted(pairs))
    return fired


def convert_text(source: str, shown: str, library: ContentLibrary) -> tuple[str, list[str]]:
    """The converted file text and what could not be converted (``file:line: reason``)."""
    data = load_yaml_with_lines(source, shown)
    flow = library.flows.get(str(data.get("flow")))
    if flow is None:
        return source, [f"{shown}:1: unknown flow {data.get('flow')!r}"]
    transcript = TranscriptFile(shown, flow.id, list(data.get("cases") or []))
    fired = _fired_by_step(transcript, flow, library)
    problems: list[str] = []
    rule_levels = {rule.id: rule.level for rule in flow.rules}
    root = yaml.compose(source, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)
    found_cases = _node_value(root, "cases")
    assert found_cases is not None and isinstance(found_cases[1], yaml.SequenceNode)
    edits: list[Edit] = []
    for case_index, case_node in enumerate(found_cases[1].value):
        found_steps = _node_value(case_node, "steps") if isinstance(case_node, yaml.MappingNode) else None
        if found_steps is None or not isinstance(found_steps[1], yaml.SequenceNode):
            continue
        for step_index, step_node in enumerate(found_steps[1].value, start=1):
            if not isinstance(step_node, yaml.MappingNode):
                continue
            line = step_node.start_mark.line + 1
            by_language = fired.get((case_index, step_index), {})
            distinct = set(by_language.values())
            if len(distinct) > 1:
                problems.append(f"{shown}:{line}: fires differently per language {dict(by_language)}; left alone")
                continue
            now_fired = next(iter(distinct), ())
            fired_levels = dict(now_fired)
            escalate = _node_value(step_node, "escalate")
            if escalate is not None:
                value_node = escalate[1]
                if not isinstance(value_node, yaml.SequenceNode) or not value_node.value:
                    continue  # already a mapping, or `[]` (nothing fires)
                if not value_node.flow_style:
                    problems.append(f"{shown}:{line}: block-style escalate list; convert by hand")
                    continue
                pairs = []
                for item in value_node.value:
                    rule_id = str(item.value)
                    level = rule_levels.get(rule_id) or fired_levels.get(rule_id)
                    if level is None:
                        problems.append(f"{shown}:{line}: no level known for '{rule_id}'; left alone")
                        break
                    pairs.append((rule_id, level))
                else:
                    edits.append((value_node.start_mark.index, value_node.end_mark.index, _mapping_text(pairs)))
                continue
            if not now_fired:
                continue
            text = _mapping_text(list(now_fired))
            if step_node.flow_style:
                close = step_node.end_mark.index - 1
                if source[close] != "}":
                    problems.append(f"{shown}:{line}: cannot find the end of the step; left alone")
                    continue
                edits.append((close, close, f", escalate: {text}"))
                continue
            after = next(
                (found for key in ("answers", "reply", "wait") if (found := _node_value(step_node, key))), None
            )
            anchor = after[1] if after else step_node.value[0][1]
            column = step_node.value[0][0].start_mark.column
            position = anchor.end_mark.index
            if anchor.end_mark.column != 0:
                newline = source.find("\n", position)
                position = len(source) if newline < 0 else newline + 1
            edits.append((position, position, " " * column + f"escalate: {text}\n"))
    converted = source
    for start, end, replacement in sorted(edits, reverse=True):
        converted = converted[:start] + replacement + converted[end:]
    return converted, problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    library = load_content(CONTENT_DIR)
    files = args.files or sorted((CONTENT_DIR / "flows" / "tests").glob("*.yaml"))
    changed = 0
    all_problems: list[str] = []
    for path in files:
        source = path.read_text(encoding="utf-8")
        converted, problems = convert_text(source, str(path), library)
        all_problems.extend(problems)
        if converted != source:
            changed += 1
            # The result must still be valid YAML with the same cases.
            before = load_yaml_with_lines(source, str(path))
            after = load_yaml_with_lines(converted, str(path))
            assert isinstance(after, LineDict) and len(after["cases"]) == len(before["cases"]), path
            if args.check:
                print(f"would convert {path}")
            else:
                path.write_text(converted, encoding="utf-8")
                print(f"converted {path}")
    for problem in all_problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{changed} of {len(files)} files {'to convert' if args.check else 'converted'}")
    return 1 if (args.check and changed) or all_problems else 0


if __name__ == "__main__":
    sys.exit(main())
