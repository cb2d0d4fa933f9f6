"""The one inbound decision (app/flows/routing.py) and the engine's "right now?" sub-state, with a stub
triage so each rule is tested on its own (the real lexicon is tested in the transcripts and the SMS suite)."""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass, field

import pytest

from app.flows import engine
from app.flows.engine import Completed, Escalate, OptOutRequested, PatientContext, Reply, SaveAnswer, Say, State
from app.flows.intents import GlobalIntents, OptOutPhrases
from app.flows.keywords import Keyword
from app.flows.loader import compile_flow
from app.flows.model import Flow
from app.flows.routing import ActiveFlow, outside_plan, play, route
from app.triage.verdict import Finding, Verdict

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)

FLOW = compile_flow(
    textwrap.dedent(
        """\
        id: unit-routing
        title: {en: Routing, es: Ruteo}
        description: one yes/no, one choice whose words are keywords, one number
        sources: [test]
        reviewed: {by: pending clinical review, on: 2026-11-26}
        languages: [en, es]
        start: better
        nodes:
          - id: better
            type: question
            answer: yes_no
            text: {en: "Feeling better?", es: "¿Se siente mejor?"}
            next: level
          - id: level
            type: question
            answer: choice
            text: {en: "High or low?", es: "¿Alto o bajo?"}
            choices:
              - id: high
                label: {en: High, es: Alto}
              - id: low
                label: {en: Low, es: Baja}
            next: weight
          - id: weight
            type: question
            answer: number
            unit: lb
            min: 50
            max: 700
            text: {en: "Weight?", es: "¿Peso?"}
            next: done
          - id: done
            type: end
            text: {en: "Thanks.", es: "Gracias."}
        """
    ),
    "content/flows/unit-routing.yaml",
)


@dataclass
class StubTriage:
    """Findings by exact message text."""

    table: dict[str, tuple[Finding, ...]] = field(default_factory=dict)

    def assess(self, text: str, language: str | None) -> Verdict:
        return Verdict(self.table.get(text.strip().lower(), ()))


CHEST_NOW = Finding("chest_pain", "current", evidence="chest hurts")
CHEST_GONE = Finding("chest_pain", "confirm", evidence="chest pain is gone")
SUICIDE_NOW = Finding("suicide", "current", crisis_line=True, evidence="want to die")
OVERDOSE_NOW = Finding("overdose", "current", poison_control=True, evidence="too many pills")
SWELLING = Finding("swelling", "symptom", evidence="swollen")

TRIAGE = StubTriage(
    {
        "my chest hurts": (CHEST_NOW,),
        "no my chest hurts": (CHEST_NOW,),
        "no i want to die": (SUICIDE_NOW,),
        "i want to die, my chest hurts": (SUICIDE_NOW, CHEST_NOW),
        "i took too many pills to end it": (OVERDOSE_NOW, SUICIDE_NOW),
        "the chest pain is gone": (CHEST_GONE,),
        "my ankles are swollen": (SWELLING,),
    }
)
INTENTS = GlobalIntents(
    triage=TRIAGE,
    opt_out=OptOutPhrases(phrases=(("stop", "text*"),), words=frozenset({"stop"}), fillers=frozenset({"thanks"})),
)


def ctx(language: str = "en") -> PatientContext:
    return PatientContext(first_name="Ana", language=language, program_name="North Clinic", program_phone="555-0100")


def at(node: str, language: str = "en") -> State:
    """The conversation waiting on ``node``."""
    step = engine.start(FLOW, ctx(language), NOW, INTENTS)
    return engine.State.from_dict({**step.state.to_dict(), "node": node})


def resume(state: State, text: str, language: str = "en") -> engine.Step:
    return engine.resume(FLOW, state, ctx(language), Reply(text), NOW, INTENTS)


def escalations(step: engine.Step) -> list[tuple[str, str, str]]:
    return [(e.rule_id, e.level, e.reason) for e in step.events if isinstance(e, Escalate)]


# ------------------------------------------------------------------------------------------- route()
@pytest.mark.parametrize(
    ("text", "node", "kind", "keyword"),
    [
        # Twilio-enforced words are keywords whatever the question.
        ("STOP", "better", "keyword", Keyword.STOP),
        ("cancel", "level", "keyword", Keyword.STOP),
        ("START", "better", "keyword", Keyword.START),
        # Ours give way to an answer the pending question understands ...
        ("Alto", "level", "conversation", None),
        ("baja", "level", "conversation", None),
        # ... and stay keywords where it does not.
        ("Alto", "weight", "keyword", Keyword.STOP),
        ("Alto", "better", "keyword", Keyword.STOP),
        ("HELP", "weight", "keyword", Keyword.HELP),
        ("ayuda", "better", "keyword", Keyword.HELP),
        # Not keywords.
        ("183", "weight", "conversation", None),
        ("please stop texting me", "weight", "conversation", None),
    ],
)
def test_route_in_a_conversation(text: str, node: str, kind: str, keyword: Keyword | None) -> None:
    decided = route(text, intents=INTENTS, language="es", conversation=ActiveFlow(FLOW, at(node, "es")))
    assert decided.kind == kind
    assert (decided.keyword.keyword if decided.keyword else None) == keyword


@pytest.mark.parametrize(
    ("text", "opted_out", "kind", "keyword"),
    [
        ("Alto", False, "keyword", Keyword.STOP),  # no conversation: still an opt-out
        ("HELP", False, "keyword", Keyword.HELP),
        ("yes", False, "outside", None),  # YES opts in only while opted out
        ("yes", True, "keyword", Keyword.START),
        ("I want to die", True, "outside", None),  # opted out: triage still runs
        ("my ankles are swollen", False, "outside", None),
    ],
)
def test_route_without_a_conversation(text: str, opted_out: bool, kind: str, keyword: Keyword | None) -> None:
    decided = route(text, intents=INTENTS, language="en", opted_out=opted_out)
    assert decided.kind == kind
    assert (decided.keyword.keyword if decided.keyword else None) == keyword


def test_an_opted_out_patient_is_never_routed_into_a_conversation() -> None:
    decided = route("Alto", intents=INTENTS, language="es", opted_out=True, conversation=ActiveFlow(FLOW, at("level")))
    assert decided.kind == "keyword"


def test_route_outside_carries_the_verdict_and_the_opt_out_sentence() -> None:
    decided = route("please stop texting me", intents=INTENTS, language="en")
    assert (decided.kind, decided.opt_out_request, decided.verdict.level) == ("outside", True, None)
    decided = route("i want to die, my chest hurts", intents=INTENTS, language="en")
    assert decided.verdict.emergency == ("suicide", "chest_pain")


# -------------------------------------------------------------------------------------- outside_plan()
def plan_for(text: str, *, reachable: bool = True, notice_due: bool = True, language: str = "en") -> object:
    decided = route(text, intents=INTENTS, language=language)
    return outside_plan(decided, ctx(language), reachable=reachable, notice_due=notice_due)


def test_outside_emergency_fires_every_reason_in_one_text_and_no_notice() -> None:
    decided = route("i want to die, my chest hurts", intents=INTENTS, language="es")
    plan = outside_plan(decided, ctx("es"), reachable=True, notice_due=True)
    assert [(e.rule_id, e.level) for e in plan.events if isinstance(e, Escalate)] == [
        ("red-flag:suicide", "EMERGENCY"),
        ("red-flag:chest_pain", "EMERGENCY"),
    ]
    [text] = plan.said()
    for fragment in ("911", "988", "oprima 2", "AYUDA"):
        assert fragment in text
    assert plan.notice is False and plan.emergency is True
    assert plan.flags == ("red_flag:suicide", "red_flag:chest_pain")


def test_outside_confirm_asks_through_the_right_now_flow_or_opens_urgent_when_it_cannot_text() -> None:
    decided = route("the chest pain is gone", intents=INTENTS, language="en")
    plan = outside_plan(decided, ctx(), reachable=True, notice_due=True)
    assert plan.confirm == (CHEST_GONE,) and plan.events == () and plan.notice is False
    plan = outside_plan(decided, ctx(), reachable=False, notice_due=True)
    assert plan.confirm == ()
    assert [(e.rule_id, e.level) for e in plan.events if isinstance(e, Escalate)] == [("confirm:chest_pain", "URGENT")]
    assert plan.said() == []


def test_outside_symptoms_open_one_urgent_and_get_the_notice_when_due() -> None:
    decided = route("my ankles are swollen", intents=INTENTS, language="en")
    plan = outside_plan(decided, ctx(), reachable=True, notice_due=True)
    assert [(e.rule_id, e.level, e.reason) for e in plan.events if isinstance(e, Escalate)] == [
        ("symptoms_reported", "URGENT", "symptoms_reported")
    ]
    assert plan.notice is True
    assert "nurse" in plan.said()[0] and "not watched all the time" in plan.said()[-1]
    plan = outside_plan(decided, ctx(), reachable=True, notice_due=False)
    assert plan.notice is False and not any("not watched" in s for s in plan.said())


@pytest.mark.parametrize(("notice_due", "said"), [(True, 1), (False, 0)])
def test_outside_plain_text_gets_only_the_daily_notice(notice_due: bool, said: int) -> None:
    decided = route("ok thanks", intents=INTENTS, language="en")
    plan = outside_plan(decided, ctx(), reachable=True, notice_due=notice_due)
    assert len(plan.said()) == said and plan.flags == ()
    assert not any(isinstance(e, Escalate) for e in plan.events)


def test_outside_opt_out_sentence_gets_one_line_and_a_flag() -> None:
    decided = route("please stop texting me", intents=INTENTS, language="es")
    plan = outside_plan(decided, ctx("es"), reachable=True, notice_due=True)
    assert plan.said() == ["Responda PARAR para dejar de recibir todos los mensajes."]
    assert plan.flags == ("opt_out_request",)


def test_outside_nothing_is_said_to_a_patient_who_cannot_be_texted() -> None:
    decided = route("i want to die, my chest hurts", intents=INTENTS, language="en")
    plan = outside_plan(decided, ctx(), reachable=False, notice_due=True)
    assert plan.said() == [] and len([e for e in plan.events if isinstance(e, Escalate)]) == 2


# ----------------------------------------------------------------------- the engine: global intents
@pytest.mark.parametrize("text", ["No I want to die", "No my chest hurts"])
def test_a_red_flag_behind_no_at_a_yes_no_question_is_never_saved_as_no(text: str) -> None:
    step = resume(at("better"), text)
    assert [e for e in step.events if isinstance(e, SaveAnswer)] == []
    [(rule, level, _reason)] = escalations(step)
    assert level == "EMERGENCY" and rule.startswith("red-flag:")
    assert step.state.result == "red_flag"


def test_every_emergency_reason_fires_with_one_text_saying_911_988_and_poison_control() -> None:
    step = resume(at("weight"), "I took too many pills to end it")
    assert escalations(step) == [
        ("red-flag:overdose", "EMERGENCY", "overdose"),
        ("red-flag:suicide", "EMERGENCY", "suicide"),
    ]
    [text] = [e.text for e in step.events if isinstance(e, Say)]
    assert "911" in text and "988" in text and "1-800-222-1222" in text
    assert [e.detail["question"] for e in step.events if isinstance(e, Escalate)] == ["weight", "weight"]


def test_crisis_only_leads_with_988_and_still_says_911() -> None:
    step = resume(at("weight", "es"), "no I want to die", "es")
    [text] = [e.text for e in step.events if isinstance(e, Say)]
    assert text.startswith("Por favor llame al 988 (oprima 2 para español) o envíe AYUDA")
    assert "911" in text


def test_an_opt_out_sentence_mid_flow_is_one_line_and_not_an_attempt() -> None:
    state = engine.State.from_dict({**at("weight").to_dict(), "attempts": 2})
    step = resume(state, "please stop texting me")
    assert [type(e) for e in step.events] == [OptOutRequested, Say]
    assert step.said() == ["Reply STOP to stop all texts."]
    assert step.state == state  # attempts unchanged, still waiting on the same question


# ------------------------------------------------------------------- the engine: "right now?" sub-state
def confirming(node: str = "better", language: str = "en") -> engine.Step:
    return resume(at(node, language), "the chest pain is gone", language)


@pytest.mark.parametrize(
    ("language", "question"),
    [
        ("en", "Do you have chest pain right now? Reply YES or NO."),
        ("es", "¿Tiene dolor de pecho ahora mismo? Responda SI o NO."),
    ],
)
def test_confirm_opens_urgent_at_once_and_asks_right_now(language: str, question: str) -> None:
    step = confirming(language=language)
    assert escalations(step) == [("confirm:chest_pain", "URGENT", "chest_pain")]
    assert step.said() == [question]
    assert step.state.node == "better" and step.state.confirming == (CHEST_GONE,)
    assert engine.State.from_dict(step.state.to_dict()) == step.state  # survives the database


@pytest.mark.parametrize("text", ["yes", "sí", "a little", "not sure", "un poco"])
def test_confirm_yes_or_a_hedge_is_an_emergency(text: str) -> None:
    step = resume(confirming().state, text)
    assert escalations(step) == [("red-flag:chest_pain", "EMERGENCY", "chest_pain")]
    assert "911" in step.said()[0]
    assert [e for e in step.events if isinstance(e, Completed)] == [Completed("red_flag")]


def test_confirm_no_thanks_and_asks_the_flows_question_again() -> None:
    step = resume(confirming().state, "no")
    assert escalations(step) == []
    assert step.said()[-1] == "Feeling better? Reply YES or NO."
    assert step.state.confirming == () and step.state.node == "better"
    assert [e for e in step.events if isinstance(e, SaveAnswer)] == []
    answered = resume(step.state, "yes")
    assert [(e.question_id, e.value) for e in answered.events if isinstance(e, SaveAnswer)] == [("better", True)]


def test_confirm_unclear_is_asked_once_more_then_left_urgent_and_the_flow_goes_on() -> None:
    first = resume(confirming().state, "what")
    assert "chest pain right now" in first.said()[0] and first.state.confirming
    second = resume(first.state, "hmm")
    assert second.state.confirming == ()
    assert "will call you today" in second.said()[0]
    assert second.said()[-1] == "Feeling better? Reply YES or NO."
    assert escalations(first) == escalations(second) == []  # the URGENT opened at the ask stays


def test_a_new_emergency_while_confirming_fires_whatever_the_answer() -> None:
    step = resume(confirming().state, "no I want to die")
    assert escalations(step) == [("red-flag:suicide", "EMERGENCY", "suicide")]


def test_silence_while_confirming_leaves_the_urgent_and_times_out_as_usual() -> None:
    state = confirming().state
    later = NOW + dt.timedelta(hours=4, minutes=1)
    step = engine.resume(FLOW, state, ctx(), engine.Timeout(), later, INTENTS)
    assert step.state.confirming == ()
    assert step.said()[0].startswith("Reminder:") and "Feeling better" in step.said()[0]
    assert escalations(step) == []


def test_a_language_switch_while_confirming_asks_again_in_the_new_language() -> None:
    step = resume(confirming().state, "español")
    assert step.said() == ["¿Tiene dolor de pecho ahora mismo? Responda SI o NO."]


def test_a_check_started_outside_any_flow_ends_with_the_flows_closing(right_now: Flow) -> None:
    start = engine.start(right_now, ctx(), NOW, INTENTS, confirm=(CHEST_GONE,))
    assert escalations(start) == [("confirm:chest_pain", "URGENT", "chest_pain")]
    assert start.state.node is None and start.state.status == "active"
    done = engine.resume(right_now, start.state, ctx(), Reply("no"), NOW, INTENTS)
    assert (done.state.status, done.state.result) == ("completed", "not_now")
    assert "nurse" in done.said()[0]


def test_play_applies_stop_to_the_conversation_without_a_database() -> None:
    played = play(FLOW, at("weight"), ctx(), "STOP", NOW, INTENTS)
    assert (played.step.state.status, played.step.state.result, played.opted_out) == ("stopped", "opted_out", True)
    played = play(FLOW, at("level", "es"), ctx("es"), "Alto", NOW, INTENTS)
    assert played.route.keyword_as_answer is not None and played.opted_out is False
    assert [(e.question_id, e.value) for e in played.step.events if isinstance(e, SaveAnswer)] == [("level", "high")]


@pytest.fixture()
def right_now() -> Flow:
    from app import config
    from app.content import load_content

    return load_content(config.CONTENT_DIR).flows["right-now-check"]
