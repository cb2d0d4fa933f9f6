"""Global intents (DESIGN §4.3): language switches, opt-out sentences (content/consent.yaml) and the
"right now?" reply."""

from __future__ import annotations

import functools

import pytest

from app import config
from app.content import load_content
from app.flows.intents import GlobalIntents, confirm_reply


@functools.cache
def lexicon() -> GlobalIntents:
    # load_content only reads files under content/: no database, no network.
    return load_content(config.CONTENT_DIR).intents


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ESPAÑOL", "es"),
        ("español", "es"),
        ("espanol", "es"),
        ("Spanish", "es"),
        (" Español. ", "es"),
        ("English", "en"),
        ("ENGLISH!", "en"),
        ("inglés", "en"),
        ("yes", None),
        ("no", None),
        ("I speak English", None),  # only a whole-message switch
        ("", None),
    ],
)
def test_language_switch(text: str, language: str | None) -> None:
    assert lexicon().language_switch(text) == language
    assert GlobalIntents().language_switch(text) == language  # switches need no lexicon


OPT_OUT_SENTENCES: list[tuple[str, bool]] = [
    ("please stop texting me", True),
    ("Stop. Thank you", True),
    ("STOP!! thanks", True),
    ("please stop", True),
    ("don't text me anymore", True),
    ("Do not send me these messages", True),
    ("stop sending me all these texts", True),
    ("I don't want these texts anymore", True),
    ("unsubscribe me please", True),
    ("no me manden más mensajes", True),
    ("No me manden mensajes por favor", True),
    ("quiero dejar de recibir mensajes", True),
    ("Dejen de mandarme mensajes", True),
    ("Quítenme de la lista", True),
    ("parar por favor", True),
    # Not a request to stop texting.
    ("please don't stop texting me", False),
    ("I stopped taking my pills", False),
    ("the pain won't stop", False),
    ("can you make the pain stop", False),
    ("no", False),
    ("183", False),
    ("Baja, gracias", False),  # "baja" is an answer word (low) at the glucose question
    ("Alto", False),
    ("no me duele", False),
    ("", False),
]


@pytest.mark.parametrize(("text", "wanted"), OPT_OUT_SENTENCES)
def test_opt_out_written_as_a_sentence(text: str, wanted: bool) -> None:
    assert lexicon().opt_out_request(text) is wanted
    assert GlobalIntents().opt_out_request(text) is False  # the phrases are content


CONFIRM_REPLIES: list[tuple[str, str | None]] = [
    ("yes", "yes"),
    ("YES", "yes"),
    ("sí", "yes"),
    ("1", "yes"),
    ("a little", "yes"),  # hedges count as yes on "right now?"
    ("kind of", "yes"),
    ("not sure", "yes"),  # uncertain: the 911 advice (safety first)
    ("un poco", "yes"),
    ("más o menos", "yes"),
    ("no sé", "yes"),
    ("still hurts", "yes"),
    ("no", "no"),
    ("No.", "no"),
    ("nope", "no"),
    ("2", "no"),
    ("not anymore", "no"),
    ("it's gone", "no"),
    ("ya no", "no"),
    ("ya se me quitó", "no"),
    ("what?", None),
    ("183", None),
    ("", None),
    # Issue 7 tester findings: replies that mean YES must never be read as NO (whole words only; a negated
    # "gone" is YES; "came back" / "still" / "sigue" is YES; mixed signals are YES).
    ("yes overwhelming pressure", "yes"),
    ("Overwhelming", None),
    ("its not gone", "yes"),
    ("it isn't gone yet", "yes"),
    ("it hasn't gone away", "yes"),
    ("it won't go away", "yes"),
    ("not over", "yes"),
    ("it's still there", "yes"),
    ("it went away but came back", "yes"),
    ("came back", "yes"),
    ("it's back", "yes"),
    ("again", "yes"),
    ("volvió", "yes"),
    ("regresó el dolor", "yes"),
    ("sigue", "yes"),
    ("todavía me duele", "yes"),
    ("aún me duele", "yes"),
    ("ya no se me quita", "yes"),
    ("no se me quita", "yes"),
    ("no se ha ido", "yes"),
    ("no se ha quitado", "yes"),
    ("otra vez", "yes"),
    ("yes and no", "yes"),
    ("yes it's gone", "yes"),
    ("it's over", "no"),
    ("over now", "no"),
    ("it went away", "no"),
    ("No, it went away", "no"),
    ("no it's gone", "no"),
    ("ya pasó", "no"),
    ("no, ya se me quitó", "no"),
    ("ya no me duele", "no"),
    ("I don't think so", "no"),
    ("no longer", "no"),
]


@pytest.mark.parametrize(("text", "expected"), CONFIRM_REPLIES)
def test_right_now_reply(text: str, expected: str | None) -> None:
    assert confirm_reply(text) == expected
