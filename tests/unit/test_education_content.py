"""The shipped education topics (content/education/<topic>/<lang>.md): every topic the care plan names exists
in English and Spanish with reviewable front matter, passes the reading-level check, gives the same
emergency numbers in both languages and stays cheap to text."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.channels.segments import segment_info
from app.config import CONTENT_DIR
from app.content import ContentLibrary, EducationText, load_content
from app.content_lint import lint

#: Topics of DESIGN §4.6 and issue 12 item 5 (education as part of the care plan).
REQUIRED_TOPICS = {
    "when-to-call",
    "medicines-after-discharge",
    "heart-failure",
    "heart-failure-salt-and-fluids",
    "diabetes-low-blood-sugar",
    "diabetes-high-blood-sugar",
    "copd",
    "stroke-be-fast",
    "mental-health-resources",
    "social-needs-resources",
    "blood-thinners-bleeding",
}
LANGUAGES = ("en", "es")
#: Spanish texts allowed to need UCS-2, with the reason. Every other text stays GSM-7 (á í ó ú avoided
#: by rewording, never by misspelling).
UCS2_ALLOWED = {
    ("stroke-be-fast", "es"): "the American Stroke Association's Spanish acronym R.Á.P.I.D.O. and its words",
}
#: An education text is one SMS of several parts: at most this many at GSM-7 (153 characters a part).
MAX_GSM7_SEGMENTS = 7
EMERGENCY_NUMBERS = re.compile(r"(?<!\d)(911|988|741741)(?!\d)")


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return load_content(CONTENT_DIR)


def _texts(library: ContentLibrary) -> list[EducationText]:
    return [item for by_language in library.education.values() for item in by_language.values()]


def test_every_required_topic_is_there_in_english_and_spanish(library: ContentLibrary) -> None:
    assert set(library.education) >= REQUIRED_TOPICS
    for topic, by_language in library.education.items():
        assert set(by_language) == set(LANGUAGES), topic


def test_front_matter_names_title_sources_and_review(library: ContentLibrary) -> None:
    for item in _texts(library):
        where = f"{item.topic}/{item.language}"
        assert item.title.strip(), where
        sources = item.meta["sources"]
        assert isinstance(sources, list) and sources, where
        assert all(isinstance(source, str) and source.strip() for source in sources), where
        assert str(item.meta["reviewed_by"]).strip(), where
        assert isinstance(item.meta["reviewed_on"], dt.date), where


def test_emergency_numbers_are_the_same_in_both_languages(library: ContentLibrary) -> None:
    """911, 988 and the Crisis Text Line wherever the English gives them, and nowhere else."""
    for topic, by_language in library.education.items():
        english = set(EMERGENCY_NUMBERS.findall(by_language["en"].body))
        spanish = set(EMERGENCY_NUMBERS.findall(by_language["es"].body))
        assert english == spanish, topic


def test_spanish_988_says_how_to_reach_it_in_spanish(library: ContentLibrary) -> None:
    """988 in Spanish: press 2 on a call, or text AYUDA (988 Suicide & Crisis Lifeline)."""
    for topic, by_language in library.education.items():
        body = by_language["es"].body
        if "988" in body:
            assert "oprima 2" in body and "AYUDA por texto al 988" in body, topic


def test_texts_pass_the_reading_level_and_length_checks(library: ContentLibrary) -> None:
    errors = [e for e in lint(library, strict=True).errors if "content/education/" in e]
    assert errors == []


def test_texts_stay_gsm7_and_short(library: ContentLibrary) -> None:
    for item in _texts(library):
        info = segment_info(item.body)
        if (item.topic, item.language) in UCS2_ALLOWED:
            assert info.encoding == "UCS-2", f"{item.topic}/{item.language} no longer needs its exception"
            continue
        offending = sorted({ch for ch in item.body if segment_info(ch).encoding == "UCS-2"})
        assert info.encoding == "GSM-7", f"{item.topic}/{item.language}: {''.join(offending)}"
        assert info.segments <= MAX_GSM7_SEGMENTS, f"{item.topic}/{item.language}: {info.segments} segments"
