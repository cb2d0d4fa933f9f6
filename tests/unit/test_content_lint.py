"""lint-content: answer words that are whole-message keywords, flow texts' reading level, segment totals.

Small inline flows, so these rules are tested whatever the shipped content holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.config import CONTENT_DIR
from app.content import ContentLibrary, load_content
from app.content_lint import (
    SegmentRow,
    consent_keywords,
    engine_answer_collisions,
    flow_reading_problems,
    keyword_collisions,
    lint,
    sample_variables,
    segment_totals,
)
from app.flows.loader import compile_flow

CHOICE_FLOW = """id: mini
title: {{en: Mini, es: Mini}}
languages: [en, es]
start: level
nodes:
  - id: level
    type: question
    answer: choice
    text: {{en: "How much?", es: "¿Le duele mucho o poco?"}}  # easy with the SMS instruction and opt-out
    choices:
      - id: low
        label: {{en: Low, es: Bajo}}
        words: {{en: [little], es: [poco]}}
      - id: high
        label: {{en: {label_en}, es: {label_es}}}
        words:
          en: [{word_en}]
          es: [{word_es}]
    next: done
  - id: done
    type: end
    result: completed
    text: {{en: "{done_en}", es: "{done_es}"}}
"""


def _flow(
    label_en: str = "High",
    label_es: str = "Mucho",
    word_en: str = "lots",
    word_es: str = "muchisimo",
    done_en: str = "Thanks.",
    done_es: str = "Gracias.",
) -> str:
    return CHOICE_FLOW.format(
        label_en=label_en, label_es=label_es, word_en=word_en, word_es=word_es, done_en=done_en, done_es=done_es
    )


@pytest.mark.parametrize(
    ("field", "word", "keyword"),
    [
        ("word_es", "alto", "opt-out keyword ALTO"),
        ("word_es", "'¡Alto!'", "opt-out keyword ALTO"),
        ("word_es", "Parar", "opt-out keyword PARAR"),
        ("word_en", "stop", "opt-out keyword STOP"),
        ("word_en", "cancel", "opt-out keyword CANCEL"),
        ("word_en", "un subscribe", "opt-out keyword UNSUBSCRIBE"),
        ("word_en", "start", "opt-in keyword START"),
        ("label_en", "Help", "help keyword HELP"),
        ("label_es", "Ayuda", "help keyword AYUDA"),
        ("word_en", "info", "help keyword INFO"),
        ("word_es", "español", "language keyword ESPANOL"),
        ("word_en", "English", "language keyword ENGLISH"),
    ],
)
def test_an_answer_word_that_is_a_keyword_is_an_error_naming_file_line_node_and_word(
    field: str, word: str, keyword: str
) -> None:
    source = _flow(**{field: word})
    flow = compile_flow(source, "mini.yaml")
    problems = keyword_collisions(flow, source)
    assert len(problems) == 1
    line = next(
        n
        for n, text in enumerate(source.splitlines(), start=1)
        if word in text and text.strip().startswith(("en: [", "es: [", "label:"))
    )
    assert problems[0].startswith(f"mini.yaml:{line}: node 'level': answer word '{word.strip(chr(39))}'")
    assert keyword in problems[0]


@pytest.mark.parametrize(
    "word",
    ["yes", "si", "sí", "alto nivel", "stop it now", "helpful", "ayudame", "high", "muy alto", "no", "1"],
)
def test_answer_words_that_are_not_whole_keywords_pass(word: str) -> None:
    source = _flow(word_en=f"'{word}'", word_es=f"'{word}'")
    assert keyword_collisions(compile_flow(source, "mini.yaml"), source) == []


def test_yes_and_si_are_answers_by_design_and_the_engine_words_collide_with_nothing() -> None:
    keywords = consent_keywords()
    assert "yes" not in keywords and "si" not in keywords
    assert {"stop", "alto", "help", "ayuda", "english", "espanol", "start"} <= set(keywords)
    assert engine_answer_collisions() == []


def test_flow_texts_above_grade_6_are_warnings_and_errors_when_strict() -> None:
    hard_en = (
        "Unfortunately, considerable physiological deterioration necessitates immediate consultation "
        "with your interdisciplinary healthcare organization representatives."
    )
    hard_es = (
        "Desafortunadamente, la considerable deterioracion fisiologica requiere inmediatamente una "
        "consulta interdisciplinaria con representantes institucionales especializados."
    )
    source = _flow(done_en=hard_en, done_es=hard_es)
    flow = compile_flow(source, "mini.yaml")
    problems = flow_reading_problems(flow)
    done_line = next(n for n, text in enumerate(source.splitlines(), start=1) if "id: done" in text)
    assert [p.split(": ")[0] for p in problems] == [f"mini.yaml:{done_line}", f"mini.yaml:{done_line}"]
    assert "done [en]: reading grade" in problems[0]
    assert "done [es]: Fernandez-Huerta" in problems[1]
    assert flow_reading_problems(compile_flow(_flow(), "mini.yaml")) == []

    library = load_content(CONTENT_DIR)
    mini = replace(library, flows={"mini": flow}, flow_sources={"mini": source})
    assert not any("reading grade" in e for e in lint(mini).errors)
    assert any("reading grade" in w for w in lint(mini).warnings)
    assert any("reading grade" in e for e in lint(mini, strict=True).errors)


def test_a_menu_is_read_one_line_at_a_time() -> None:
    menu = "How often?\\n0 Not at all\\n1 Several days\\n2 More than half the days\\n3 Nearly every day"
    source = _flow(done_en=menu)
    assert flow_reading_problems(compile_flow(source, "mini.yaml")) == []


def test_sample_values_are_rendered_per_language_and_the_filled_ones_force_ucs2() -> None:
    plain_es = sample_variables("es", filled=False)
    filled_es = sample_variables("es", filled=True)
    assert filled_es["first_name"] == "María"
    assert filled_es["appointment_date"].startswith("sábado")
    assert plain_es["appointment_date"].startswith("miércoles")  # é is GSM-7
    assert sample_variables("en", filled=False)["appointment_date"].startswith("Wednesday")

    source = _flow(done_en="Thanks, {first_name}.", done_es="Gracias, {first_name}.")
    library = load_content(CONTENT_DIR)
    mini = replace(library, flows={"mini": compile_flow(source, "mini.yaml")}, flow_sources={"mini": source})
    rows = {(r.where, r.language): r for r in lint(mini).segments}
    assert rows[("done", "es")].encoding == "GSM-7"
    assert rows[("done", "es")].filled_encoding == "UCS-2"
    assert rows[("level", "es")].filled_encoding == "GSM-7"


def test_segment_totals_per_language_and_overall() -> None:
    rows = [
        SegmentRow("f", "a", "en", "GSM-7", 10, 1, "GSM-7", 1),
        SegmentRow("f", "a", "es", "GSM-7", 200, 2, "UCS-2", 3),
        SegmentRow("f", "b", "es", "UCS-2", 80, 2, "UCS-2", 2),
    ]
    totals = segment_totals(rows)
    assert list(totals) == ["en", "es", "all"]
    assert (totals["en"].texts, totals["en"].segments, totals["en"].ucs2) == (1, 1, 0)
    assert (totals["es"].segments, totals["es"].ucs2, totals["es"].filled_segments, totals["es"].filled_ucs2) == (
        4,
        1,
        5,
        2,
    )
    assert (totals["all"].texts, totals["all"].segments, totals["all"].filled_segments) == (3, 5, 6)


def test_the_shipped_library_reports_every_text_in_both_languages() -> None:
    library: ContentLibrary = load_content(CONTENT_DIR)
    report = lint(library)
    assert {row.language for row in report.segments} == {"en", "es"}
    assert segment_totals(report.segments)["all"].texts == len(report.segments)
