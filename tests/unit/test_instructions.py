"""Answer instructions per question type × channel × language (app/flows/instructions.py), node overrides,
the loader's errors for a bad ``instructions``, channel-aware re-prompts, the opt-out line on the first
message, and the linter's checks (an SMS instruction left in a text; the spoken duration of a flow)."""

from __future__ import annotations

import datetime as dt
import re
import textwrap

import pytest

from app.config import CONTENT_DIR
from app.content import load_content
from app.content_lint import (
    MAX_CALL_SECONDS,
    instruction_problems,
    lint,
    sms_text,
    speaking_seconds,
    spoken_duration,
    voice_text,
)
from app.flows import engine
from app.flows.engine import PatientContext, Reply, Timeout
from app.flows.instructions import instruction, keypad, opt_out_line, render_prompt, spoken_text
from app.flows.loader import FlowError, compile_flow
from app.flows.model import Flow

PATH = "content/flows/talk.yaml"
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)

SOURCE = textwrap.dedent(
    """\
    id: talk
    title: {en: Talk, es: Hablar}
    languages: [en, es]
    start: weight
    nodes:
      - id: weight
        type: question
        answer: number
        min: 50
        max: 700
        text: {en: "Hi {first_name}. Your weight today?", es: "Hola {first_name}. ¿Su peso hoy?"}
        measure: {en: your weight, es: su peso}
        example: 182
        next: breath
      - id: breath
        type: question
        answer: yes_no
        text: {en: "More short of breath?", es: "¿Le falta más el aire?"}
        next: feeling
      - id: feeling
        type: question
        answer: choice
        text: {en: "How do you feel?", es: "¿Cómo se siente?"}
        choices:
          - {id: better, label: {en: Better, es: Mejor}}
          - {id: worse, label: {en: Worse, es: Peor}}
        next: mood
      - id: mood
        type: question
        answer: scale
        min: 0
        max: 3
        choices:
          - {id: a, value: 0, label: {en: Not at all, es: Ningún día}}
          - {id: b, value: 1, label: {en: Several days, es: Varios días}}
          - {id: c, value: 2, label: {en: More than half the days, es: Más de la mitad de los días}}
          - {id: d, value: 3, label: {en: Nearly every day, es: Casi todos los días}}
        text: {en: "1/2. Feeling down", es: "1/2. Decaido(a)"}
        next: plain_scale
      - id: plain_scale
        type: question
        answer: scale
        min: 1
        max: 5
        text: {en: "How bad is the pain?", es: "¿Cuánto le duele?"}
        next: why
      - id: why
        type: question
        answer: text
        text: {en: "Why?", es: "¿Por qué?"}
        next: count
      - id: count
        type: question
        answer: number
        min: 0
        max: 20
        text: {en: "How many pills?", es: "¿Cuántas pastillas?"}
        next: done
      - id: done
        type: end
        text: {en: "Thanks.", es: "Gracias."}
    """
)


@pytest.fixture(scope="module")
def flow() -> Flow:
    return compile_flow(SOURCE, PATH)


def ctx(language: str = "en", channel: str = "sms") -> PatientContext:
    return PatientContext(
        first_name="Ana", language=language, program_name="North", program_phone="555", channel=channel
    )


EXPECTED = {
    # (node, channel, language): instruction
    ("weight", "sms", "en"): "Reply with your weight, like 182.",
    ("weight", "sms", "es"): "Responda solo con su peso, como 182.",
    ("weight", "voice", "en"): "Enter your weight, then press the pound key.",
    ("weight", "voice", "es"): "Ingrese su peso y luego oprima la tecla numeral.",
    ("count", "sms", "en"): "Reply with a number.",
    ("count", "sms", "es"): "Responda solo con la cifra.",
    ("count", "voice", "en"): "Enter the number, then press the pound key.",
    ("count", "voice", "es"): "Ingrese el número y luego oprima la tecla numeral.",
    ("breath", "sms", "en"): "Reply YES or NO.",
    ("breath", "sms", "es"): "Responda SI o NO.",
    ("breath", "voice", "en"): "Press 1 for yes or 2 for no. You can also say yes or no.",
    ("breath", "voice", "es"): "Oprima 1 para sí o 2 para no. También puede decir sí o no.",
    ("feeling", "sms", "en"): "Reply 1 Better, 2 Worse.",
    ("feeling", "sms", "es"): "Responda 1 Mejor, 2 Peor.",
    ("feeling", "voice", "en"): "Press 1 for Better, press 2 for Worse.",
    ("feeling", "voice", "es"): "Oprima 1 para Mejor, oprima 2 para Peor.",
    ("mood", "sms", "en"): "0 Not at all\n1 Several days\n2 More than half the days\n3 Nearly every day",
    # SMS menus built from labels drop the accents of a, i, o, u (GSM-7); a call says the labels as written.
    ("mood", "sms", "es"): "0 Ningun dia\n1 Varios dias\n2 Mas de la mitad de los dias\n3 Casi todos los dias",
    ("mood", "voice", "en"): (
        "Press 0 for Not at all, press 1 for Several days, press 2 for More than half the days, "
        "press 3 for Nearly every day."
    ),
    ("mood", "voice", "es"): (
        "Oprima 0 para Ningún día, oprima 1 para Varios días, oprima 2 para Más de la mitad de los días, "
        "oprima 3 para Casi todos los días."
    ),
    ("plain_scale", "sms", "en"): "Reply with a number from 1 to 5.",
    ("plain_scale", "sms", "es"): "Responda con una cifra del 1 al 5.",
    ("plain_scale", "voice", "en"): "Press a number from 1 to 5.",
    ("plain_scale", "voice", "es"): "Oprima un número del 1 al 5.",
    ("why", "sms", "en"): "Reply in a few words.",
    ("why", "sms", "es"): "Responda en pocas palabras.",
    ("why", "voice", "en"): "Please say your answer in a few words.",
    ("why", "voice", "es"): "Por favor diga su respuesta en pocas palabras.",
}


@pytest.mark.parametrize(("node_id", "channel", "language"), sorted(EXPECTED))
def test_instruction_per_type_channel_and_language(flow: Flow, node_id: str, channel: str, language: str) -> None:
    assert instruction(flow.node(node_id), channel, language) == EXPECTED[(node_id, channel, language)]


def test_console_and_unknown_channels_read_as_sms(flow: Flow) -> None:
    node = flow.node("breath")
    assert instruction(node, "console", "en") == instruction(node, "sms", "en") == "Reply YES or NO."


def test_no_instruction_for_a_node_that_is_not_a_question(flow: Flow) -> None:
    assert instruction(flow.node("done"), "voice", "en") == ""


def test_render_prompt_sms_reads_as_the_text_did(flow: Flow) -> None:
    assert render_prompt(flow.node("breath"), "en", ctx()) == "More short of breath? Reply YES or NO."
    assert render_prompt(flow.node("weight"), "es", ctx("es")) == (
        "Hola Ana. ¿Su peso hoy? Responda solo con su peso, como 182."
    )
    # A menu goes on its own lines, as the PHQ texts had it.
    assert render_prompt(flow.node("mood"), "en", ctx()) == (
        "1/2. Feeling down\n0 Not at all\n1 Several days\n2 More than half the days\n3 Nearly every day"
    )


def test_render_prompt_voice_is_said_aloud(flow: Flow) -> None:
    assert render_prompt(flow.node("weight"), "en", ctx(channel="voice")) == (
        "Hi Ana. Your weight today? Enter your weight, then press the pound key."
    )
    # "1/2." is "Question 1 of 2." aloud, the menu is a sentence, and no line breaks are left.
    spoken = render_prompt(flow.node("mood"), "es", ctx("es", "voice"))
    assert spoken.startswith("Pregunta 1 de 2. Decaído o decaída. Oprima 0 para Ningún día,")
    assert "\n" not in spoken


def test_spanish_words_the_new_flows_write_without_accents_are_said_with_them() -> None:
    said = spoken_text("En esa caida, ¿se dio un golpe? La Linea Nacional sobre la Violencia Domestica.", "es")
    assert said == "En esa caída, ¿se dio un golpe? La Línea Nacional sobre la Violencia Doméstica."
    assert spoken_text("¿No tenia dinero? Responda asi.", "es") == "¿No tenía dinero? Responda así."


def test_spoken_text_leaves_other_texts_alone() -> None:
    assert spoken_text("Take 1/2 a tablet.", "en") == "Take 1/2 a tablet."
    assert spoken_text("3/9. Trouble sleeping", "en") == "Question 3 of 9. Trouble sleeping"


def test_keypad_matches_what_is_said(flow: Flow) -> None:
    assert keypad(flow.node("breath"), "es") == [("1", "sí"), ("2", "no")]
    assert keypad(flow.node("feeling"), "en") == [("1", "Better"), ("2", "Worse")]
    assert [key for key, _ in keypad(flow.node("mood"), "en")] == ["0", "1", "2", "3"]
    assert [key for key, _ in keypad(flow.node("plain_scale"), "en")] == ["1", "2", "3", "4", "5"]
    assert keypad(flow.node("why"), "en") == []


def test_the_engine_understands_the_keys_it_announces(flow: Flow) -> None:
    for node_id, expected in (("breath", [True, False]), ("feeling", ["better", "worse"]), ("mood", [0, 1, 2, 3])):
        node = flow.node(node_id)
        got = [engine.understand(node, Reply(key, "digits"), "en") for key, _ in keypad(node, "en")]
        assert [u.value if u else None for u in got] == expected


OVERRIDE = SOURCE.replace(
    "    measure: {en: your weight, es: su peso}\n",
    textwrap.indent(
        textwrap.dedent(
            """\
            measure: {en: your weight, es: su peso}
            instructions:
              voice:
                en: "Key in your weight in pounds, then the pound key."
                es: "Marque su peso en libras y luego numeral."
            hint:
              sms: {en: "Please reply with your weight, like 182.", es: "Por favor responda con su peso, como 182."}
              voice: {en: "Please key in your weight, like one eight two.", es: "Marque su peso, como uno ocho dos."}
            """
        ),
        "    ",
    ),
)


def test_an_override_replaces_one_channel_only() -> None:
    flow = compile_flow(OVERRIDE, PATH)
    node = flow.node("weight")
    assert instruction(node, "voice", "en") == "Key in your weight in pounds, then the pound key."
    assert instruction(node, "voice", "es") == "Marque su peso en libras y luego numeral."
    assert instruction(node, "sms", "en") == "Reply with your weight, like 182."


def test_reprompts_are_worded_for_the_channel(flow: Flow) -> None:
    breath = flow.node("breath")
    assert engine.reprompt_text(breath, "en", ctx()) == (
        "Sorry, I didn't understand. Please reply YES or NO.\nMore short of breath? Reply YES or NO."
    )
    voice = engine.reprompt_text(breath, "en", ctx(channel="voice"))
    assert voice == (
        "Sorry, I didn't understand. More short of breath? Press 1 for yes or 2 for no. You can also say yes or no."
    )
    assert "reply" not in voice.lower()
    hinted = compile_flow(OVERRIDE, PATH).node("weight")
    assert engine.reprompt_text(hinted, "en", ctx()) == (
        "Sorry, I didn't understand. Please reply with your weight, like 182."
    )
    assert engine.reprompt_text(hinted, "es", ctx("es", "voice")) == (
        "Disculpe, no le entendimos. Marque su peso, como uno ocho dos."
    )


@pytest.mark.parametrize(
    ("channel", "language", "ending"),
    [
        ("sms", "en", "Reply with your weight, like 182. Reply STOP to end texts."),
        ("sms", "es", "Responda solo con su peso, como 182. Responda PARAR para dejar de recibir mensajes."),
        ("voice", "en", "Enter your weight, then press the pound key. To stop these calls, press 9."),
        ("voice", "es", "Ingrese su peso y luego oprima la tecla numeral. Para no recibir más llamadas, oprima 9."),
    ],
)
def test_the_first_message_carries_the_opt_out_line(flow: Flow, channel: str, language: str, ending: str) -> None:
    step = engine.start(flow, ctx(language, channel), NOW)
    assert step.said()[0].endswith(ending)
    # Only the first message: the next question, a reminder and a re-prompt do not repeat it.
    line = opt_out_line(channel, language)
    after = engine.resume(flow, step.state, ctx(language, channel), Reply("180"), NOW)
    reminder = engine.resume(flow, after.state, ctx(language, channel), Timeout(), NOW)
    again = engine.resume(flow, after.state, ctx(language, channel), Reply("purple"), NOW)
    assert all(line not in text for text in [*after.said(), *reminder.said(), *again.said()])


def test_the_reminder_repeats_the_prompt_for_the_channel(flow: Flow) -> None:
    step = engine.start(flow, ctx(channel="voice"), NOW)
    after = engine.resume(flow, step.state, ctx(channel="voice"), Reply("180"), NOW)
    assert after.said() == ["More short of breath? Press 1 for yes or 2 for no. You can also say yes or no."]
    reminder = engine.resume(flow, after.state, ctx(channel="voice"), Timeout(), NOW)
    assert reminder.said() == [
        "Reminder: More short of breath? Press 1 for yes or 2 for no. You can also say yes or no."
    ]


# ------------------------------------------------------------------------------------------- loader
def test_the_replacements_apply() -> None:
    assert BREATH_TEXT in SOURCE
    assert OVERRIDE != SOURCE


def _error(source: str) -> FlowError:
    with pytest.raises(FlowError) as caught:
        compile_flow(source, PATH)
    return caught.value


def _line(source: str, needle: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), start=1) if needle in line)


BREATH_TEXT = '    text: {en: "More short of breath?", es: "¿Le falta más el aire?"}\n'


@pytest.mark.parametrize(
    ("added", "needle", "reason"),
    [
        ("instructions: {fax: {en: a, es: b}}", "fax", "unknown channel 'fax' (expected sms or voice)"),
        ("instructions: {voice: {en: Press 1.}}", "instructions", "instructions voice: missing 'es' text"),
        ("instructions: {voice: Press 1.}", "instructions", "'voice' must give one text per language"),
        ("instructions: Press 1.", "instructions", "instructions: must be a mapping like {voice: {en, es}"),
        ("instructions: {sms: {en: a, es: b, fr: c}}", "instructions", "language 'fr' is not in languages"),
        ("instructions: {voice: {en: 'Hi {name}', es: b}}", "instructions", "unknown variable {name}"),
        ("hint: {voice: {en: a}}", "hint", "hint voice: missing 'es' text"),
        ("measure: {en: your breath, es: su aire}", "measure", "'measure' is for number questions"),
        ("example: 3", "example", "'example' is for number questions"),
        ("menu: true", "menu", "'menu' is for choice and scale questions"),
    ],
)
def test_bad_instructions_name_the_file_line_and_reason(added: str, needle: str, reason: str) -> None:
    source = SOURCE.replace(BREATH_TEXT, BREATH_TEXT + f"    {added}\n")
    error = _error(source)
    assert error.path == PATH
    assert reason in error.reason
    assert needle in added
    assert error.line == _line(source, BREATH_TEXT.strip()) + 1  # the line that was added


@pytest.mark.parametrize(("example", "reason"), [("eighty", "example must be a number"), ("900", "outside min 50")])
def test_a_bad_example_is_refused(example: str, reason: str) -> None:
    source = SOURCE.replace("example: 182", f"example: {example}")
    error = _error(source)
    assert reason in error.reason
    assert error.line == _line(source, "example:")


# ------------------------------------------------------------------------------------------- linter
def test_a_text_that_still_says_reply_is_an_error_with_its_line() -> None:
    source = SOURCE.replace('"More short of breath?"', '"More short of breath? Reply YES or NO."')
    source = source.replace('"¿Cómo se siente?"', '"¿Cómo se siente? Responda PARAR para salir."')
    problems = instruction_problems(compile_flow(source, PATH), source)
    assert len(problems) == 2
    assert problems[0].startswith(f"{PATH}:{_line(source, 'Reply YES')}: node 'breath' [en]: the text says 'Reply'")
    assert problems[1].startswith(f"{PATH}:{_line(source, 'Responda PARAR')}: node 'feeling' [es]")


def test_text_me_and_stop_in_capitals_are_sms_words_but_content_words_are_not() -> None:
    source = SOURCE.replace('"Why?"', '"Why? Text us the reason."')
    assert len(instruction_problems(compile_flow(source, PATH), source)) == 1
    source = SOURCE.replace('"Why?"', '"Were you told to stop a medicine?"')
    source = source.replace('"¿Por qué?"', '"¿Tiene temblores que no puede parar?"')
    assert instruction_problems(compile_flow(source, PATH), source) == []


def test_an_sms_override_may_say_reply_but_a_voice_one_may_not() -> None:
    sms = SOURCE.replace(
        BREATH_TEXT, BREATH_TEXT + '    instructions: {sms: {en: "Reply Y or N.", es: "Responda S o N."}}\n'
    )
    assert instruction_problems(compile_flow(sms, PATH), sms) == []
    voice = SOURCE.replace(BREATH_TEXT, BREATH_TEXT + '    instructions: {voice: {en: "Reply YES.", es: "Diga SI."}}\n')
    problems = instruction_problems(compile_flow(voice, PATH), voice)
    assert len(problems) == 1
    assert "node 'breath' [en]: the voice rendering says 'Reply'" in problems[0]


def test_lint_renders_both_channels_of_every_shipped_question() -> None:
    library = load_content(CONTENT_DIR)
    report = lint(library)
    assert not [e for e in report.errors if "says" in e]
    for flow in library.flows.values():
        for node in flow.questions():
            for language in flow.languages:
                assert not re.search(r"\b(Reply|Responda)\b", voice_text(flow, node, language))
                assert instruction(node, "sms", language) in sms_text(flow, node, language)
    # The SMS texts patients get are still one GSM-7 text, as before the instructions moved.
    assert all(row.encoding == "GSM-7" for row in report.segments)
    assert max(row.segments for row in report.segments) <= 2


def test_speaking_seconds_counts_words_at_the_language_pace_and_sentence_pauses() -> None:
    # 15 words at 150 words a minute = 6 s, plus 1 sentence end.
    assert speaking_seconds("one two three four five six seven eight nine ten one two three four five.", "en") == (
        pytest.approx(6.4)
    )
    assert speaking_seconds("uno dos tres cuatro cinco seis siete ocho", "es") == pytest.approx(3.0)
    assert speaking_seconds("like 182", "en") == pytest.approx(3 * 60 / 150)


def test_spoken_duration_longest_and_shortest_ways(flow: Flow) -> None:
    source = textwrap.dedent(
        """\
        id: fork
        title: {en: Fork, es: Fork}
        languages: [en, es]
        start: q
        nodes:
          - id: q
            type: question
            answer: yes_no
            text: {en: "Ok?", es: "¿Bien?"}
            next:
              - if: {answer: q, is: yes}
                goto: long
              - goto: done
          - id: long
            type: message
            text: {en: "one two three four five six seven eight nine ten.", es: "uno dos tres."}
            next: done
          - id: done
            type: end
            text: {en: "Bye.", es: "Adios."}
        """
    )
    fork = compile_flow(source, "content/flows/fork.yaml")
    longest, shortest, questions = spoken_duration(fork, "en")
    assert questions == 1
    assert longest - shortest == pytest.approx(
        speaking_seconds("one two three four five six seven eight nine ten.", "en")
    )
    said = voice_text(fork, fork.node("q"), "en")
    assert said == "Ok? Press 1 for yes or 2 for no. You can also say yes or no. To stop these calls, press 9."
    assert shortest == pytest.approx(speaking_seconds(said, "en") + 3.0 + speaking_seconds("Bye.", "en"))


def test_lint_prints_every_flow_and_warns_past_a_minute() -> None:
    library = load_content(CONTENT_DIR)
    report = lint(library)
    flows = {f.id for f in library.flows.values() if not f.internal}
    assert {(row.flow_id, row.language) for row in report.durations} == {
        (f, lang) for f in flows for lang in ("en", "es")
    }
    long_ones = {row.flow_id for row in report.durations if row.longest > MAX_CALL_SECONDS}
    assert "hf-daily-check" in long_ones  # nine questions cannot be said in a minute
    assert "appointment-reminder" not in long_ones
    warned = {w.split(":")[0] for w in report.warnings if "by phone" in w}
    assert warned == {library.flows[f].source_path for f in long_ones}


def test_the_right_now_question_is_worded_for_the_channel() -> None:
    from app.flows.safety import confirm_question, confirm_reprompt

    assert confirm_question(["chest_pain"], "en") == "Do you have chest pain right now? Reply YES or NO."
    assert confirm_question(["chest_pain"], "en", "voice") == (
        "Do you have chest pain right now? Press 1 for yes or 2 for no. You can also say yes or no."
    )
    assert confirm_reprompt(["chest_pain"], "es", "voice").endswith(
        "Oprima 1 para sí o 2 para no. También puede decir sí o no."
    )
