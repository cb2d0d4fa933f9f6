"""Education lessons by text (issue 12 item 5): parts, MORE, triggers declared as data and checked at load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.config import CONTENT_DIR
from app.content import load_content
from app.flows.lessons import MORE_WORDS, Trigger, is_more, part_text, split_parts, triggered_topics
from app.flows.loader import FlowError
from app.flows.routing import route
from app.scheduling.campaigns import load_campaign


@pytest.mark.parametrize(
    ("text", "more"),
    [("MORE", True), ("more!", True), (" More ", True), ("MÁS", True), ("mas", True), ("Más.", True),
     ("more please", False), ("no more", False), ("", False), ("moré", True), ("STOP", False)],
)  # fmt: skip
def test_more_is_the_whole_message_in_english_or_spanish(text: str, more: bool) -> None:
    assert is_more(text) is more


def test_parts_keep_blocks_whole_and_fit_the_limit() -> None:
    body = "One two.\n\nThree four five.\n\n" + "x" * 50 + "\n\n  \n\nLast."
    assert split_parts(body, limit=30) == ["One two.\n\nThree four five.", "x" * 50, "Last."]
    assert split_parts(body, limit=1000) == [body.replace("\n\n  \n\n", "\n\n")]
    assert split_parts("") == []


def test_every_shipped_topic_splits_into_parts_that_together_are_the_whole_text() -> None:
    library = load_content(CONTENT_DIR)
    for topic, texts in library.education.items():
        for language, text in texts.items():
            parts = split_parts(text.body)
            assert parts, (topic, language)
            assert "\n\n".join(parts).split() == text.body.split()


def test_part_text_titles_the_first_part_and_offers_more_until_the_last() -> None:
    parts = ["First.", "Second.", "Third."]
    first = part_text("Title", parts, 0, "en")
    assert first.startswith("Title\n\nFirst.") and "Reply MORE for the next part (1 of 3)." in first
    assert "MORE" in part_text("T", parts, 1, "en") and "(2 of 3)" in part_text("T", parts, 1, "en")
    assert part_text("T", parts, 2, "en") == "Third."
    spanish = part_text("Titulo", parts, 0, "es")
    assert "MAS" in spanish and "MORE" not in spanish
    with pytest.raises(IndexError):
        part_text("T", parts, 3, "en")


def test_triggers_match_flow_and_reason_each_topic_once() -> None:
    triggers = [
        Trigger("low", "diabetes-glucose-check", ("low_glucose", "severe_low_glucose"), "diabetes-low-blood-sugar"),
        Trigger("low2", "diabetes-glucose-check", ("severe_low_glucose",), "diabetes-low-blood-sugar"),
        Trigger("gain", "hf-daily-check", ("weight_gain",), "heart-failure-salt-and-fluids"),
    ]
    assert triggered_topics(triggers, "diabetes-glucose-check", ["low_glucose", "severe_low_glucose"]) == [
        "diabetes-low-blood-sugar"
    ]
    assert triggered_topics(triggers, "hf-daily-check", ["weight_gain", "dizziness"]) == [
        "heart-failure-salt-and-fluids"
    ]
    assert triggered_topics(triggers, "hf-daily-check", ["low_glucose"]) == []
    assert triggered_topics(triggers, "copd-check", ["weight_gain"]) == []


def test_shipped_triggers_and_education_touches_load() -> None:
    library = load_content(CONTENT_DIR)
    by_id = {t.id: t for t in library.education_triggers}
    assert by_id["low-sugar"].topic == "diabetes-low-blood-sugar"
    assert by_id["weight-gain"].topic == "heart-failure-salt-and-fluids"
    campaign = library.campaign("post-discharge-30d")
    assert campaign is not None
    lessons = {t.id: (t.education, t.days) for t in campaign.touches if t.education}
    assert lessons == {
        "lesson-medicines": ("medicines-after-discharge", (2,)),
        "lesson-when-to-call": ("when-to-call", (6,)),
    }


def _copy_content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    return root


@pytest.mark.parametrize(
    ("replace", "by", "line", "message"),
    [
        ("reasons: [weight_gain]", "reasons: [weight_gone]", 16, "has reason 'weight_gone'"),
        ("flow: hf-daily-check", "flow: hf-nightly", 15, "unknown flow 'hf-nightly'"),
        ("topic: heart-failure-salt-and-fluids", "topic: salt", 17, "education topic 'salt' needs en and es"),
        ("  topic: diabetes-low-blood-sugar", "  topic: diabetes-low-blood-sugar\n    when: now", 10, "unknown field"),
    ],
)  # fmt: skip
def test_a_bad_trigger_is_refused_at_load_with_file_and_line(
    tmp_path: Path, replace: str, by: str, line: int, message: str
) -> None:
    root = _copy_content(tmp_path)
    path = root / "education" / "triggers.yaml"
    source = path.read_text(encoding="utf-8")
    assert replace in source
    path.write_text(source.replace(replace, by), encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_content(root)
    assert "triggers.yaml" in str(caught.value) and f":{line}" in str(caught.value)
    assert message in str(caught.value)


def test_an_education_touch_needs_a_topic_with_both_languages(tmp_path: Path) -> None:
    root = _copy_content(tmp_path)
    path = root / "campaigns" / "post-discharge-30d.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("education: when-to-call", "education: when-to-panic"),
        encoding="utf-8",
    )
    with pytest.raises(FlowError, match="when-to-panic"):
        load_content(root)
    source = (root / "campaigns" / "post-discharge-30d.yaml").read_text(encoding="utf-8")
    path.write_text(source.replace("education: when-to-panic", "education: when-to-call\n    flow: phq2"))
    with pytest.raises(FlowError, match="flow or education, not both"):
        load_campaign(path, {"phq2", "post-discharge", "hf-daily-check", "diabetes-glucose-check", "copd-check"})


def test_more_routes_to_the_lesson_only_when_one_has_parts_left() -> None:
    library = load_content(CONTENT_DIR)
    intents = library.intents
    assert route("MORE", intents=intents, language="en", lesson_open=True).kind == "more"
    assert route("más", intents=intents, language="es", lesson_open=True).kind == "more"
    assert route("MORE", intents=intents, language="en").kind == "outside"
    assert route("MORE", intents=intents, language="en", opted_out=True, lesson_open=True).kind == "outside"
    assert route("STOP", intents=intents, language="en", lesson_open=True).kind == "keyword"
    assert set(MORE_WORDS) == {"more", "mas"}
