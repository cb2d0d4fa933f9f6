"""SMS segment counting (DESIGN §4.6): GSM-7 160/153, UCS-2 70/67 in UTF-16 code units."""

from __future__ import annotations

import pytest

from app.channels.segments import SegmentInfo, segment_info

GSM: list[tuple[str, str, int, int]] = [
    # (case, body, segments, characters)
    ("empty", "", 1, 0),
    ("160 plain", "a" * 160, 1, 160),
    ("161 plain", "a" * 161, 2, 161),
    ("306 plain", "a" * 306, 2, 306),
    ("307 plain", "a" * 307, 3, 307),
    ("459 plain", "a" * 459, 3, 459),
    ("460 plain", "a" * 460, 4, 460),
    ("80 euro signs fill one part", "€" * 80, 1, 160),
    ("81 euro signs need two", "€" * 81, 2, 162),
    ("159 plus one brace", "a" * 159 + "{", 2, 161),
    ("158 plus one caret", "a" * 158 + "^", 1, 160),
    ("spanish letters in GSM-7", "é ñ ü ¿ ¡ Ñ Ü É", 1, 15),
    ("newline", "line one\nline two", 1, 17),
]


@pytest.mark.parametrize(("case", "body", "segments", "characters"), GSM, ids=[c[0] for c in GSM])
def test_gsm7(case: str, body: str, segments: int, characters: int) -> None:
    assert segment_info(body) == SegmentInfo(encoding="GSM-7", segments=segments, characters=characters)


@pytest.mark.parametrize("char", list("^{}\\[~]|€"))
def test_each_extension_character_counts_two(char: str) -> None:
    info = segment_info("a" * 10 + char)
    assert info.encoding == "GSM-7"
    assert info.characters == 12


@pytest.mark.parametrize("char", list("éñü¿¡ÑÜÉäöÄÖ"))
def test_gsm7_accented_letters_stay_gsm7(char: str) -> None:
    assert segment_info("a" * 159 + char) == SegmentInfo("GSM-7", 1, 160)


UCS2: list[tuple[str, str, int, int]] = [
    ("70 with an á", "á" + "a" * 69, 1, 70),
    ("71 with an á", "á" + "a" * 70, 2, 71),
    ("134 with an á", "á" + "a" * 133, 2, 134),
    ("135 with an á", "á" + "a" * 134, 3, 135),
    ("201 with an á", "á" + "a" * 200, 3, 201),
    ("202 with an á", "á" + "a" * 201, 4, 202),
    ("curly apostrophe", "It\u2019s time", 1, 9),
    ("curly quotes", "\u201cHello\u201d", 1, 7),
    ("emoji is two units", "👍", 1, 2),
    ("69 plus emoji", "a" * 68 + "👍", 1, 70),
    ("70 plus emoji", "a" * 69 + "👍", 2, 71),
    ("extension char is one unit in UCS-2", "á€", 1, 2),
]


@pytest.mark.parametrize(("case", "body", "segments", "characters"), UCS2, ids=[c[0] for c in UCS2])
def test_ucs2(case: str, body: str, segments: int, characters: int) -> None:
    assert segment_info(body) == SegmentInfo(encoding="UCS-2", segments=segments, characters=characters)


@pytest.mark.parametrize("char", list("áíóúÁÍÓÚ\u2019\u201c\u201d"))
def test_characters_that_force_ucs2(char: str) -> None:
    assert segment_info("Hola " + char).encoding == "UCS-2"


def test_real_spanish_prompt_is_ucs2_when_it_has_an_acute_accent() -> None:
    assert segment_info("¿Cuánto pesa hoy?").encoding == "UCS-2"
    assert segment_info("¿Cuanto pesa hoy?").encoding == "GSM-7"
