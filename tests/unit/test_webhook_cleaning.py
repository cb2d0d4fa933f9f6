"""Twilio's form fields cleaned at the edge (app/channels/cleaning.py): tables of what each rule keeps,
strips, cuts or refuses."""

from __future__ import annotations

import pytest

from app.channels.cleaning import BODY_MAX, SID_MAX, Refused, clean_text, digest, provider_sid, row_id


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("182", "182"),
        ("18\x002", "182"),  # NUL: PostgreSQL refuses it in text
        ("\x00\x01\x02\x1b[31m", "[31m"),  # C0 controls and ESC
        ("line one\nline two\r\n\tend", "line one\nline two\r\n\tend"),  # newlines and tabs kept
        ("bell\x07 del\x7f c1\x85\x9f", "bell del c1"),  # BEL, DEL, C1 controls
        ("lone \ud800 surrogate", "lone  surrogate"),  # not encodable as UTF-8
        ("Sí, tengo dolor 👋🏽 ❤️", "Sí, tengo dolor 👋🏽 ❤️"),  # accents, emoji, ZWJ/VS16 kept
        ("a\u200db", "a\u200db"),  # format characters (joiners) are not controls
    ],
)
def test_clean_text_strips_controls_and_keeps_text(raw: str, clean: str) -> None:
    assert clean_text(raw, BODY_MAX) == clean


def test_clean_text_cuts_to_the_limit_after_stripping() -> None:
    assert clean_text("\x00" * 10 + "a" * 2000, BODY_MAX) == "a" * BODY_MAX
    assert clean_text("+1202555" + "9" * 40, 20) == "+1202555999999999999"


@pytest.mark.parametrize("sid", ["SM" + "a" * 32, "MM" + "0" * 32, "x", "S" * SID_MAX, "", "SMé☃"])
def test_storable_sids_pass_unchanged(sid: str) -> None:
    assert provider_sid(sid) == sid


@pytest.mark.parametrize(
    ("sid", "why"),
    [
        ("S" * (SID_MAX + 1), "longer than 64"),
        ("SM" + "a" * 10_000, "longer than 64"),
        ("SM\x00abc", "control or space character"),
        ("SM abc", "control or space character"),
        ("SMabc\n", "control or space character"),
        ("SM\u2028abc", "control or space character"),
    ],
)
def test_unstorable_sids_are_refused_and_named_by_their_hash(sid: str, why: str) -> None:
    with pytest.raises(Refused) as refused:
        provider_sid(sid, "SmsSid")
    assert refused.value.field == "SmsSid"
    assert refused.value.why == why
    assert refused.value.digest == digest(sid)
    assert len(refused.value.digest) == 12 and sid not in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("5", 5),
        ("0012", 12),
        ("2147483647", 2**31 - 1),
        ("2147483648", None),  # past PostgreSQL's integer
        ("99999999999", None),
        ("0", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1\n", None),
        ("1e3", None),
        ("²", None),  # str.isdigit() says True, int() says no
        ("١٢", None),  # Arabic-Indic digits: int() would take them
        ("", None),
        (None, None),
    ],
)
def test_row_ids_are_ascii_digits_within_range(raw: str | None, parsed: int | None) -> None:
    assert row_id(raw) == parsed
