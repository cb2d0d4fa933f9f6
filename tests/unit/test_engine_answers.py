"""Engine features for issue 7 (items 3-5), on small inline flows: answers of kind "unknown" and "meter",
replies flagged for review, "could not assess", grouped signs, prorated and early scores, and rises
measured in the patient's calendar days."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Sequence

import pytest

from app.flows import engine
from app.flows.engine import (
    COULD_NOT_ASSESS,
    Completed,
    Escalate,
    NeedsReview,
    PastAnswer,
    PatientContext,
    Reply,
    SaveAnswer,
    Say,
    State,
    Step,
    Timeout,
)
from app.flows.intents import GlobalIntents
from app.flows.loader import FlowError, compile_flow
from app.flows.model import Flow

# 09:00 in Chicago (CST).
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
CHICAGO = "America/Chicago"


def flow_from(source: str, flow_id: str = "t") -> Flow:
    return compile_flow(textwrap.dedent(source), f"content/flows/{flow_id}.yaml")


def ctx(language: str = "en", history: tuple[PastAnswer, ...] = (), timezone: str = CHICAGO) -> PatientContext:
    return PatientContext("Ana", language, "North Clinic", "555-0100", history=history, timezone=timezone)


def run(flow: Flow, replies: Sequence[str | None], patient: PatientContext | None = None) -> list[Step]:
    """Start, then one step per reply (None = a timeout 5 hours later); every step returned."""
    patient = patient or ctx()
    now = NOW
    steps = [engine.start(flow, patient, now, GlobalIntents())]
    for text in replies:
        if text is None:
            now = now + dt.timedelta(hours=5)
            given: engine.Input = Timeout()
        else:
            given = Reply(text)
        steps.append(engine.resume(flow, steps[-1].state, patient, given, now, GlobalIntents()))
    return steps


def events(steps: list[Step], kind: type) -> list:  # type: ignore[type-arg]
    return [e for s in steps for e in s.events if isinstance(e, kind)]


SYMPTOMS = flow_from(
    """\
    id: t
    title: {en: T, es: T}
    languages: [en, es]
    start: breath
    nodes:
      - id: breath
        type: question
        answer: yes_no
        symptom: true
        text: {en: "Are you more short of breath than usual?", es: "¿Le falta el aire?"}
        next: swelling
      - id: swelling
        type: question
        answer: yes_no
        symptom: true
        text: {en: "More swelling?", es: "¿Mas hinchazon?"}
        next: visit
      - id: visit
        type: question
        answer: yes_no
        text: {en: "Do you have a visit booked?", es: "¿Tiene cita?"}
        next: done
      - id: done
        type: end
        text: {en: "Thanks.", es: "Gracias."}
    rules:
      - id: breath-yes
        level: URGENT
        reason: shortness_of_breath
        group: signs
        when: {answer: breath, is: yes}
        tell: {en: "Breath text.", es: "Texto aire."}
      - id: swelling-yes
        level: URGENT
        reason: swelling
        group: signs
        when: {answer: swelling, is: yes}
        tell: {en: "Swelling text.", es: "Texto hinchazon."}
    """
)


# ------------------------------------------------------------------------------------ hedges, unknown
HEDGED_YES = [("en", "a little"), ("en", "kind of"), ("en", "sometimes"), ("es", "un poco"), ("es", "más o menos")]


@pytest.mark.parametrize(("language", "text"), HEDGED_YES)
def test_a_hedge_is_yes_on_a_symptom_question(language: str, text: str) -> None:
    steps = run(SYMPTOMS, [text], ctx(language))
    assert [(e.question_id, e.value, e.kind) for e in events(steps, SaveAnswer)] == [("breath", True, "yes_no")]


@pytest.mark.parametrize(("language", "text"), HEDGED_YES)
def test_a_hedge_is_unclear_elsewhere(language: str, text: str) -> None:
    steps = run(SYMPTOMS, ["no", "no", text], ctx(language))
    assert events(steps[-1:], SaveAnswer) == []
    assert [e.purpose for e in events(steps[-1:], Say)] == ["reprompt"]


@pytest.mark.parametrize(("language", "text"), [("en", "not sure"), ("en", "idk"), ("es", "no sé"), ("es", "no se")])
def test_i_dont_know_is_unknown_not_no_and_the_flow_goes_on(language: str, text: str) -> None:
    steps = run(SYMPTOMS, [text], ctx(language))
    assert [(e.kind, e.value) for e in events(steps, SaveAnswer)] == [("unknown", None)]
    assert events(steps, NeedsReview) == [NeedsReview("breath", "unknown")]
    assert steps[-1].state.node == "swelling"
    assert steps[-1].state.unassessed == ("breath",)


def test_a_yes_no_that_says_more_is_saved_and_flagged_for_review() -> None:
    steps = run(SYMPTOMS, ["no but my ankles are huge"])
    assert [(e.question_id, e.value) for e in events(steps, SaveAnswer)] == [("breath", False)]
    assert events(steps, NeedsReview) == [NeedsReview("breath", "more_than_yes_no")]


@pytest.mark.parametrize("text", ["no", "no thanks", "yes I am more short of breath", "sí, gracias"])
def test_a_plain_yes_no_is_not_flagged(text: str) -> None:
    assert events(run(SYMPTOMS, [text]), NeedsReview) == []


# ------------------------------------------------------------------------------------ could not assess
def test_unknown_on_an_assessment_question_opens_one_routine_could_not_assess_at_the_end() -> None:
    steps = run(SYMPTOMS, ["no sé", "idk", "yes"], ctx("es"))
    assess = [e for e in events(steps, Escalate) if e.rule_id == COULD_NOT_ASSESS]
    assert [(e.level, e.reason, e.detail["questions"]) for e in assess] == [
        ("ROUTINE", "could_not_assess", ["breath", "swelling"])
    ]
    assert assess[0] in steps[-1].events  # at the end of the check-in, once
    assert steps[-1].state.status == "completed"


def test_unanswered_after_the_reprompts_counts_too() -> None:
    steps = run(SYMPTOMS, ["?", "??", "???", "no", "no"])
    assert [e.detail["questions"] for e in events(steps, Escalate)] == [["breath"]]


def test_a_question_that_is_not_an_assessment_does_not_count() -> None:
    steps = run(SYMPTOMS, ["no", "no", "not sure"])
    assert events(steps, Escalate) == []


def test_silence_from_the_start_is_not_could_not_assess() -> None:
    steps = run(SYMPTOMS, [None, None])
    assert steps[-1].state.status == "expired"
    assert events(steps, Escalate) == []


def test_silence_after_some_replies_is_could_not_assess() -> None:
    steps = run(SYMPTOMS, ["no", None, None])
    assert steps[-1].state.result == "no_response"
    assert [(e.rule_id, e.detail["questions"]) for e in events(steps, Escalate)] == [(COULD_NOT_ASSESS, ["swelling"])]


# ---------------------------------------------------------------------------------------- groups
# Grouped signs (``Rule.group``) are tested in tests/unit/test_engine_groups.py.


def test_an_old_stored_state_without_the_new_fields_still_loads() -> None:
    stored = run(SYMPTOMS, [])[-1].state.to_dict()
    for key in ("group_fires", "groups_told", "unassessed", "replied"):
        stored.pop(key)
    state = State.from_dict(stored)
    assert (state.group_fires, state.groups_told, state.unassessed, state.replied) == ((), {}, (), False)


# ------------------------------------------------------------------------------------------- meter
GLUCOSE = flow_from(
    """\
    id: t
    title: {en: T, es: T}
    languages: [en, es]
    start: glucose
    nodes:
      - id: glucose
        type: question
        answer: number
        unit: mg/dL
        min: 10
        max: 1500
        meter: {low: LO, high: HI}
        text: {en: "Blood sugar?", es: "¿Azucar?"}
        next: done
      - id: done
        type: end
        text: {en: "Thanks.", es: "Gracias."}
    rules:
      - id: meter-lo
        level: URGENT
        reason: low_glucose
        when: {answer: glucose, is: LO}
      - id: very-low
        level: URGENT
        reason: low_glucose
        when: {answer: glucose, below: 54}
    """
)
METER = [
    ("en", "LO", "LO"),
    ("en", "low", "LO"),
    ("en", "it says LO", "LO"),
    ("en", "HI", "HI"),
    ("en", "too high", "HI"),
    ("es", "bajo", "LO"),
    ("es", "muy bajo", "LO"),
    ("es", "Alto", "HI"),
    ("es", "muy alto", "HI"),
]


@pytest.mark.parametrize(("language", "text", "value"), METER)
def test_meter_flags_are_understood_at_once_and_saved_as_text(language: str, text: str, value: str) -> None:
    steps = run(GLUCOSE, [text], ctx(language))
    assert [(e.kind, e.value, e.unit) for e in events(steps, SaveAnswer)] == [("meter", value, "mg/dL")]
    fired = [e.rule_id for e in events(steps, Escalate)]
    assert fired == (["meter-lo"] if value == "LO" else [])


@pytest.mark.parametrize(("text", "value"), [("18", 18.0), ("650", 650.0), ("1.0 mmol", 18.0), ("1500", 1500.0)])
def test_readings_outside_the_meter_range_are_numbers(text: str, value: float) -> None:
    steps = run(GLUCOSE, [text])
    assert [e.value for e in events(steps, SaveAnswer)] == [value]


@pytest.mark.parametrize("text", ["hi", "l83", "1O2", "not low"])
def test_a_greeting_a_letter_for_a_digit_or_a_negation_is_asked_again(text: str) -> None:
    steps = run(GLUCOSE, [text])
    assert events(steps, SaveAnswer) == []
    assert [e.purpose for e in events(steps[-1:], Say)] == ["reprompt"]


@pytest.mark.parametrize(
    ("language", "text", "value"),
    [
        ("en", "one eighty three", 183.0),
        ("en", "one hundred eighty-three", 183.0),
        ("es", "ciento ochenta y tres", 183.0),
    ],
)
def test_number_words_are_numbers(language: str, text: str, value: float) -> None:
    steps = run(GLUCOSE, [text], ctx(language))
    assert [e.value for e in events(steps, SaveAnswer)] == [value]


# ------------------------------------------------------------------------------------------- scores
SCORED = flow_from(
    """\
    id: t
    title: {en: T, es: T}
    languages: [en, es]
    start: q1
    thresholds: {urgent_at: 20, routine_at: 10}
    nodes:
      - {id: q1, type: question, answer: scale, min: 0, max: 3, text: {en: "1?", es: "1?"}, next: q2}
      - {id: q2, type: question, answer: scale, min: 0, max: 3, text: {en: "2?", es: "2?"}, next: q3}
      - {id: q3, type: question, answer: scale, min: 0, max: 3, text: {en: "3?", es: "3?"}, next: q4}
      - {id: q4, type: question, answer: scale, min: 0, max: 3, text: {en: "4?", es: "4?"}, next: q5}
      - {id: q5, type: question, answer: scale, min: 0, max: 3, text: {en: "5?", es: "5?"}, next: q6}
      - {id: q6, type: question, answer: scale, min: 0, max: 3, text: {en: "6?", es: "6?"}, next: q7}
      - {id: q7, type: question, answer: scale, min: 0, max: 3, text: {en: "7?", es: "7?"}, next: q8}
      - {id: q8, type: question, answer: scale, min: 0, max: 3, text: {en: "8?", es: "8?"}, next: q9}
      - id: q9
        type: question
        answer: scale
        min: 0
        max: 3
        text: {en: "9?", es: "9?"}
        on_unanswered: q9_check
        next: done
      - id: q9_check
        type: question
        answer: choice
        text: {en: "9 yes/no?", es: "9 si/no?"}
        choices:
          - {id: yes_, value: 1, label: {en: "Yes", es: "Si"}}
          - {id: no_, value: 0, label: {en: "No", es: "No"}}
        next: done
      - {id: done, type: end, text: {en: "Thanks.", es: "Gracias."}}
    scores:
      - id: total
        sum: [q1, q2, q3, q4, q5, q6, q7, q8, [q9, q9_check]]
        prorate: {max_missing: 2}
    rules:
      - id: urgent
        level: URGENT
        reason: elevated
        when: {score: total, at_least: $urgent_at}
      - id: routine
        level: ROUTINE
        reason: elevated
        when:
          all:
            - {score: total, at_least: $routine_at}
            - {score: total, below: $urgent_at}
    """
)


def fired_at(steps: list[Step]) -> list[tuple[int, str]]:
    return [(i, e.rule_id) for i, s in enumerate(steps) for e in s.events if isinstance(e, Escalate)]


def test_at_least_fires_as_soon_as_the_answered_items_reach_the_band() -> None:
    steps = run(SCORED, ["3"] * 7)
    assert fired_at(steps) == [(7, "urgent")]  # 21 after seven items
    assert escalate_detail(steps, "urgent")["total_final"] is False


def escalate_detail(steps: list[Step], rule_id: str) -> dict:  # type: ignore[type-arg]
    return next(dict(e.detail) for e in events(steps, Escalate) if e.rule_id == rule_id)


def test_a_band_with_an_upper_bound_waits_for_the_final_total() -> None:
    steps = run(SCORED, ["2", "2", "2", "2", "2", "2", "0", "0"])
    assert fired_at(steps) == []  # 12 so far, but the band 10-19 is not known yet
    steps += run_from(steps[-1], ["0"])
    assert fired_at(steps) == [(9, "routine")]


def run_from(step: Step, replies: list[str]) -> list[Step]:
    out = []
    for text in replies:
        step = engine.resume(SCORED, step.state, ctx(), Reply(text), NOW, GlobalIntents())
        out.append(step)
    return out


def test_one_unreadable_item_is_prorated_and_item_9_unreadable_twice_too() -> None:
    # Items 1-7 at 2 (14), item 8 unreadable, item 9 at 2: 16 × 9/8 = 18 → ROUTINE (not URGENT).
    steps = run(SCORED, ["2"] * 7 + ["x", "x", "x", "2"])
    assert fired_at(steps) == [(11, "routine")]
    detail = escalate_detail(steps, "routine")
    assert (detail["total"], detail["total_missing"], detail["total_prorated_from"]) == (18.0, 1, 16.0)


def test_item_9_read_from_its_yes_no_fallback_counts_and_is_not_missing() -> None:
    steps = run(SCORED, ["2"] * 8 + ["?", "?", "?", "no"])
    assert fired_at(steps) == [(12, "routine")]
    assert escalate_detail(steps, "routine")["total"] == 16.0


def test_three_missing_items_leave_no_total() -> None:
    steps = run(SCORED, ["x"] * 9 + ["1"] * 6 + ["?"] * 6)
    assert engine.scores(SCORED, steps[-1].state.answers) == {}
    assert fired_at(steps) == []


def test_the_total_is_rounded_half_up() -> None:
    # 7 items sum to 17, two missing: 17 × 9/7 = 21.86 → 22.
    answers: dict[str, engine.Value] = {f"q{i}": v for i, v in enumerate([3, 3, 3, 3, 3, 1, 1], start=1)}
    answers.update(q8=None, q9=None, q9_check=None)
    assert engine.scores(SCORED, answers) == {"total": 22.0}


# --------------------------------------------------------------------------------- calendar days
RISE = flow_from(
    """\
    id: t
    title: {en: T, es: T}
    languages: [en, es]
    start: weight
    nodes:
      - {id: weight, type: question, answer: number, unit: lb, min: 50, max: 700, text: {en: W, es: P}, next: done}
      - {id: done, type: end, text: {en: "Thanks.", es: "Gracias."}}
    rules:
      - id: gain-1-day
        level: URGENT
        reason: weight_gain
        when: {rise: weight, within_days: 2, baseline: last, at_least: 3}
      - id: gain-7-days
        level: URGENT
        reason: weight_gain_week
        when: {rise: weight, within_days: 7, at_least: 5}
      - id: loss-1-day
        level: ROUTINE
        reason: weight_loss
        when: {fall: weight, within_days: 2, baseline: last, at_least: 3}
    """
)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=-6)))


def weigh_in(
    history: list[tuple[float, dt.datetime]], reply_text: str, at: dt.datetime, zone: str = CHICAGO
) -> list[str]:
    patient = ctx(history=tuple(PastAnswer("weight", v, when) for v, when in history), timezone=zone)
    first = engine.start(RISE, patient, at, GlobalIntents())
    step = engine.resume(RISE, first.state, patient, Reply(reply_text), at, GlobalIntents())
    return [e.rule_id for e in step.events if isinstance(e, Escalate)]


CALENDAR = [
    # (history, reply, answered at, rules)
    ([(179, local(24, 9, 5))], "183", local(25, 16, 30), ["gain-1-day"]),  # yesterday morning, today afternoon
    ([(179, local(24, 23, 50))], "183", local(25, 6, 0), ["gain-1-day"]),  # late last night, early today
    ([(180, local(23, 9))], "184", local(25, 9), ["gain-1-day"]),  # nothing yesterday: the day before
    ([(180, local(22, 9))], "184", local(25, 9), []),  # three days ago is not a 1-day rise (nor 5 in a week)
    ([(176, local(23, 9)), (181, local(24, 9))], "183", local(25, 9), ["gain-7-days"]),  # against the last: +2
    ([(179, local(25, 6))], "183", local(25, 16), []),  # earlier today is not a baseline
    ([(186, local(24, 9))], "183", local(25, 9), ["loss-1-day"]),
]


@pytest.mark.parametrize(("history", "text", "at", "expected"), CALENDAR)
def test_rises_and_falls_count_calendar_days_in_the_patients_zone(
    history: list[tuple[float, dt.datetime]], text: str, at: dt.datetime, expected: list[str]
) -> None:
    assert weigh_in(history, text, at) == expected


def test_the_calendar_day_is_the_patients_not_utc() -> None:
    # 23:30 on the 22nd in Chicago is 05:30 on the 23rd in UTC: three days before the 25th for a Chicago
    # patient (no 1-day rise), two days before for a patient whose zone is UTC.
    history = [(179.0, local(22, 23, 30))]
    assert weigh_in(history, "183", local(25, 9), zone=CHICAGO) == []
    assert weigh_in(history, "183", local(25, 9), zone="UTC") == ["gain-1-day"]


# ------------------------------------------------------------------------------------------ loader
BASE = """\
id: t
title: {en: T, es: T}
languages: [en, es]
start: q
nodes:
  - id: q
    type: question
    %s
    text: {en: "Q?", es: "¿P?"}
    next: done
  - {id: done, type: end, text: {en: "Thanks.", es: "Gracias."}}
%s
"""
LOADER_ERRORS = [
    ("answer: number\n    min: 1\n    max: 9\n    symptom: true", "", "'symptom' is for yes_no questions"),
    ("answer: yes_no\n    meter: {low: LO}", "", "'meter' is for number questions"),
    ("answer: number\n    min: 1\n    max: 9\n    meter: {lowest: LO}", "", "meter must be a mapping"),
    ("answer: yes_no\n    assess: maybe", "", "'assess' must be true or false"),
    ("answer: text\n    assess: true", "", "a text question cannot be 'assess'"),
    (
        "answer: scale\n    min: 0\n    max: 3",
        "scores:\n  - {id: s, sum: [q], prorate: {max_missing: 1}}",
        "max_missing must be a whole number from 1 to 0",
    ),
    (
        "answer: number\n    min: 1\n    max: 9",
        "rules:\n  - {id: r, level: URGENT, reason: x, when: {answer: q, above: 1, baseline: last}}",
        "baseline is for rise/fall",
    ),
    (
        "answer: yes_no",
        "rules:\n  - {id: r, level: URGENT, reason: x, group: Bad Name, when: {answer: q, is: yes}}",
        "group must be a name",
    ),
    ("answer: yes_no", "defaults: {symptoms: true}", "defaults: unknown field 'symptoms'"),
    (
        "answer: choice\n    choices:\n      - {id: a, label: {en: A, es: A}, means: big}\n"
        "      - {id: b, label: {en: B, es: B}}",
        "",
        "means is one of cancel, high, low",
    ),
]


@pytest.mark.parametrize(("question", "tail", "message"), LOADER_ERRORS)
def test_new_attributes_are_checked_at_load(question: str, tail: str, message: str) -> None:
    with pytest.raises(FlowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_flow(BASE % (question, tail), "content/flows/t.yaml")


def test_flow_defaults_make_yes_no_questions_symptoms_and_assessments() -> None:
    flow = compile_flow(BASE % ("answer: yes_no", "defaults: {symptom: true}"), "content/flows/t.yaml")
    assert (flow.node("q").symptom, flow.node("q").assess) == (True, True)
    flow = compile_flow(
        BASE % ("answer: yes_no\n    assess: false", "defaults: {symptom: true}"), "content/flows/t.yaml"
    )
    assert (flow.node("q").symptom, flow.node("q").assess) == (True, False)
    flow = compile_flow(BASE % ("answer: yes_no", ""), "content/flows/t.yaml")
    assert (flow.node("q").symptom, flow.node("q").assess) == (False, False)


def test_completed_comes_last() -> None:
    steps = run(SYMPTOMS, ["yes", "yes", "no"])
    assert isinstance(steps[-1].events[-1], Completed)


KETONES = flow_from(
    """\
    id: t
    title: {en: T, es: T}
    languages: [en, es]
    start: ketones
    nodes:
      - id: ketones
        type: question
        answer: choice
        text: {en: "Ketones? 1 None 2 Small 3 Large", es: "¿Cetonas? 1 Ninguna 2 Pocas 3 Muchas"}
        choices:
          - {id: none, label: {en: None, es: Ninguna}}
          - {id: small, label: {en: Small, es: Pocas}, means: low}
          - {id: large, label: {en: Large, es: Muchas}, means: high}
        next: done
      - {id: done, type: end, text: {en: "Thanks.", es: "Gracias."}}
    """
)


@pytest.mark.parametrize(
    ("language", "text", "choice"),
    [("es", "Alto", "large"), ("es", "muy alto", "large"), ("es", "Baja", "small"), ("en", "high", "large")],
)
def test_a_choice_that_means_high_or_low_takes_those_words_without_listing_them(
    language: str, text: str, choice: str
) -> None:
    steps = run(KETONES, [text], ctx(language))
    assert [e.value for e in events(steps, SaveAnswer)] == [choice]
