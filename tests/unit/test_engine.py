"""The pure conversation engine (DESIGN §4.3, §4.4, §4.5) on the real HF check-in and a small inline flow."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import textwrap
from collections.abc import Sequence

import pytest

from app import config
from app.content import ContentLibrary, load_content
from app.flows import engine
from app.flows.engine import (
    Completed,
    Escalate,
    FlowRuntimeError,
    LanguageChanged,
    NotUnderstood,
    PastAnswer,
    PatientContext,
    Reply,
    SaveAnswer,
    Say,
    State,
    Step,
    Timeout,
)
from app.flows.loader import FlowError, compile_flow
from app.flows.model import Flow

NOW = dt.datetime(2026, 3, 10, 13, 0, tzinfo=dt.UTC)
PROGRAM = "North Clinic"
LANGS = ["en", "es"]


@functools.cache
def library() -> ContentLibrary:
    return load_content(config.CONTENT_DIR)


def hf() -> Flow:
    return library().flow("hf-daily-check")


def patient(
    language: str = "en",
    history: Sequence[PastAnswer] = (),
    thresholds: dict[str, float] | None = None,
) -> PatientContext:
    return PatientContext(
        first_name="Maria",
        language=language,
        program_name=PROGRAM,
        program_phone="555-0100",
        history=tuple(history),
        thresholds=thresholds or {},
    )


def weighed(value: float, days_ago: float) -> PastAnswer:
    return PastAnswer("weight", value, NOW - dt.timedelta(days=days_ago))


def begin(ctx: PatientContext, flow: Flow | None = None) -> Step:
    return engine.start(flow or hf(), ctx, NOW, library().intents)


def reply(step: Step, ctx: PatientContext, text: str, flow: Flow | None = None, *, at: dt.datetime = NOW) -> Step:
    return engine.resume(flow or hf(), step.state, ctx, Reply(text), at, library().intents)


def timeout(step: Step, ctx: PatientContext, at: dt.datetime, flow: Flow | None = None) -> Step:
    return engine.resume(flow or hf(), step.state, ctx, Timeout(), at, library().intents)


def saved(step: Step) -> list[SaveAnswer]:
    return [e for e in step.events if isinstance(e, SaveAnswer)]


def escalations(step: Step) -> list[Escalate]:
    return [e for e in step.events if isinstance(e, Escalate)]


def says(step: Step, purpose: str | None = None) -> list[str]:
    return [e.text for e in step.events if isinstance(e, Say) and (purpose is None or e.purpose == purpose)]


def completed(step: Step) -> list[Completed]:
    return [e for e in step.events if isinstance(e, Completed)]


# Words that tell which question is being asked, per language.
ASKS = {
    "weight": {"en": "weight today in pounds", "es": "libras"},
    "breath": {"en": "more short of breath than usual", "es": "mayor falta de aire que de costumbre"},
    "breath_rest": {"en": "even when you are resting", "es": "incluso en reposo"},
    "pillows": {"en": "more pillows", "es": "otra almohada"},
    "swelling": {"en": "more swelling", "es": "hinchados"},
    "dizzy": {"en": "dizzy", "es": "mareos"},
    "chest": {"en": "chest pain", "es": "dolor en el pecho"},
    "fainted": {"en": "faint or pass out", "es": "desmayado"},
    "confused": {"en": "confused", "es": "confundido(a)"},
}
YES = {"en": "yes", "es": "sí"}
NO = {"en": "no", "es": "no"}


def answer_no_to_the_rest(step: Step, ctx: PatientContext) -> list[Step]:
    """Answer NO to every question left; the steps taken."""
    steps = []
    while step.state.status == "active":
        step = reply(step, ctx, "no")
        steps.append(step)
    return steps


def fired_in(steps: Sequence[Step]) -> list[Escalate]:
    return [e for s in steps for e in escalations(s)]


# --------------------------------------------------------------------------------------------- start
@pytest.mark.parametrize("lang", LANGS)
def test_start_asks_the_first_question(lang: str) -> None:
    step = begin(patient(lang))
    [prompt] = says(step)
    assert ASKS["weight"][lang] in prompt
    assert PROGRAM in prompt  # the first message names the sender
    assert "Maria" in prompt
    assert ("PARAR" if lang == "es" else "STOP") in prompt  # and says how to stop
    assert step.state.node == "weight"
    assert step.state.status == "active"
    assert step.state.language == lang
    assert step.state.wake_time == NOW + dt.timedelta(hours=4)  # reminder after 4 h


def test_start_in_an_unsupported_language_falls_back_to_english() -> None:
    step = begin(patient("fr"))
    assert step.state.language == "en"
    assert ASKS["weight"]["en"] in says(step)[0]


def test_start_with_a_regional_tag() -> None:
    assert begin(patient("es-MX")).state.language == "es"


# ------------------------------------------------------------------------------------------ answers
@pytest.mark.parametrize("lang", LANGS)
def test_valid_answers_walk_the_flow_to_the_end(lang: str) -> None:
    ctx = patient(lang, history=[weighed(181, 1)])
    step = begin(ctx)
    step = reply(step, ctx, "182")
    assert saved(step) == [SaveAnswer("weight", "number", 182.0, "lb", "182")]
    assert ASKS["breath"][lang] in says(step, "prompt")[0]
    step = reply(step, ctx, NO[lang])
    assert saved(step) == [SaveAnswer("breath", "yes_no", False, None, NO[lang])]
    for question in ("pillows", "swelling", "dizzy", "chest", "fainted", "confused"):
        assert ASKS[question][lang] in says(step, "prompt")[0]
        step = reply(step, ctx, NO[lang].upper())
        assert [(a.question_id, a.value) for a in saved(step)] == [(question, False)]
    assert completed(step) == [Completed("completed")]
    [closing] = says(step, "closing")
    assert ("Gracias" if lang == "es" else "Thank you") in closing
    assert step.state.status == "completed"
    assert step.state.answers == {
        "weight": 182.0,
        **{q: False for q in ("breath", "pillows", "swelling", "dizzy", "chest", "fainted", "confused")},
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [("182.5 lbs", 182.5), ("182,5", 182.5), ("I weigh 183 pounds", 183.0), ("80 kg", 176.4), ("83 kilos", 183.0)],
)
def test_weight_with_units_and_decimals(text: str, value: float) -> None:
    ctx = patient()
    step = reply(begin(ctx), ctx, text)
    [answer] = saved(step)
    assert answer.value == value
    assert answer.unit == "lb"
    assert answer.raw == text


@pytest.mark.parametrize(("text", "value"), [("1", True), ("2", False), ("👍", True), ("SÍ", True), ("Yes!!", True)])
def test_yes_no_answers_in_any_form(text: str, value: bool) -> None:
    ctx = patient()
    step = reply(begin(ctx), ctx, "182")
    step = reply(step, ctx, text)
    assert [a.value for a in saved(step) if a.question_id == "breath"] == [value]


@pytest.mark.parametrize(
    ("lang", "nonsense", "sorry", "hint"),
    [
        ("en", "hello?", "Sorry, I didn't understand.", "Please reply with your weight in pounds, like 182."),
        ("es", "hola", "Disculpe, no le entendimos.", "Por favor responda con su peso en libras, como 182."),
    ],
)
def test_invalid_answer_reprompts_twice_then_is_unanswered(lang: str, nonsense: str, sorry: str, hint: str) -> None:
    ctx = patient(lang)
    step = begin(ctx)
    for attempt in (1, 2):
        step = reply(step, ctx, nonsense)
        assert [e for e in step.events if isinstance(e, NotUnderstood)] == [NotUnderstood("weight")]
        [reprompt] = says(step, "reprompt")
        assert reprompt.startswith(sorry)
        assert hint in reprompt
        assert saved(step) == []
        assert step.state.node == "weight"
        assert step.state.attempts == attempt
    step = reply(step, ctx, nonsense)
    assert NotUnderstood("weight") in step.events
    assert saved(step) == [SaveAnswer("weight", "unanswered", None, None, nonsense)]
    assert says(step, "reprompt") == []
    assert ASKS["breath"][lang] in says(step, "prompt")[0]  # the flow moves on
    assert step.state.node == "breath"
    assert step.state.attempts == 0
    assert step.state.answers == {"weight": None}


@pytest.mark.parametrize("text", ["5000", "5", "0", "49", "701", "-5 lb"])
def test_out_of_range_weight_reprompts(text: str) -> None:
    ctx = patient()
    step = reply(begin(ctx), ctx, text)
    assert NotUnderstood("weight") in step.events
    assert len(says(step, "reprompt")) == 1
    assert saved(step) == []


@pytest.mark.parametrize(("lang", "hint"), [("en", "Please reply YES or NO."), ("es", "Por favor responda SI o NO.")])
def test_yes_no_reprompt_has_the_default_hint_and_the_question(lang: str, hint: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx), ctx, "182")
    step = reply(step, ctx, "maybe")
    [reprompt] = says(step, "reprompt")
    assert hint in reprompt
    assert ASKS["breath"][lang] in reprompt


def test_a_valid_answer_resets_the_attempt_count() -> None:
    ctx = patient()
    step = begin(ctx)
    step = reply(step, ctx, "??")
    step = reply(step, ctx, "??")
    step = reply(step, ctx, "182")
    assert step.state.attempts == 0
    step = reply(step, ctx, "??")
    assert step.state.attempts == 1
    assert len(says(step, "reprompt")) == 1


# -------------------------------------------------------------------------------------------- rules
RULES: list[tuple[str, list[PastAnswer], dict[str, float] | None, str, list[str]]] = [
    ("up 3 lb overnight", [weighed(180, 1)], None, "183", ["weight-gain-1-day"]),
    ("up 4 lb overnight", [weighed(179, 1)], None, "183 lbs", ["weight-gain-1-day"]),
    ("up 2 lb overnight", [weighed(180, 1)], None, "182", []),
    ("up 2.9 lb overnight", [weighed(180, 1)], None, "182.9", []),
    ("up 5 lb over 7 days", [weighed(178, 6), weighed(181, 1)], None, "183", ["weight-gain-7-days"]),
    ("up 4 lb over 7 days", [weighed(179, 6), weighed(181, 1)], None, "183", []),
    ("up 5 lb, but 10 days ago", [weighed(178, 10)], None, "183", []),
    ("down 2 lb overnight", [weighed(185, 1)], None, "183", []),
    ("down 3 lb overnight", [weighed(186, 1)], None, "183", ["weight-loss-1-day"]),
    ("no history", [], None, "250", []),
    (
        "care plan lowers the 1-day threshold",
        [weighed(180, 1)],
        {"weight_gain_1_day_lb": 2},
        "182",
        ["weight-gain-1-day"],
    ),
    ("care plan raises the 1-day threshold", [weighed(180, 1)], {"weight_gain_1_day_lb": 5}, "183", []),
    (
        "care plan lowers the 7-day threshold",
        [weighed(179, 6)],
        {"weight_gain_7_days_lb": 4},
        "183",
        ["weight-gain-7-days"],
    ),
]


@pytest.mark.parametrize(("case", "history", "thresholds", "text", "fired"), RULES, ids=[r[0] for r in RULES])
def test_weight_rules(
    case: str, history: list[PastAnswer], thresholds: dict[str, float] | None, text: str, fired: list[str]
) -> None:
    ctx = patient(history=history, thresholds=thresholds)
    step = reply(begin(ctx), ctx, text)
    # A weight sign is escalated at the weight answer, not at the end of the check-in.
    assert [e.rule_id for e in escalations(step)] == fired
    for event in escalations(step):
        loss = event.rule_id.startswith("weight-loss")
        assert (event.level, event.reason) == (("ROUTINE", "weight_loss") if loss else ("URGENT", "weight_gain"))
    assert step.state.status == "active"
    assert ASKS["breath"]["en"] in says(step, "prompt")[0]
    assert fired_in(answer_no_to_the_rest(step, ctx)) == []


@pytest.mark.parametrize(("lang", "told"), [("en", "nurse will call you today"), ("es", "le va a llamar hoy")])
def test_weight_gain_tells_the_patient_in_their_language(lang: str, told: str) -> None:
    ctx = patient(lang, history=[weighed(180, 1)])
    step = reply(begin(ctx), ctx, "184")
    [event] = escalations(step)
    assert event.detail["weight"] == 184.0
    assert event.detail["weight_baseline"] == 180.0
    [text] = says(step, "escalation")
    assert told in text
    assert "911" in text
    assert step.said().index(text) < step.said().index(says(step, "prompt")[0])  # before the next question
    rest = answer_no_to_the_rest(step, ctx)
    assert [t for s in rest for t in says(s, "escalation")] == []  # told once


def test_two_weight_rules_make_one_escalation_and_tell_the_patient_once() -> None:
    ctx = patient(history=[weighed(177, 6), weighed(180, 1)])
    step = reply(begin(ctx), ctx, "183")
    one_day, seven_days = escalations(step)
    assert (one_day.rule_id, seven_days.rule_id) == ("weight-gain-1-day", "weight-gain-7-days")
    assert one_day.reason == seven_days.reason == "weight_gain"  # the service joins them: one task
    assert seven_days.detail["sign_rules"] == ["weight-gain-1-day", "weight-gain-7-days"]
    assert (seven_days.detail["signs"], seven_days.detail["sign_count"]) == (["weight_gain"], 1)
    assert len(says(step, "escalation")) == 1
    assert fired_in(answer_no_to_the_rest(step, ctx)) == []


@pytest.mark.parametrize("lang", LANGS)
def test_several_hf_signs_make_one_urgent_escalation_that_counts_them_and_one_text(lang: str) -> None:
    ctx = patient(lang, history=[weighed(179, 1)])
    step = reply(begin(ctx), ctx, "183")
    steps = [step]
    for question in ("breath", "breath_rest", "pillows", "swelling", "dizzy", "chest", "fainted", "confused"):
        assert ASKS[question][lang] in says(steps[-1], "prompt")[0]
        steps.append(reply(steps[-1], ctx, YES[lang] if question in {"breath", "swelling", "dizzy"} else NO[lang]))
    # Each sign fires at its own answer (weight, breath, swelling, dizzy), all under the first one's reason.
    per_step = [[e.rule_id for e in escalations(s)] for s in steps]
    assert per_step == [
        ["weight-gain-1-day"],
        ["more-short-of-breath"],
        [],
        [],
        ["more-swelling"],
        ["dizziness"],
        [],
        [],
        [],
    ]
    events = fired_in(steps)
    assert {(e.level, e.reason) for e in events} == {("URGENT", "weight_gain")}
    assert [e.detail["sign_count"] for e in events] == [1, 2, 3, 4]
    assert events[-1].detail["signs"] == ["weight_gain", "shortness_of_breath", "swelling", "dizziness"]
    texts = [t for s in steps for t in says(s, "escalation")]
    assert len(texts) == 1
    assert texts[0] in steps[0].said()  # the weight's words, at the weight answer


@pytest.mark.parametrize(
    ("lang", "urgent_text", "emergency_text"),
    [
        ("en", "will call you today", "Call 911 now"),
        ("es", "le va a llamar hoy", "Llame al 911 ahora"),
    ],
)
def test_breathless_at_rest_is_an_emergency_and_ends_the_check_in(
    lang: str, urgent_text: str, emergency_text: str
) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx), ctx, "180")
    step = reply(step, ctx, YES[lang])
    [urgent] = escalations(step)  # the URGENT sign goes at once, told with a nurse's call
    assert (urgent.level, urgent.reason) == ("URGENT", "shortness_of_breath")
    assert urgent_text in says(step, "escalation")[0]
    assert ASKS["breath_rest"][lang] in says(step, "prompt")[0]
    step = reply(step, ctx, YES[lang])
    [event] = escalations(step)
    assert (event.level, event.reason) == ("EMERGENCY", "breathless_at_rest")  # its own task
    assert event.detail["signs"] == ["shortness_of_breath", "breathless_at_rest"]
    [told] = says(step, "emergency")
    assert emergency_text in told
    assert urgent_text not in " ".join(step.said())
    assert completed(step) == [Completed("escalated")]
    assert says(step, "prompt") == []  # no more questions
    assert step.state.status == "completed"
    assert step.state.wake_at is None


def test_breathless_but_not_at_rest_goes_on_to_pillows() -> None:
    ctx = patient()
    step = reply(begin(ctx), ctx, "180")
    step = reply(step, ctx, "yes")
    step = reply(step, ctx, "no")
    assert escalations(step) == []
    assert ASKS["pillows"]["en"] in says(step, "prompt")[0]


def test_each_rule_fires_once_per_conversation() -> None:
    ctx = patient()
    step = reply(begin(ctx), ctx, "180")
    step = reply(step, ctx, "yes")  # more short of breath → URGENT
    step = reply(step, ctx, "no")
    step = reply(step, ctx, "no")
    step = reply(step, ctx, "yes")  # more swelling → URGENT (another reason), joined to the first
    assert step.state.fired == ("more-short-of-breath", "more-swelling")
    [swelling] = escalations(step)
    assert swelling.detail["signs"] == ["shortness_of_breath", "swelling"]
    rest = answer_no_to_the_rest(step, ctx)
    assert fired_in(rest) == []
    assert rest[-1].state.fired == ("more-short-of-breath", "more-swelling")


# ---------------------------------------------------------------------------------------- red flags
RED_FLAGS: list[tuple[str, str, bool, tuple[str, ...]]] = [
    # (patient language, text, crisis line, must be said). Reasons are whatever the triage component names.
    ("en", "I have chest pain", False, ("Call 911 now",)),
    ("es", "me duele el pecho", False, ("Llame al 911 ahora",)),
    ("es", "chest pain", False, ("Llame al 911 ahora",)),  # told in the patient's language
    ("en", "I can't breathe", False, ("Call 911 now",)),
    ("es", "no puedo respirar", False, ("Llame al 911 ahora",)),
    ("en", "I want to kill myself", True, ("call or text 988", "911")),
    ("es", "quiero morir", True, ("988", "oprima 2", "AYUDA", "911")),
    # a threat to kill from another person: 911 and the Domestic Violence Hotline, never 988
    ("en", "my husband says he will kill me", False, ("Call 911 now", "1-800-799-7233", "START to 88788")),
    ("es", "mi pareja me amenazó con matarme", False, ("Llame al 911 ahora", "1-800-799-7233", "88788")),
]


@pytest.mark.parametrize(("lang", "text", "crisis", "told"), RED_FLAGS)
@pytest.mark.parametrize("answered_first", [0, 1])
def test_red_flag_mid_flow(lang: str, text: str, crisis: bool, told: tuple[str, ...], answered_first: int) -> None:
    ctx = patient(lang)
    step = begin(ctx)
    if answered_first:
        step = reply(step, ctx, "182")
    waiting_on = step.state.node
    step = reply(step, ctx, text)
    [event] = escalations(step)
    assert event.level == "EMERGENCY"
    assert (event.reason,) == library().triage.assess(text, lang).emergency
    assert event.rule_id == f"red-flag:{event.reason}"
    assert event.crisis_line is crisis
    assert event.detail["question"] == waiting_on
    [said] = says(step, "emergency")
    for fragment in told:
        assert fragment in said
    if crisis:
        assert "988" in said
    else:
        assert "988" not in said
    assert saved(step) == []  # not read as an answer
    assert completed(step) == [Completed("red_flag")]
    assert step.state.status == "completed"


def test_red_flag_wins_over_a_valid_number() -> None:
    ctx = patient()
    step = reply(begin(ctx), ctx, "183 and chest pain")
    assert [e.reason for e in escalations(step)] == ["chest_pain"]
    assert saved(step) == []


def test_denied_red_flag_is_an_ordinary_answer() -> None:
    ctx = patient()
    step = reply(begin(ctx), ctx, "182")
    step = reply(step, ctx, "no chest pain")
    assert escalations(step) == []
    assert [a.value for a in saved(step)] == [False]


# ---------------------------------------------------------------------------------- language switch
@pytest.mark.parametrize("word", ["ESPAÑOL", "espanol", "Spanish"])
def test_language_switch_reasks_the_current_question_in_spanish(word: str) -> None:
    ctx = patient("en")
    step = begin(ctx)
    step = reply(step, ctx, "??")  # one failed attempt first
    step = reply(step, ctx, word)
    assert LanguageChanged("es") in step.events
    [prompt] = says(step)
    assert ASKS["weight"]["es"] in prompt
    assert "pounds" not in prompt
    assert "Maria" in prompt
    assert saved(step) == []
    assert step.state.language == "es"
    assert step.state.node == "weight"
    assert step.state.attempts == 0
    step = reply(step, ctx, "182")
    assert ASKS["breath"]["es"] in says(step, "prompt")[0]


def test_language_switch_back_to_english_mid_flow() -> None:
    ctx = patient("es")
    step = reply(begin(ctx), ctx, "182")
    step = reply(step, ctx, "English")
    assert LanguageChanged("en") in step.events
    assert ASKS["breath"]["en"] in says(step)[0]
    assert step.state.node == "breath"


# ----------------------------------------------------------------------------------------- timeouts
@pytest.mark.parametrize(("lang", "prefix"), [("en", "Reminder:"), ("es", "Recordatorio:")])
def test_timeout_reminds_once_then_expires(lang: str, prefix: str) -> None:
    ctx = patient(lang)
    step = begin(ctx)
    step = timeout(step, ctx, NOW + dt.timedelta(hours=4))
    [reminder] = says(step, "reminder")
    assert reminder.startswith(prefix)
    assert ASKS["weight"][lang] in reminder
    assert step.state.status == "active"
    assert step.state.reminded is True
    assert step.state.wake_time == NOW + dt.timedelta(hours=24)  # expiry 24 h after the start
    step = timeout(step, ctx, NOW + dt.timedelta(hours=24))
    assert completed(step) == [Completed("no_response")]
    assert says(step) == []
    assert step.state.status == "expired"
    assert step.state.result == "no_response"
    assert step.state.wake_at is None


def test_a_reply_after_the_reminder_is_still_an_answer() -> None:
    ctx = patient()
    step = timeout(begin(ctx), ctx, NOW + dt.timedelta(hours=4))
    step = reply(step, ctx, "182", at=NOW + dt.timedelta(hours=5))
    assert [a.value for a in saved(step)] == [182.0]
    assert step.state.reminded is False  # the next question gets its own reminder


# ------------------------------------------------------------------------------------ state & pinning
def test_state_round_trips_through_a_dict_and_json() -> None:
    ctx = patient("es", history=[weighed(180, 1)])
    step = begin(ctx)
    step = reply(step, ctx, "183")  # fires a rule
    step = reply(step, ctx, "??")  # one failed attempt
    state = step.state
    assert state.fired and state.attempts == 1
    assert State.from_dict(state.to_dict()) == state
    assert State.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert [f["rule_id"] for f in state.group_fires] == ["weight-gain-1-day"]  # a later sign joins it
    resumed = engine.resume(hf(), State.from_dict(state.to_dict()), ctx, Reply("no"), NOW, library().intents)
    assert ASKS["pillows"]["es"] in says(resumed, "prompt")[0]


def test_state_pinned_to_another_version_is_refused() -> None:
    ctx = patient()
    step = begin(ctx)
    source = library().flow_sources["hf-daily-check"]
    edited = compile_flow(source + "\n# edited\n", "content/flows/hf-daily-check.yaml")
    assert edited.version != hf().version
    with pytest.raises(FlowRuntimeError):
        engine.resume(edited, step.state, ctx, Reply("182"), NOW, library().intents)
    with pytest.raises(FlowRuntimeError):
        engine.resume(hf(), dataclasses.replace(step.state, flow_version="000000000000"), ctx, Reply("182"), NOW)


@pytest.mark.parametrize("given", [Reply("182"), Reply("yes"), Reply("chest pain"), Timeout()])
def test_reply_to_a_finished_conversation_is_not_understood(given: Reply | Timeout) -> None:
    ctx = patient()
    step = begin(ctx)
    step = reply(step, ctx, "182")
    step = answer_no_to_the_rest(step, ctx)[-1]
    assert step.state.status == "completed"
    after = engine.resume(hf(), step.state, ctx, given, NOW, library().intents)
    assert after.events == (NotUnderstood(None),)
    assert after.state == step.state


def test_reply_to_an_expired_conversation_is_not_understood() -> None:
    ctx = patient()
    step = timeout(timeout(begin(ctx), ctx, NOW), ctx, NOW)
    assert step.state.status == "expired"
    after = reply(step, ctx, "182")
    assert after.events == (NotUnderstood(None),)


# -------------------------------------------------------------------------------------- inline flow
DEMO = textwrap.dedent(
    """\
    id: demo
    title: {en: Demo, es: Demo}
    languages: [en, es]
    start: feel
    nodes:
      - id: feel
        type: question
        answer: choice
        text: {en: "How do you feel? 1 Better 2 Same 3 Worse", es: "¿Como se siente? 1 Mejor 2 Igual 3 Peor"}
        choices:
          - {id: better, label: {en: Better, es: Mejor}}
          - {id: same, label: {en: Same, es: Igual}, words: {en: [no change], es: [lo mismo]}}
          - {id: worse, label: {en: Worse, es: Peor}}
        next:
          - if: {answer: feel, is: worse}
            goto: sorry
          - goto: mood
      - id: sorry
        type: message
        text: {en: "Sorry to hear that.", es: "Lamentamos oir eso."}
        next: mood
      - id: mood
        type: question
        answer: scale
        min: 0
        max: 3
        text: {en: "Mood from 0 to 3?", es: "¿Animo del 0 al 3?"}
        on_unanswered: done
        next: note
      - id: note
        type: question
        answer: text
        text: {en: "Anything else?", es: "¿Algo mas?"}
        next: done
      - id: done
        type: end
        text: {en: "Bye {first_name}.", es: "Adios {first_name}."}
    rules:
      - id: low-mood
        level: ROUTINE
        reason: low_mood
        when: {answer: mood, at_least: 3}
    """
)


@functools.cache
def demo() -> Flow:
    return compile_flow(DEMO, "content/flows/demo.yaml")


@pytest.mark.parametrize(
    ("lang", "text", "choice"),
    [
        ("en", "1", "better"),
        ("en", "3", "worse"),
        ("en", "Same", "same"),
        ("en", "no change", "same"),
        ("es", "peor", "worse"),
        ("es", "lo mismo", "same"),
        ("en", "lo mismo", "same"),  # extra words count in every language
        ("es", "no change", "same"),
    ],
)
def test_choice_by_number_or_word(lang: str, text: str, choice: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx, demo()), ctx, text, demo())
    assert [(a.question_id, a.kind, a.value) for a in saved(step)] == [("feel", "choice", choice)]
    assert step.state.node == "mood"


@pytest.mark.parametrize(("lang", "text", "choice"), [("en", "peor", "worse"), ("es", "better", "better")])
def test_choice_label_in_the_other_language(lang: str, text: str, choice: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx, demo()), ctx, text, demo())
    assert [(a.question_id, a.value) for a in saved(step)] == [("feel", choice)]


@pytest.mark.parametrize(("lang", "sorry"), [("en", "Sorry to hear that."), ("es", "Lamentamos oir eso.")])
def test_branch_on_a_choice_says_a_message_then_asks(lang: str, sorry: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx, demo()), ctx, "3", demo())
    assert says(step, "info") == [sorry]
    assert len(says(step, "prompt")) == 1


@pytest.mark.parametrize(
    ("lang", "hint"),
    [("en", "Please reply with the number of your answer."), ("es", "Por favor responda solo con la cifra")],
)
def test_choice_reprompt(lang: str, hint: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx, demo()), ctx, "7", demo())
    assert hint in says(step, "reprompt")[0]


@pytest.mark.parametrize(
    ("lang", "told"),
    [("en", "will contact you within one business day"), ("es", "en la siguiente jornada laboral")],
)
def test_scale_and_routine_rule(lang: str, told: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx, demo()), ctx, "1", demo())
    step = reply(step, ctx, "3", demo())
    assert [(a.question_id, a.value) for a in saved(step)] == [("mood", 3.0)]
    assert [(e.level, e.reason) for e in escalations(step)] == [("ROUTINE", "low_mood")]
    escalation_texts = says(step, "escalation")
    assert len(escalation_texts) == 1
    assert PROGRAM in escalation_texts[0]
    assert told in escalation_texts[0]


@pytest.mark.parametrize(("lang", "hint"), [("en", "from 0 to 3"), ("es", "del 0 al 3")])
def test_scale_out_of_range_reprompts_with_the_range(lang: str, hint: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx, demo()), ctx, "1", demo())
    step = reply(step, ctx, "4", demo())
    assert hint in says(step, "reprompt")[0]


def test_on_unanswered_jumps_where_the_flow_says() -> None:
    ctx = patient()
    step = reply(begin(ctx, demo()), ctx, "1", demo())
    for _ in range(3):
        step = reply(step, ctx, "lots", demo())
    assert saved(step) == [SaveAnswer("mood", "unanswered", None, None, "lots")]
    assert completed(step) == [Completed("completed")]  # skipped the 'note' question
    assert says(step, "closing") == ["Bye Maria."]


def test_free_text_answer_is_kept_whole_up_to_1600_characters() -> None:
    ctx = patient()
    step = reply(begin(ctx, demo()), ctx, "1", demo())
    step = reply(step, ctx, "0", demo())
    body = "Me siento bien 😊 " * 200
    step = reply(step, ctx, body, demo())
    [answer] = saved(step)
    assert answer.kind == "text"
    assert answer.value == body.strip()[:1600]
    assert len(str(answer.value)) == 1600
    assert answer.raw == body


def test_blank_free_text_is_reprompted() -> None:
    ctx = patient()
    step = reply(begin(ctx, demo()), ctx, "1", demo())
    step = reply(step, ctx, "0", demo())
    step = reply(step, ctx, "   ", demo())
    assert NotUnderstood("note") in step.events
    assert "Please reply with a short message." in says(step, "reprompt")[0]


@pytest.mark.parametrize("text", ["፩", "1" * 5000])
def test_choice_reply_with_unreadable_digits_is_reprompted(text: str) -> None:
    ctx = patient()
    step = reply(begin(ctx, demo()), ctx, text, demo())
    assert NotUnderstood("feel") in step.events


SCALE_WITH_WORDS = """
id: mood
title: {en: Mood, es: Animo}
languages: [en, es]
start: q
nodes:
  - id: q
    type: question
    answer: scale
    min: 0
    max: 3
    text: {en: "0-3?", es: "0-3?"}
    choices:
      - {id: none, value: 0, label: {en: "Not at all", es: "Ningun dia"}}
      - {id: some, value: 1, label: {en: "Several days", es: "Varios dias"}, words: {en: [sometimes], es: [a veces]}}
    next: end
  - id: end
    type: end
"""


@pytest.mark.parametrize(
    ("reply", "saved"),
    [
        ("2", 2.0),
        ("several days", 1.0),
        ("Varios días", 1.0),
        ("a veces", 1.0),
        ("not at all", 0.0),
        ("4", None),
        ("maybe", None),
        ("several days or not at all", None),
    ],
)
def test_scale_answers_in_words_or_numbers(reply: str, saved: float | None) -> None:
    flow = compile_flow(SCALE_WITH_WORDS, "content/flows/mood.yaml")
    ctx = engine.PatientContext("Ana", "en", "North Clinic", "555-0100")
    step = engine.start(flow, ctx, NOW)
    step = engine.resume(flow, step.state, ctx, engine.Reply(reply), NOW)
    answers = [e.value for e in step.events if isinstance(e, engine.SaveAnswer)]
    assert answers == ([saved] if saved is not None else [])


def test_a_scale_word_needs_a_value_on_the_scale() -> None:
    broken = SCALE_WITH_WORDS.replace("{id: none, value: 0,", "{id: none, value: 7,")
    with pytest.raises(FlowError) as caught:
        compile_flow(broken, "content/flows/mood.yaml")
    assert "needs a value from 0 to 3" in caught.value.reason


@pytest.mark.parametrize(
    ("lang", "text", "question"),
    [
        ("en", "my husband hits me", "Are you in danger right now?"),
        ("es", "mi esposo me pega y tengo miedo", "¿Está en peligro ahora mismo?"),
    ],
)
def test_violence_asks_if_in_danger_and_never_repeats_what_was_written(lang: str, text: str, question: str) -> None:
    ctx = patient(lang)
    step = reply(begin(ctx), ctx, text)
    assert [(e.level, e.reason) for e in escalations(step)] == [("URGENT", "interpersonal_violence")]
    said = " ".join(e.text for e in step.events if isinstance(e, Say))
    assert question in said
    assert "husband" not in said and "esposo" not in said
    no = reply(step, ctx, "no")
    told = " ".join(e.text for e in no.events if isinstance(e, Say))
    assert "1-800-799-7233" in told and "911" in told and "988" not in told
