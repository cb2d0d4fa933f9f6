"""Grouped signs (``Rule.group``, app/flows/engine.py ``_fire_grouped``) on a small inline flow.

A sign of a group is escalated at the answer where it is found; every non-EMERGENCY sign of the group is
escalated under the reason of the group's first such sign (so the escalation service joins them into one
task), with ``detail`` carrying ``group``, ``sign``, ``signs``, ``sign_rules`` and a cumulative
``sign_count``; an EMERGENCY sign is escalated under its own reason; the patient is told the group's text
once per level, and never a lower text after an emergency text in the same step. The real HF check-in is
covered in tests/unit/test_engine.py and content/flows/tests/hf-daily-check.yaml.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Sequence

import pytest

from app.flows import engine
from app.flows.engine import Escalate, PatientContext, Reply, Say, State, Step, Timeout
from app.flows.intents import GlobalIntents
from app.flows.loader import compile_flow

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)

# One yes/no question per sign, in this order; `both` fires an EMERGENCY (no stop) and an URGENT sign at once.
SIGNS = compile_flow(
    textwrap.dedent(
        """\
        id: t
        title: {en: T, es: T}
        languages: [en, es]
        start: loss
        nodes:
          - {id: loss, type: question, answer: yes_no, text: {en: "Weight down?", es: "¿Bajo de peso?"}, next: breath}
          - {id: breath, type: question, answer: yes_no, text: {en: "Breath?", es: "¿Aire?"}, next: swelling}
          - {id: swelling, type: question, answer: yes_no, text: {en: "Swelling?", es: "¿Hinchazon?"}, next: dizzy}
          - {id: dizzy, type: question, answer: yes_no, text: {en: "Dizzy?", es: "¿Mareos?"}, next: both}
          - {id: both, type: question, answer: yes_no, text: {en: "Faint?", es: "¿Desmayo?"}, next: other}
          - {id: other, type: question, answer: yes_no, text: {en: "Cough?", es: "¿Tos?"}, next: chest}
          - {id: chest, type: question, answer: yes_no, text: {en: "Chest pain?", es: "¿Pecho?"}, next: done}
          - {id: done, type: end, text: {en: "Thanks.", es: "Gracias."}}
        rules:
          - id: loss-yes
            level: ROUTINE
            reason: weight_loss
            group: signs
            when: {answer: loss, is: yes}
            tell: {en: "Loss text.", es: "Texto peso."}
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
          - id: dizzy-yes
            level: URGENT
            reason: dizziness
            group: signs
            when: {answer: dizzy, is: yes}
          - id: dizzy-again
            level: URGENT
            reason: dizziness
            group: signs
            when: {answer: dizzy, is: yes}
          - id: faint-yes
            level: EMERGENCY
            reason: fainting
            group: signs
            when: {answer: both, is: yes}
            tell: {en: "Faint text, call 911.", es: "Texto desmayo, llame al 911."}
          - id: faint-dizzy
            level: URGENT
            reason: dizziness
            group: signs
            when: {answer: both, is: yes}
            tell: {en: "Faint-dizzy text.", es: "Texto mareo."}
          - id: cough-yes
            level: URGENT
            reason: cough
            group: lungs
            when: {answer: other, is: yes}
            tell: {en: "Cough text.", es: "Texto tos."}
          - id: chest-yes
            level: EMERGENCY
            reason: chest_pain
            group: signs
            stop: true
            when: {answer: chest, is: yes}
            tell: {en: "Chest text, call 911.", es: "Texto pecho, llame al 911."}
        """
    ),
    "content/flows/t.yaml",
)
QUESTIONS = ("loss", "breath", "swelling", "dizzy", "both", "other", "chest")


def ctx(language: str = "en") -> PatientContext:
    return PatientContext("Ana", language, "North Clinic", "555-0100", timezone="America/Chicago")


def answer(yes: Sequence[str], language: str = "en", *, until: str | None = None) -> list[Step]:
    """Start, then answer each question in order (YES to those in ``yes``) up to and including ``until``."""
    patient = ctx(language)
    steps = [engine.start(SIGNS, patient, NOW, GlobalIntents())]
    for question in QUESTIONS:
        if steps[-1].state.status != "active":
            break
        assert steps[-1].state.node == question
        text = ("yes" if language == "en" else "sí") if question in yes else "no"
        steps.append(engine.resume(SIGNS, steps[-1].state, patient, Reply(text), NOW, GlobalIntents()))
        if question == until:
            break
    return steps


def escalations(step: Step) -> list[Escalate]:
    return [e for e in step.events if isinstance(e, Escalate)]


def texts(step: Step) -> list[tuple[str, str]]:
    """(purpose, text) of every escalation or emergency text said in ``step``."""
    return [(e.purpose, e.text) for e in step.events if isinstance(e, Say) and e.purpose in {"escalation", "emergency"}]


def by_question(steps: list[Step]) -> dict[str, Step]:
    """The step that answered each question (steps[0] is the start)."""
    return dict(zip(QUESTIONS, steps[1:], strict=False))


# ------------------------------------------------------------------------------------------ at once
@pytest.mark.parametrize(("language", "told"), [("en", "Breath text."), ("es", "Texto aire.")])
def test_a_sign_is_escalated_and_told_at_the_answer_where_it_is_found(language: str, told: str) -> None:
    steps = answer({"breath"}, language, until="breath")
    step = steps[-1]
    [event] = escalations(step)
    assert (event.rule_id, event.level, event.reason) == ("breath-yes", "URGENT", "shortness_of_breath")
    assert event.detail == {
        "breath": True,  # the rule's own figures
        "group": "signs",
        "sign": "shortness_of_breath",
        "signs": ["shortness_of_breath"],
        "sign_rules": ["breath-yes"],
        "sign_count": 1,
    }
    assert texts(step) == [("escalation", told)]
    said = step.said()
    assert said.index(told) < len(said) - 1  # before the next question, not at the end of the check-in
    assert step.state.status == "active"


# ----------------------------------------------------------------------------------- one task (join)
def test_later_signs_are_escalated_under_the_first_signs_reason_with_a_rising_count() -> None:
    steps = answer({"breath", "swelling", "dizzy"}, until="dizzy")
    fired = [e for s in steps for e in escalations(s)]
    assert [e.rule_id for e in fired] == ["breath-yes", "swelling-yes", "dizzy-yes", "dizzy-again"]
    assert {e.reason for e in fired} == {"shortness_of_breath"}  # one reason: the service joins one task
    assert [e.detail["sign"] for e in fired] == ["shortness_of_breath", "swelling", "dizziness", "dizziness"]
    # sign_count counts distinct reasons so far: two rules of one reason are one sign.
    assert [e.detail["sign_count"] for e in fired] == [1, 2, 3, 3]
    assert fired[-1].detail["signs"] == ["shortness_of_breath", "swelling", "dizziness"]
    assert fired[-1].detail["sign_rules"] == ["breath-yes", "swelling-yes", "dizzy-yes", "dizzy-again"]
    # Each sign fires in the step of its own answer.
    assert [[e.rule_id for e in escalations(s)] for s in steps[1:]] == [
        [],
        ["breath-yes"],
        ["swelling-yes"],
        ["dizzy-yes", "dizzy-again"],
    ]


def test_the_join_reason_is_the_first_non_emergency_sign_even_when_it_is_routine() -> None:
    steps = answer({"loss", "swelling"}, until="swelling")
    fired = [e for s in steps for e in escalations(s)]
    assert [(e.rule_id, e.level, e.reason) for e in fired] == [
        ("loss-yes", "ROUTINE", "weight_loss"),
        ("swelling-yes", "URGENT", "weight_loss"),  # the service raises the joined task to URGENT
    ]


def test_each_sign_fires_once_per_conversation() -> None:
    steps = answer({"breath", "swelling"})
    fired = [e.rule_id for s in steps for e in escalations(s)]
    assert fired == ["breath-yes", "swelling-yes"]
    assert steps[-1].state.status == "completed"
    assert escalations(steps[-1]) == []  # nothing held back for the end of the check-in


def test_the_group_survives_the_state_round_trip_and_a_later_sign_still_joins() -> None:
    patient = ctx()
    steps = answer({"breath"}, until="breath")
    stored = json.loads(json.dumps(steps[-1].state.to_dict()))
    state = State.from_dict(stored)
    assert state == steps[-1].state
    step = engine.resume(SIGNS, state, patient, Reply("yes"), NOW, GlobalIntents())  # swelling
    [event] = escalations(step)
    assert (event.reason, event.detail["sign_count"]) == ("shortness_of_breath", 2)
    assert texts(step) == []  # URGENT already told


def test_groups_are_independent() -> None:
    steps = answer({"breath", "other"}, until="other")
    cough = by_question(steps)["other"]
    [event] = escalations(cough)
    assert (event.reason, event.detail["group"], event.detail["sign_count"]) == ("cough", "lungs", 1)
    assert texts(cough) == [("escalation", "Cough text.")]  # the other group has told nothing yet


# ------------------------------------------------------------------------------------ told once per level
def test_a_second_sign_at_the_same_level_is_not_told_again() -> None:
    steps = answer({"breath", "swelling", "dizzy"}, until="dizzy")
    told = [t for s in steps for t in texts(s)]
    assert told == [("escalation", "Breath text.")]


def test_a_louder_sign_later_says_its_own_words_and_a_quieter_one_after_it_says_nothing() -> None:
    steps = answer({"loss", "breath", "swelling"}, until="swelling")
    q = by_question(steps)
    assert texts(q["loss"]) == [("escalation", "Loss text.")]
    assert texts(q["breath"]) == [("escalation", "Breath text.")]  # URGENT is louder than ROUTINE
    assert texts(q["swelling"]) == []


def test_a_routine_sign_after_an_urgent_one_says_nothing() -> None:
    patient = ctx()
    state = answer({"breath"}, until="breath")[-1].state
    state = State.from_dict({**state.to_dict(), "node": "loss"})  # ask the ROUTINE question after it
    step = engine.resume(SIGNS, state, patient, Reply("yes"), NOW, GlobalIntents())
    [event] = escalations(step)
    assert (event.rule_id, event.level, event.reason) == ("loss-yes", "ROUTINE", "shortness_of_breath")
    assert texts(step) == []


# ----------------------------------------------------------------------------------------- EMERGENCY
def test_an_emergency_sign_is_its_own_task_with_its_own_reason_and_911_text() -> None:
    steps = answer({"breath", "swelling", "chest"})
    chest = steps[-1]
    [event] = escalations(chest)
    assert (event.rule_id, event.level, event.reason) == ("chest-yes", "EMERGENCY", "chest_pain")
    assert event.detail["signs"] == ["shortness_of_breath", "swelling", "chest_pain"]
    assert event.detail["sign_count"] == 3
    assert texts(chest) == [("emergency", "Chest text, call 911.")]
    assert chest.state.status == "completed" and chest.state.result == "escalated"


def test_no_lower_text_after_an_emergency_text_in_the_same_step() -> None:
    steps = answer({"both"}, until="both")
    step = steps[-1]
    fired = escalations(step)
    assert [(e.rule_id, e.level, e.reason) for e in fired] == [
        ("faint-yes", "EMERGENCY", "fainting"),
        # The first non-EMERGENCY sign of the group: its own reason, not the emergency's.
        ("faint-dizzy", "URGENT", "dizziness"),
    ]
    assert texts(step) == [("emergency", "Faint text, call 911.")]


def test_an_emergency_text_is_said_even_after_the_group_told_urgent() -> None:
    steps = answer({"breath", "both"}, until="both")
    step = steps[-1]
    assert [(e.rule_id, e.reason) for e in escalations(step)] == [
        ("faint-yes", "fainting"),
        ("faint-dizzy", "shortness_of_breath"),  # joins the breath task
    ]
    assert texts(step) == [("emergency", "Faint text, call 911.")]


# ------------------------------------------------------------------------------------------- silence
def test_a_quiet_patient_after_a_sign_gets_a_plain_reminder_and_nothing_is_escalated_again() -> None:
    patient = ctx()
    steps = answer({"breath"}, until="breath")
    reminder = engine.resume(SIGNS, steps[-1].state, patient, Timeout(), NOW + dt.timedelta(hours=4))
    assert escalations(reminder) == []
    assert texts(reminder) == []
    expiry = engine.resume(SIGNS, reminder.state, patient, Timeout(), NOW + dt.timedelta(hours=24))
    assert escalations(expiry) == []
    assert expiry.state.status == "expired"


ALARM_THEN_SIGN = compile_flow(
    textwrap.dedent(
        """\
        id: t
        title: {en: T, es: T}
        languages: [en, es]
        start: faint
        nodes:
          - {id: faint, type: question, answer: yes_no, text: {en: "Faint?", es: "¿Desmayo?"}, next: done}
          - {id: done, type: end, text: {en: "Thanks.", es: "Gracias."}}
        rules:
          - id: alarm
            level: EMERGENCY
            reason: fainting
            when: {answer: faint, is: yes}
            tell: {en: "Alarm, call 911.", es: "Alarma, llame al 911."}
          - id: faint-sign
            level: URGENT
            reason: dizziness
            group: signs
            when: {answer: faint, is: yes}
            tell: {en: "Sign text.", es: "Texto signo."}
        """
    ),
    "content/flows/t.yaml",
)


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_group_says_nothing_lower_after_an_emergency_text_of_another_rule_in_the_same_step(language: str) -> None:
    patient = ctx(language)
    step = engine.start(ALARM_THEN_SIGN, patient, NOW, GlobalIntents())
    step = engine.resume(ALARM_THEN_SIGN, step.state, patient, Reply("yes"), NOW, GlobalIntents())
    assert [(e.rule_id, e.level) for e in escalations(step)] == [("alarm", "EMERGENCY"), ("faint-sign", "URGENT")]
    assert [purpose for purpose, _ in texts(step)] == ["emergency"]
