"""Property tests: whatever a patient types, the engine answers with exactly one well-formed outcome."""

from __future__ import annotations

import datetime as dt
import functools
import textwrap

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app import config
from app.content import load_content
from app.flows import engine
from app.flows.engine import NeedsReview, NotUnderstood, PatientContext, Reply, SaveAnswer, Say, State
from app.flows.intents import GlobalIntents
from app.flows.loader import compile_flow
from app.flows.model import Flow

NOW = dt.datetime(2026, 3, 10, 13, 0, tzinfo=dt.UTC)

QUESTIONS = {
    "number": "answer: number\n    unit: lb\n    min: 50\n    max: 700",
    "yes_no": "answer: yes_no",
    "choice": (
        "answer: choice\n"
        "    choices:\n"
        "      - {id: better, label: {en: Better, es: Mejor}}\n"
        "      - {id: same, label: {en: Same, es: Igual}, words: {en: [no change], es: [lo mismo]}}\n"
        "      - {id: worse, label: {en: Worse, es: Peor}}"
    ),
    "scale": "answer: scale\n    min: 0\n    max: 10",
    "text": "answer: text",
}


@functools.cache
def flow_for(kind: str) -> Flow:
    source = (
        textwrap.dedent(
            """\
        id: one-question
        title: {en: One question, es: Una pregunta}
        languages: [en, es]
        start: q
        nodes:
          - id: q
            type: question
            %s
            text: {en: "Question?", es: "¿Pregunta?"}
            next: done
          - id: done
            type: end
            text: {en: "Thanks.", es: "Gracias."}
        """
        )
        % QUESTIONS[kind]
    )
    return compile_flow(source, "content/flows/one-question.yaml")


@functools.cache
def intents() -> GlobalIntents:
    return load_content(config.CONTENT_DIR).intents


EMOJI = st.sampled_from(["👍", "👎", "👍🏽", "😀", "❤️", "🇲🇽", "✅", "❌", "👨‍👩‍👧", "\u200d", "\ufe0f"])
PIECES = st.one_of(
    st.text(max_size=20),
    EMOJI,
    st.sampled_from(["yes", "no", "sí", "1", "2", "3", "182", "182,5", "80 kg", "7.2 mmol/L", "better", "peor", " "]),
    st.from_regex(r"[0-9.,\- ]{1,12}", fullmatch=True),
)
REPLIES = st.one_of(
    st.text(),
    st.lists(PIECES, max_size=8).map("".join),
    st.lists(PIECES, min_size=50, max_size=200).map(" ".join),  # very long messages
    st.text(min_size=500, max_size=2000),
)


def check_outcome(kind: str, text: str, attempts: int, language: str) -> None:
    flow = flow_for(kind)
    ctx = PatientContext(first_name="Ana", language=language, program_name="North Clinic", program_phone="555-0100")
    first = engine.start(flow, ctx, NOW, intents())
    state = State.from_dict({**first.state.to_dict(), "attempts": attempts})
    assume(intents().language_switch(text) is None)
    assume(not intents().assess(text, language).findings)
    assume(not intents().opt_out_request(text))

    step = engine.resume(flow, state, ctx, Reply(text), NOW, intents())

    saves = [e for e in step.events if isinstance(e, SaveAnswer)]
    not_understood = [e for e in step.events if isinstance(e, NotUnderstood)]
    reprompts = [e for e in step.events if isinstance(e, Say) and e.purpose == "reprompt"]
    understood = len(saves) == 1 and saves[0].kind == kind and not not_understood and not reprompts
    reprompted = len(not_understood) == 1 and len(reprompts) == 1 and not saves
    gave_up = len(not_understood) == 1 and not reprompts and len(saves) == 1 and saves[0].kind == "unanswered"
    # "not sure" / "no sé": an answer of its own (no value), marked for a person to read, and the flow goes on.
    unknown = (
        len(saves) == 1
        and saves[0].kind == "unknown"
        and not not_understood
        and not reprompts
        and any(isinstance(e, NeedsReview) and e.why == "unknown" for e in step.events)
    )
    assert [understood, reprompted, gave_up, unknown].count(True) == 1, step.events
    reviews = [e for e in step.events if isinstance(e, NeedsReview)]
    assert len(reviews) <= 1
    if reviews and not unknown:
        # A yes/no or a scale point with more words beside it ("no but my ankles are huge", "0 but I think
        # about it") is kept and read by a person (engine.understand).
        assert understood and (kind, reviews[0].why) in {("yes_no", "more_than_yes_no"), ("scale", "more_than_scale")}

    if understood:
        value = saves[0].value
        assert saves[0].raw == text
        assert step.state.status == "completed"
        if kind == "number":
            assert isinstance(value, float) and 50 <= value <= 700
        elif kind == "yes_no":
            assert isinstance(value, bool)
        elif kind == "choice":
            assert value in {"better", "same", "worse"}
        elif kind == "scale":
            assert isinstance(value, float) and value.is_integer() and 0 <= value <= 10
        else:
            assert isinstance(value, str) and value
            assert len(value) <= 1600
            assert text.strip().startswith(value)
            if len(text.strip()) <= 1600:
                assert value == text.strip()
    elif reprompted:
        assert attempts < 2
        assert step.state.attempts == attempts + 1
        assert step.state.node == "q"
    elif unknown:
        assert saves[0].value is None
        assert saves[0].raw == text
        assert step.state.status == "completed"
    else:
        assert attempts == 2
        assert saves[0].value is None
        assert step.state.status == "completed"


@pytest.mark.parametrize("kind", sorted(QUESTIONS))
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=REPLIES, attempts=st.sampled_from([0, 1, 2]), language=st.sampled_from(["en", "es"]))
def test_any_reply_gives_exactly_one_outcome(kind: str, text: str, attempts: int, language: str) -> None:
    check_outcome(kind, text, attempts, language)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(text=st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=3))
def test_choice_reply_of_any_digit_characters(text: str) -> None:
    check_outcome("choice", text, 0, "en")


@settings(max_examples=1, deadline=None, database=None)
@given(text=st.just("1:1:1"))
def test_a_scale_point_with_more_digits_is_kept_and_read_by_a_person(text: str) -> None:
    """The case Hypothesis found in CI ('1:1:1' at a scale question): a point, marked for review."""
    check_outcome("scale", text, 0, "en")
