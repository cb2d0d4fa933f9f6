"""Consent keywords (DESIGN §4.1): whole-message keywords only, before any flow."""

from __future__ import annotations

import pytest

from app.messaging.consent import Keyword, KeywordHit, classify, reply_text

OPT_OUT_EN = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
OPT_OUT_ES = ["PARAR", "ALTO", "CANCELAR", "BAJA"]


def _variants(word: str) -> list[str]:
    return [word, word.lower(), word.capitalize(), f" {word.capitalize()}. ", f"{word}!", f"\n{word.lower()}\n"]


@pytest.mark.parametrize("text", [v for w in OPT_OUT_EN for v in _variants(w)])
@pytest.mark.parametrize("opted_out", [False, True])
def test_english_opt_out_keywords(text: str, opted_out: bool) -> None:
    assert classify(text, opted_out=opted_out) == KeywordHit(Keyword.STOP, None)


@pytest.mark.parametrize("text", [v for w in OPT_OUT_ES for v in _variants(w)] + ["¡Párar!", "¡BAJA!"])
@pytest.mark.parametrize("opted_out", [False, True])
def test_spanish_opt_out_keywords_say_spanish(text: str, opted_out: bool) -> None:
    assert classify(text, opted_out=opted_out) == KeywordHit(Keyword.STOP, "es")


@pytest.mark.parametrize("text", ["opt out", "opt-out", "Stop all", "S.T.O.P."])
def test_spaces_and_punctuation_inside_a_keyword_are_ignored(text: str) -> None:
    hit = classify(text, opted_out=False)
    assert hit is not None
    assert hit.keyword is Keyword.STOP


@pytest.mark.parametrize("text", [v for w in ["START", "UNSTOP"] for v in _variants(w)])
@pytest.mark.parametrize("opted_out", [False, True])
def test_opt_in_keywords(text: str, opted_out: bool) -> None:
    assert classify(text, opted_out=opted_out) == KeywordHit(Keyword.START, None)


@pytest.mark.parametrize(
    ("text", "language"),
    [("YES", "en"), ("yes", "en"), (" Yes! ", "en"), ("SÍ", "es"), ("sí", "es"), ("Si", "es"), ("¡Sí!", "es")],
)
def test_yes_opts_back_in_only_while_opted_out(text: str, language: str) -> None:
    assert classify(text, opted_out=True) == KeywordHit(Keyword.START, language)
    # Otherwise YES / SÍ is an answer to the flow's question, not a keyword.
    assert classify(text, opted_out=False) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HELP", KeywordHit(Keyword.HELP, None)),
        ("help?", KeywordHit(Keyword.HELP, None)),
        (" Info ", KeywordHit(Keyword.HELP, None)),
        ("AYUDA", KeywordHit(Keyword.HELP, "es")),
        ("¿Ayuda?", KeywordHit(Keyword.HELP, "es")),
    ],
)
@pytest.mark.parametrize("opted_out", [False, True])
def test_help_keywords(text: str, expected: KeywordHit, opted_out: bool) -> None:
    assert classify(text, opted_out=opted_out) == expected


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "stop it",
        "don't stop",
        "I want to quit smoking",
        "the end",
        "parar de fumar",
        "yes stop",
        "help me",
        "start over",
        "stopping",
        "182",
        "no",
        "",
        "   ",
        "👍",
    ],
)
@pytest.mark.parametrize("opted_out", [False, True])
def test_not_a_whole_message_keyword_is_a_reply(text: str, opted_out: bool) -> None:
    assert classify(text, opted_out=opted_out) is None


def test_no_is_never_a_keyword_even_while_opted_out() -> None:
    assert classify("NO", opted_out=True) is None


# ---------------------------------------------------------------------------------------- reply texts
PROGRAM = "North Clinic"
PHONE = "555-0100"


@pytest.mark.parametrize("keyword", list(Keyword))
def test_reply_text_per_language(keyword: Keyword) -> None:
    en = reply_text(keyword, "en", PROGRAM, PHONE)
    es = reply_text(keyword, "es", PROGRAM, PHONE)
    assert en.strip()
    assert es.strip()
    assert en != es
    assert PROGRAM in en
    assert PROGRAM in es
    assert "%(" not in en and "%(" not in es  # every placeholder filled


@pytest.mark.parametrize("language", ["en", "es"])
def test_stop_reply_says_how_to_start_again(language: str) -> None:
    assert "START" in reply_text(Keyword.STOP, language, PROGRAM, PHONE)


@pytest.mark.parametrize(("language", "stop_word"), [("en", "STOP"), ("es", "PARAR")])
def test_start_reply_says_how_to_stop(language: str, stop_word: str) -> None:
    assert stop_word in reply_text(Keyword.START, language, PROGRAM, PHONE)


@pytest.mark.parametrize(("language", "stop_word"), [("en", "STOP"), ("es", "PARAR")])
def test_help_reply_names_program_phone_and_how_to_stop(language: str, stop_word: str) -> None:
    text = reply_text(Keyword.HELP, language, PROGRAM, PHONE)
    assert PROGRAM in text
    assert PHONE in text
    assert stop_word in text
    assert "911" in text


def test_spanish_replies_are_spanish() -> None:
    assert "mensajes" in reply_text(Keyword.STOP, "es", PROGRAM, PHONE)
    assert "messages" in reply_text(Keyword.STOP, "en", PROGRAM, PHONE)


def test_regional_tag_uses_the_base_language() -> None:
    assert reply_text(Keyword.STOP, "es-MX", PROGRAM, PHONE) == reply_text(Keyword.STOP, "es", PROGRAM, PHONE)
