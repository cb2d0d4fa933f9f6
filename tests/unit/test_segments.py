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


# A two-unit character (a GSM-7 escape pair, a UTF-16 surrogate pair) is never split between two parts:
# carriers move it whole to the next part, so a long text can need one part more than ceil(units / part).
BOUNDARIES: list[tuple[str, str, str, int, int]] = [
    # (case, body, encoding, segments, characters)
    ("GSM 153x2 fills two parts", "a" * 306, "GSM-7", 2, 306),
    ("GSM escape at the end of part one moves whole", "a" * 152 + "[" + "a" * 152, "GSM-7", 3, 306),
    ("GSM escape fits part one exactly", "a" * 151 + "[" + "a" * 153, "GSM-7", 2, 306),
    ("GSM escape opens part two", "a" * 153 + "[" + "a" * 151, "GSM-7", 2, 306),
    ("GSM escape straddling part two's end", "a" * 153 + "a" * 152 + "€" + "a", "GSM-7", 3, 308),
    ("GSM escapes only, 2 per char", "€" * 153, "GSM-7", 3, 306),
    ("GSM 160 with escape at the very end stays one", "a" * 158 + "]", "GSM-7", 1, 160),
    ("GSM 161 with an escape at the boundary", "a" * 159 + "]", "GSM-7", 2, 161),
    ("UCS-2 70 units is one part", "á" * 70, "UCS-2", 1, 70),
    ("UCS-2 67x2 fills two parts", "á" * 134, "UCS-2", 2, 134),
    ("UCS-2 emoji straddling the boundary moves whole", "x" * 66 + "👋" + "x" * 66, "UCS-2", 3, 134),
    ("UCS-2 emoji fits part one exactly", "x" * 65 + "👋" + "x" * 67, "UCS-2", 2, 134),
    ("UCS-2 emoji opens part two", "x" * 67 + "👋" + "x" * 65, "UCS-2", 2, 134),
    ("UCS-2 emoji at the end of a 70-unit single part", "x" * 68 + "👋", "UCS-2", 1, 70),
    ("UCS-2 emoji only, 35 fit one part", "👋" * 35, "UCS-2", 1, 70),
    ("UCS-2 emoji only, 36 need parts of 33", "👋" * 36, "UCS-2", 2, 72),
    ("UCS-2 emoji only, 67 of them", "👋" * 67, "UCS-2", 3, 134),
]


@pytest.mark.parametrize(
    ("case", "body", "encoding", "segments", "characters"), BOUNDARIES, ids=[c[0] for c in BOUNDARIES]
)
def test_two_unit_characters_never_straddle_a_part_boundary(
    case: str, body: str, encoding: str, segments: int, characters: int
) -> None:
    assert segment_info(body) == SegmentInfo(encoding=encoding, segments=segments, characters=characters)


def test_counts_agree_with_the_fake_twilio_server_on_the_boundary_table() -> None:
    from tests.support.fake_twilio import count_segments

    for _case, body, _encoding, segments, _characters in BOUNDARIES:
        assert count_segments(body) == segments, _case
