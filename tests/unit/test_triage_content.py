"""Triage content: invalid files fail with the file, the line and the reason; the eval targets hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.flows.loader import FlowError
from app.triage import load_triage
from app.triage.evaluation import evaluate, parse_rows

ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT / "content" / "triage"
HELDOUT = Path(__file__).with_name("triage_heldout.tsv")
#: ../shared/triage/corpus.tsv from the repo root (a worktree sits one level deeper).
CORPORA = [root / "shared" / "triage" / "corpus.tsv" for root in (ROOT.parent, ROOT.parent.parent)]

CONTEXT = """reviewed: {by: pending clinical review, on: 2026-11-29}
sources: [NegEx]
terminators: {en: [but], es: [pero]}
rules:
  - category: negated
    direction: forward
    scope: 5
    en: [no, not]
    es: [no, sin]
"""
CONCEPTS = """reviewed: {by: pending clinical review, on: 2026-11-29}
sources: [AHA]
classes:
  pain: [pain*, hurt*, dolor]
concepts:
  - id: chest-pain
    reason: chest_pain
    patterns:
      en: ["chest @pain"]
      es: ["@pain de pecho"]
"""


def write(tmp_path: Path, concepts: str = CONCEPTS, context: str = CONTEXT) -> Path:
    (tmp_path / "concepts.yaml").write_text(concepts, encoding="utf-8")
    (tmp_path / "context.yaml").write_text(context, encoding="utf-8")
    return tmp_path


def test_a_minimal_library_loads_and_matches(tmp_path: Path) -> None:
    triage = load_triage(write(tmp_path), tmp_path.parent)
    assert triage.assess("chest hurting").emergency == ("chest_pain",)
    assert triage.assess("no chest pain").level is None
    assert triage.assess("sin dolor de pecho").level is None


BROKEN = [
    (CONCEPTS.replace('"chest @pain"', '"chest @ache"'), "concepts.yaml", 9, "unknown class '@ache'"),
    (CONCEPTS.replace("reason: chest_pain", "reason: Chest Pain"), "concepts.yaml", 7, "reason is a code"),
    (
        CONCEPTS.replace("    reason: chest_pain\n", "    reason: chest_pain\n    status: now\n"),
        "concepts.yaml",
        8,
        "status",
    ),
    (
        CONCEPTS.replace("    reason: chest_pain\n", "    reason: chest_pain\n    colour: red\n"),
        "concepts.yaml",
        8,
        "unknown key 'colour'",
    ),
    (CONCEPTS.replace("  pain: [pain*", "  pain: [p*"), "concepts.yaml", 4, "too short"),
    (CONCEPTS.replace('es: ["@pain de pecho"]', 'fr: ["douleur"]'), "concepts.yaml", 10, "unknown language 'fr'"),
    (CONCEPTS.replace("reviewed: {by: pending clinical review, on: 2026-11-29}\n", ""), "concepts.yaml", 1, "reviewed"),
    (CONCEPTS + "  - id: chest-pain\n    patterns: [x]\n", "concepts.yaml", 11, "defined twice"),
    (CONCEPTS + "  - id: combo\n    all_of: [nothing-here]\n", "concepts.yaml", 12, "all_of names 'nothing-here'"),
    (CONCEPTS.replace("classes:", "classes: [oops"), "concepts.yaml", 4, "not valid YAML"),
]


@pytest.mark.parametrize(("concepts", "file", "line", "reason"), BROKEN)
def test_invalid_concepts_name_the_file_and_line(
    tmp_path: Path, concepts: str, file: str, line: int, reason: str
) -> None:
    with pytest.raises(FlowError) as caught:
        load_triage(write(tmp_path, concepts=concepts), tmp_path.parent)
    assert caught.value.path == f"{tmp_path.name}/{file}"
    assert caught.value.line == line
    assert reason in caught.value.reason


BROKEN_CONTEXT = [
    (CONTEXT.replace("category: negated", "category: denial"), 5, "category must be one of"),
    (CONTEXT.replace("direction: forward", "direction: sideways"), 6, "direction must be one of"),
    (CONTEXT.replace("scope: 5", "scope: 50"), 7, "scope"),
    (CONTEXT.replace("en: [no, not]", "en: [no, n!ot]"), 8, "'n!ot' is not a word"),
    (CONTEXT.replace("sources: [NegEx]\n", ""), 1, "sources"),
]


@pytest.mark.parametrize(("context", "line", "reason"), BROKEN_CONTEXT)
def test_invalid_context_rules_name_the_file_and_line(tmp_path: Path, context: str, line: int, reason: str) -> None:
    with pytest.raises(FlowError) as caught:
        load_triage(write(tmp_path, context=context), tmp_path.parent)
    assert (caught.value.path, caught.value.line) == (f"{tmp_path.name}/context.yaml", line)
    assert reason in caught.value.reason


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "context.yaml").unlink()
    with pytest.raises(FlowError, match=r"context\.yaml:0: file is missing"):
        load_triage(tmp_path, tmp_path.parent)


def test_the_shipped_content_loads_through_the_content_library(tmp_path: Path) -> None:
    from app.content import load_content

    library = load_content(ROOT / "content")
    assert library.triage.assess("me duele el pecho").emergency == ("chest_pain",)
    broken = tmp_path / "content"
    shutil.copytree(ROOT / "content", broken)
    path = broken / "triage" / "concepts.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("@chest @pain", "@chest @nope", 1), encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_content(broken)
    assert caught.value.path == "content/triage/concepts.yaml" and caught.value.line > 0


def _report(path: Path):  # type: ignore[no-untyped-def]
    triage = load_triage(CONTENT, ROOT)
    return evaluate(triage, parse_rows(path.read_text(encoding="utf-8").splitlines(), str(path)))


def test_targets_on_the_held_out_set() -> None:
    report = _report(HELDOUT)
    assert report.rows >= 120
    assert report.meets_targets, [(row.text, verdict.to_json()) for row, verdict in report.misses]


@pytest.mark.skipif(not any(p.exists() for p in CORPORA), reason="../shared/triage/corpus.tsv is not here")
def test_targets_on_the_shared_corpus() -> None:
    report = _report(next(p for p in CORPORA if p.exists()))
    assert report.meets_targets, [(row.text, verdict.to_json()) for row, verdict in report.misses]


def test_parse_rows_rejects_a_bad_file() -> None:
    with pytest.raises(ValueError, match="header"):
        parse_rows(["text\tlang"], "x.tsv")
    with pytest.raises(ValueError, match=r"x\.tsv:3"):
        parse_rows(["lang\texpect\treason\ttext", "en\tNONE\tnone\thi", "en\tMAYBE\tnone\thi"], "x.tsv")
