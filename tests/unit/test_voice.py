"""The pure voice module (app/flows/voice.py) and its TwiML (app/channels/voice_twiml.py): every question type
in English and Spanish, parsed as XML and checked verb by verb; keypad and speech read as the engine's input."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from app.channels.voice_twiml import render
from app.config import CONTENT_DIR
from app.content import ContentLibrary, load_content
from app.flows import engine
from app.flows import voice as v
from app.flows.model import Node

ACTION = "https://outreach.example.org/twilio/voice/gather?call=7&step=3"
VOICES = {"en": "Polly.Joanna-Neural", "es": "Polly.Lupe-Neural"}


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return load_content(CONTENT_DIR)


def node(library: ContentLibrary, flow_id: str, node_id: str) -> Node:
    return library.flow(flow_id).node(node_id)


# (flow, question, numDigits, finishOnKey, a hint that must be offered in en / es)
QUESTIONS = [
    ("hf-daily-check", "weight", None, "#", ("lb", "lb")),
    ("hf-daily-check", "breath", "1", None, ("yes", "sí")),
    ("med-reminder", "dose", "1", None, None),
    ("diabetes-glucose-check", "ketones", "1", None, None),
    ("phq9", "phq9_1", "1", None, None),
    ("appointment-reminder", "help_what", None, "#", None),
]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize(("flow_id", "node_id", "num_digits", "finish_on_key", "hint"), QUESTIONS)
def test_each_question_type_renders_a_gather_then_a_redirect(
    library: ContentLibrary,
    language: str,
    flow_id: str,
    node_id: str,
    num_digits: str | None,
    finish_on_key: str | None,
    hint: tuple[str, str] | None,
) -> None:
    question = node(library, flow_id, node_id)
    said = [engine.Say("Thanks.", "info"), engine.Say("The question?", "prompt")]
    turn = v.question_turn(said, question, language, VOICES[language], asking=True)
    document = ElementTree.fromstring(render(turn, ACTION))
    assert document.tag == "Response"
    verbs = [child.tag for child in document]
    assert verbs == ["Say", "Gather", "Redirect"]
    locale = {"en": "en-US", "es": "es-US"}[language]
    say, gather, redirect = list(document)
    assert (say.text, say.get("voice"), say.get("language")) == ("Thanks.", VOICES[language], locale)
    assert gather.get("input") == "dtmf speech"
    assert gather.get("language") == locale
    assert gather.get("action") == ACTION
    assert gather.get("method") == "POST"
    assert gather.get("actionOnEmptyResult") == "true"
    assert gather.get("speechTimeout") == "auto"
    assert gather.get("numDigits") == num_digits
    assert gather.get("finishOnKey") == finish_on_key
    (prompt,) = list(gather)
    assert (prompt.tag, prompt.text, prompt.get("voice"), prompt.get("language")) == (
        "Say",
        "The question?",
        VOICES[language],
        locale,
    )
    if hint is not None:
        assert hint[0 if language == "en" else 1] in (gather.get("hints") or "").split(", ")
    assert (redirect.text, redirect.get("method")) == (ACTION, "POST")


@pytest.mark.parametrize(
    ("language", "words"), [("en", ("yes", "no", "one", "two")), ("es", ("sí", "no", "uno", "dos"))]
)
def test_yes_no_hints_offer_the_key_words_read_as_keys(
    library: ContentLibrary, language: str, words: tuple[str, ...]
) -> None:
    """ "one" / "two" ("uno" / "dos") said at a yes/no question are the 1 and 2 keys: the recogniser is told
    to expect them, on the question's Gather and on a one-key Gather (the read-back, the menu)."""
    question = node(library, "hf-daily-check", "breath")
    for turn in (
        v.question_turn([], question, language, VOICES[language], asking=True),
        v.key_turn([], ["Press 1."], language, VOICES[language]),
    ):
        gather = ElementTree.fromstring(render(turn, ACTION)).find("Gather")
        assert gather is not None
        hints = (gather.get("hints") or "").split(", ")
        assert all(word in hints for word in words), hints
    assert v.read_input(question, language, digits=None, speech=words[2], confidence="0.9").text == "1"


def test_choice_hints_are_the_choices_labels(library: ContentLibrary) -> None:
    dose = node(library, "med-reminder", "dose")
    hints = v.hints_for(dose, "en")
    assert all(choice.label["en"] in hints for choice in dose.choices)


def test_a_turn_that_ends_says_goodbye_and_hangs_up() -> None:
    turn = v.question_turn([engine.Say("Thank you.", "closing")], None, "en", "Polly.Joanna-Neural", asking=False)
    document = ElementTree.fromstring(render(turn, ACTION))
    assert [c.tag for c in document] == ["Say", "Say", "Hangup"]
    assert [c.text for c in document][:2] == ["Thank you.", "Goodbye."]


def test_the_emergency_turn_offers_the_nurse_line_only_when_there_is_one() -> None:
    with_nurse = ElementTree.fromstring(render(v.emergency_turn(["Call 911 now."], "es", "P", "+15550001111"), ACTION))
    assert [c.tag for c in with_nurse] == ["Say", "Gather", "Redirect"]
    gather = with_nurse.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert [s.text for s in gather] == ["Para hablar ahora con una enfermera, oprima 0."]
    without = ElementTree.fromstring(render(v.emergency_turn(["Call 911 now."], "en", "P", None), ACTION))
    assert [c.tag for c in without] == ["Say", "Hangup"]
    dial = ElementTree.fromstring(render(v.dial_turn(["Connecting."], "+15550001111", "en", "P"), ACTION))
    assert [c.tag for c in dial] == ["Say", "Dial"]
    assert dial.find("Dial") is not None and dial.find("Dial").text == "+15550001111"  # type: ignore[union-attr]


def test_turns_survive_storage() -> None:
    turn = v.question_turn([engine.Say("Q?", "prompt")], None, "en", "Polly.Joanna-Neural", asking=True)
    assert v.Turn.from_dict(turn.to_dict()) == turn
    assert render(v.Turn.from_dict(turn.to_dict()), ACTION) == render(turn, ACTION)


# ------------------------------------------------------------------------------------------ reading
def test_keys_are_answers_and_nine_opts_out_where_nine_is_no_answer(library: ContentLibrary) -> None:
    weight = node(library, "hf-daily-check", "weight")
    breath = node(library, "hf-daily-check", "breath")
    assert v.read_input(breath, "en", digits="1", speech=None, confidence=None) == v.Heard("answer", "1", "digits")
    assert v.read_input(weight, "en", digits="183", speech=None, confidence=None).text == "183"
    assert v.read_input(weight, "en", digits="9", speech=None, confidence=None).kind == "opt_out"
    assert v.read_input(breath, "es", digits="9", speech=None, confidence=None).kind == "opt_out"
    assert v.read_input(None, "en", digits="9", speech=None, confidence=None).kind == "opt_out"
    assert v.read_input(weight, "en", digits=None, speech="", confidence=None).kind == "silence"
    # Digits win over speech.
    assert v.read_input(breath, "en", digits="2", speech="yes", confidence="0.9").text == "2"


def test_nine_is_an_answer_where_the_question_takes_it() -> None:
    pills = Node(id="pills", type="question", question_type="number", minimum=0, maximum=20)
    assert v.read_input(pills, "en", digits="9", speech=None, confidence=None).kind == "answer"


def test_low_confidence_speech_is_read_back_first(library: ContentLibrary) -> None:
    weight = node(library, "hf-daily-check", "weight")
    breath = node(library, "hf-daily-check", "breath")
    heard = v.read_input(weight, "en", digits=None, speech="one eighty three", confidence="0.31")
    assert (heard.kind, heard.display) == ("confirm", "183")
    assert v.confirm_text(heard.display, "en") == "I heard 183. Press 1 if that is right, or 2 to try again."
    assert v.read_input(breath, "es", digits=None, speech="sí", confidence=0.2).display == "sí"
    confident = v.read_input(weight, "en", digits=None, speech="one eighty three", confidence="0.5")
    assert confident.kind == "answer"
    # A confidence that is no number in 0-1 counts as confident; words that are no answer go to the engine.
    assert v.read_input(weight, "en", digits=None, speech="183", confidence="NaNx").kind == "answer"
    assert v.read_input(weight, "en", digits=None, speech="banana", confidence="0.1").kind == "answer"
    assert v.read_input(weight, "en", digits=None, speech="183", confidence="0.4", threshold=0.3).kind == "answer"


def test_a_red_flag_is_never_held_for_a_read_back(library: ContentLibrary) -> None:
    breath = node(library, "hf-daily-check", "breath")
    heard = v.read_input(
        breath, "en", digits=None, speech="yes and I have chest pain", confidence="0.2", intents=library.intents
    )
    assert heard.kind == "answer"


def test_read_confirm() -> None:
    assert v.read_confirm("1", None) is True
    assert v.read_confirm("2", None) is False
    assert v.read_confirm("5", None) is None
    assert v.read_confirm(None, "yes") is True
    assert v.read_confirm(None, "no") is False
    assert v.read_confirm(None, None) is None


def test_gather_spec_by_question(library: ContentLibrary) -> None:
    assert v.gather_spec(node(library, "hf-daily-check", "weight"), "es").finish_on_key == "#"
    assert v.gather_spec(node(library, "phq9", "phq9_1"), "en").num_digits == 1
    big = Node(id="q", type="question", question_type="scale", minimum=0, maximum=10)
    assert v.gather_spec(big, "en").num_digits is None
    assert v.voice_for("es-MX") == "Polly.Lupe-Neural"
    assert v.voice_for("en", {"en": "Polly.Matthew-Neural"}) == "Polly.Matthew-Neural"


def test_voicemail_says_no_more_than_who_and_the_number() -> None:
    text = v.voicemail_text("en", "North Clinic", "Maria", "555-0100")
    assert text == "This is North Clinic calling for Maria. Please call us at 555-0100. Thank you."


def test_silence_leaves_the_question_unanswered_and_goes_on(library: ContentLibrary) -> None:
    import datetime as dt

    flow = library.flow("hf-daily-check")
    ctx = engine.PatientContext(first_name="Maria", language="en", program_name="North", program_phone="555")
    now = dt.datetime(2026, 11, 30, 15, tzinfo=dt.UTC)
    started = engine.start(flow, ctx, now, library.intents)
    step = engine.resume(flow, started.state, ctx, engine.Silence(), now, library.intents)
    assert step.state.node == "breath"
    assert engine.SaveAnswer("weight", "unanswered", None, None, "") in step.events
    assert "weight" not in step.state.unknown


@pytest.mark.parametrize("language", ["en", "es"])
def test_after_an_emergency_anything_but_the_nurse_is_asked_once_more_then_ends_with_the_advice(language: str) -> None:
    advice = ["Call 911 now."]
    voice = v.voice_for(language)
    offer = v.nurse_offer(language)
    turn, after = v.after_emergency(
        "5", None, advice=advice, asked_again=False, nurse_line="+1555", language=language, voice=voice
    )
    assert (turn.say, turn.prompt, after) == (("Call 911 now.",), (offer,), v.EMERGENCY_AGAIN)
    assert turn.gather is not None and turn.gather.num_digits == 1
    turn, after = v.after_emergency(
        None, None, advice=advice, asked_again=True, nurse_line="+1555", language=language, voice=voice
    )
    assert turn.ends and after == v.ENDED
    assert turn.say == ("Call 911 now.", v.goodbye_text(language))  # never a silent hang-up
    turn, after = v.after_emergency(
        None,
        "cero" if language == "es" else "zero",
        advice=advice,
        asked_again=True,
        nurse_line="+1555",
        language=language,
        voice=voice,
    )
    assert (turn.dial, after) == ("+1555", v.DIALED)


@pytest.mark.parametrize(
    ("status", "unreached"),
    [("busy", True), ("no-answer", True), ("failed", True), ("canceled", True), ("completed", False), (None, False)],
)
def test_after_the_nurse_line_rang(status: str | None, unreached: bool) -> None:
    for language, words in (("en", "did not answer"), ("es", "no contestó")):
        turn = v.after_dial(status, language, v.voice_for(language))
        said = " ".join(turn.say)
        assert turn.ends and (words in said) is unreached and ("911" in said) is unreached


def test_the_nurse_dial_has_a_timeout_and_comes_back_to_the_action() -> None:
    turn = v.dial_turn(["Connecting you to a nurse now."], "+15550100", "en", v.voice_for("en"))
    dial = ElementTree.fromstring(render(turn, "https://x/twilio/voice/gather?call=1&amp;step=4")).find("Dial")
    assert dial is not None and dial.text == "+15550100"
    assert dial.get("timeout") == str(v.NURSE_DIAL_TIMEOUT_SECONDS) and dial.get("method") == "POST"
    assert dial.get("action", "").startswith("https://x/twilio/voice/gather?call=1")


# Speech recognition gives words where the keypad gives digits: "one" at "press 1 for yes", "one eight three"
# for 183. Read as the keys, in both languages, with the recogniser's usual variants.
@pytest.mark.parametrize(
    ("flow_id", "node_id", "language", "said", "expected"),
    [
        ("hf-daily-check", "breath", "en", "one", "1"),
        ("hf-daily-check", "breath", "en", "One.", "1"),
        ("hf-daily-check", "breath", "en", "two", "2"),
        ("hf-daily-check", "breath", "en", "too", "2"),
        ("hf-daily-check", "breath", "en", "number two", "2"),
        ("hf-daily-check", "breath", "en", "press 1", "1"),
        ("hf-daily-check", "breath", "es", "uno", "1"),
        ("hf-daily-check", "breath", "es", "dos", "2"),
        ("hf-daily-check", "breath", "es", "el dos", "2"),
        ("hf-daily-check", "breath", "es", "número uno", "1"),
        ("hf-daily-check", "breath", "en", "yes", "yes"),  # words stay words
        ("hf-daily-check", "breath", "en", "one more thing", "one more thing"),
        ("hf-daily-check", "breath", "en", "I have two pillows", "I have two pillows"),
        ("hf-daily-check", "weight", "en", "one eight three", "183"),
        ("hf-daily-check", "weight", "en", "one eight three pounds", "183 pounds"),
        ("hf-daily-check", "weight", "en", "1 8 3", "183"),
        ("hf-daily-check", "weight", "en", "one eight two point five", "182.5"),
        ("hf-daily-check", "weight", "en", "two oh five", "205"),
        ("hf-daily-check", "weight", "es", "uno ocho tres", "183"),
        ("hf-daily-check", "weight", "es", "dos cero cinco libras", "205 libras"),
        ("hf-daily-check", "weight", "es", "uno ocho dos punto cinco", "182.5"),
        ("hf-daily-check", "weight", "en", "one eighty three", "one eighty three"),  # text2num reads it
        ("hf-daily-check", "weight", "es", "ciento ochenta y tres", "ciento ochenta y tres"),
        ("hf-daily-check", "weight", "en", "two", "two"),  # one digit word: left to the number reader
    ],
)
def test_spoken_keys_and_digit_by_digit_numbers(
    library: ContentLibrary, flow_id: str, node_id: str, language: str, said: str, expected: str
) -> None:
    assert v.spoken_keys(node(library, flow_id, node_id), said, language) == expected


@pytest.mark.parametrize(
    ("language", "said", "value"),
    [("en", "one", True), ("en", "two", False), ("es", "uno", True), ("es", "dos", False), ("en", "too", False)],
)
def test_spoken_one_and_two_answer_yes_no_like_the_keys(
    library: ContentLibrary, language: str, said: str, value: bool
) -> None:
    question = node(library, "hf-daily-check", "breath")
    got = v.read_input(question, language, digits=None, speech=said, confidence="0.9")
    understood = engine.understand(question, engine.Reply(got.text, got.mode), language)
    assert understood is not None and understood.value is value
    assert v.read_confirm(None, said) is value


@pytest.mark.parametrize(("language", "said"), [("en", "one eight three"), ("es", "uno ocho tres")])
def test_a_digit_by_digit_weight_is_183_and_read_back_as_183(library: ContentLibrary, language: str, said: str) -> None:
    question = node(library, "hf-daily-check", "weight")
    got = v.read_input(question, language, digits=None, speech=said, confidence="0.3")
    assert (got.kind, got.display) == ("confirm", "183")
    got = v.read_input(question, language, digits=None, speech=said, confidence="0.9")
    understood = engine.understand(question, engine.Reply(got.text, got.mode), language)
    assert understood is not None and understood.value == 183.0


# Read aloud, a text must not sound like a text message or a form: "Le escribimos" on a call, "muerto(a)".
@pytest.mark.parametrize(
    ("flow_id", "node_id", "language", "said", "not_said", "texted"),
    [
        ("post-discharge", "feeling", "es", "Le llamamos tras su estancia", "escribimos", "Le escribimos"),
        ("phq9", "phq9_9", "es", "estaría mejor muerto o muerta", "(a)", "estaria mejor muerto(a)"),
        ("phq9", "phq9_2", "es", "decaído o decaída, deprimido o deprimida", "(a)", "decaido(a), deprimido(a)"),
        ("phq9", "intro", "es", "las últimas 2 semanas", "ultimas", "las ultimas 2 semanas"),
        ("phq9", "phq9_4", "es", "cansado o cansada o con poca energía", "energia", "energia"),
        ("diabetes-glucose-check", "unclear", "es", "va a ver sus respuestas", "mensajes", "sus mensajes"),
        ("diabetes-glucose-check", "unclear", "en", "will see your answers", "messages", "your messages"),
    ],
)
def test_voice_renderings_read_aloud_naturally_and_texts_stay_as_written(
    library: ContentLibrary, flow_id: str, node_id: str, language: str, said: str, not_said: str, texted: str
) -> None:
    from app.content_lint import sms_text, voice_text

    flow = library.flow(flow_id)
    spoken = voice_text(flow, flow.node(node_id), language)
    assert said in spoken and not_said not in spoken
    assert texted in sms_text(flow, flow.node(node_id), language)


def test_the_linter_flags_slash_forms_and_sms_wording_in_a_voice_rendering() -> None:
    from app.content_lint import voice_wording_problems

    assert voice_wording_problems("¿Está el/la paciente bien?") == ["'el/la'"]
    assert voice_wording_problems("Le escribimos hoy.") == ["'Le escribimos'"]
    assert voice_wording_problems("We are texting you about your visit.") == ["'We are texting'"]
    assert voice_wording_problems("Se siente confundido(a)?") == ["'confundido(a)'"]
    assert voice_wording_problems("Le llamamos hoy. Peso en lb, glucosa en mg/dL.") == []
