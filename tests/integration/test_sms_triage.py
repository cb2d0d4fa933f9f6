"""Triage on every inbound text, through signed webhooks (issue 7, items 1, 2, 6 and 8): every emergency
reason fires, "right now?" for resolved mentions, keywords that give way to answers, opt-out sentences,
texts outside a conversation, opted-out patients and unknown numbers.

Reasons are compared with what the triage component itself says (``rt.content.triage``), never with
hard-coded codes, so these tests hold for the phrase adapter and the real component alike; the messages
are ones whose meaning is not in doubt.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.flows.loader import compile_flow
from app.messaging.inbound import flagged_unknown_senders
from app.models import Conversation, Escalation, EscalationTrigger, Message, Program
from app.runtime import Runtime
from app.web.auth import create_user
from tests.integration.sms_helpers import (
    answers,
    inbound_params,
    install_clock,
    message_rows,
    patient_row,
    run_worker,
    start_checkin,
    texts_to,
)
from tests.integration.staff_helpers import csrf_from, sign_in
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]
# 10:00 in New York (EST) on a Tuesday.
MORNING = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
PROGRAM_PHONE = "555-0100"
ON_CALL = "+13125550003"
NOTICE = f"This number is not watched all the time. In an emergency call 911. Questions: {PROGRAM_PHONE}"


def _text(post: Poster, rt: Runtime, phone: str, body: str) -> None:
    response = post("/twilio/sms", inbound_params(phone, body))
    assert response.status_code == 200
    run_worker(rt)


def _escalations(rt: Runtime, patient_id: int) -> list[tuple[str, str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id))
        return [(e.level, e.reason, e.status) for e in rows]


def _rules(rt: Runtime, patient_id: int) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(EscalationTrigger.rule_id, EscalationTrigger.level)
            .join(Escalation, Escalation.id == EscalationTrigger.escalation_id)
            .where(Escalation.patient_id == patient_id)
            .order_by(EscalationTrigger.id)
        ).all()
        return [(rule, level) for rule, level in rows]


def _conversation(rt: Runtime, patient_id: int) -> Conversation:
    with rt.sessions() as session:
        row = session.scalars(
            select(Conversation).where(Conversation.patient_id == patient_id).order_by(Conversation.id.desc())
        ).first()
        assert row is not None
        return row


@pytest.fixture()
def at_breath_question(
    rt: Runtime, make_patient: Callable[..., Any], fake_twilio: FakeTwilio, post_twilio: Poster
) -> Callable[..., Any]:
    """A patient in the HF check-in who gave a weight and now is asked a YES/NO question."""

    def make(**overrides: Any) -> Any:
        install_clock(rt, MORNING)
        patient = make_patient(**overrides)
        start_checkin(rt, patient, MORNING)
        run_worker(rt)
        _text(post_twilio, rt, patient.phone, "182")
        assert [a.question_id for a in answers(rt, patient.id)] == ["weight"]
        assert len(texts_to(fake_twilio, patient.phone)) == 2
        return patient

    return make


# ---------------------------------------------------------------------- emergencies inside a check-in
@pytest.mark.parametrize(
    ("body", "crisis"),
    [("No I want to die", True), ("No but my chest hurts", False)],
)
def test_a_red_flag_behind_a_no_at_a_yes_no_question_is_an_emergency_not_an_answer(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    at_breath_question: Callable[..., Any],
    post_twilio: Poster,
    body: str,
    crisis: bool,
) -> None:
    patient = at_breath_question()
    _text(post_twilio, rt, patient.phone, body)
    expected = rt.content.triage.assess(body, "en").emergency
    assert expected  # the message is unambiguous
    assert _escalations(rt, patient.id) == [("EMERGENCY", reason, "open") for reason in expected]
    assert [a.question_id for a in answers(rt, patient.id)] == ["weight"]  # not saved as "no"
    reply = texts_to(fake_twilio, patient.phone)[-1]
    assert "911" in reply
    assert ("988" in reply) is crisis
    conversation = _conversation(rt, patient.id)
    assert (conversation.status, conversation.result) == ("completed", "red_flag")


def test_suicide_and_chest_pain_in_one_text_both_fire_and_both_numbers_are_said(
    rt: Runtime, fake_twilio: FakeTwilio, at_breath_question: Callable[..., Any], post_twilio: Poster
) -> None:
    patient = at_breath_question()
    body = "i want to die, my chest hurts"
    _text(post_twilio, rt, patient.phone, body)
    expected = rt.content.triage.assess(body, "en").emergency
    assert len(expected) == 2
    assert sorted(_escalations(rt, patient.id)) == sorted(("EMERGENCY", r, "open") for r in expected)
    sent = texts_to(fake_twilio, patient.phone)
    assert len(sent) == 3  # ONE text for both
    assert "911" in sent[-1] and "988" in sent[-1]


@pytest.mark.parametrize(
    ("language", "mention", "question", "yes"),
    [
        ("en", "my chest pain is gone", "Do you have chest pain right now? Reply YES or NO.", "yes"),
        ("es", "ya se me quitó el dolor de pecho", "¿Tiene dolor de pecho ahora mismo? Responda SI o NO.", "sí"),
    ],
)
def test_a_resolved_chest_pain_is_asked_about_and_yes_is_an_emergency(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    at_breath_question: Callable[..., Any],
    post_twilio: Poster,
    language: str,
    mention: str,
    question: str,
    yes: str,
) -> None:
    patient = at_breath_question(language=language)
    _text(post_twilio, rt, patient.phone, mention)
    [reason] = rt.content.triage.assess(mention, language).to_confirm
    assert _escalations(rt, patient.id) == [("URGENT", reason, "open")]  # in front of a nurse at once
    assert texts_to(fake_twilio, patient.phone)[-1] == question
    assert message_rows(rt, direction="inbound")[-1].flags == [f"confirm:{reason}"]

    _text(post_twilio, rt, patient.phone, yes)
    # The same escalation, raised: one item for the nurse, with both triggers.
    assert _escalations(rt, patient.id) == [("EMERGENCY", reason, "open")]
    assert _rules(rt, patient.id) == [(f"confirm:{reason}", "URGENT"), (f"red-flag:{reason}", "EMERGENCY")]
    assert "911" in texts_to(fake_twilio, patient.phone)[-1]
    conversation = _conversation(rt, patient.id)
    assert (conversation.status, conversation.result) == ("completed", "red_flag")
    assert [a.question_id for a in answers(rt, patient.id)] == ["weight"]


def test_a_resolved_chest_pain_then_no_keeps_the_urgent_and_the_check_in_goes_on(
    rt: Runtime, fake_twilio: FakeTwilio, at_breath_question: Callable[..., Any], post_twilio: Poster
) -> None:
    patient = at_breath_question()
    breath_question = texts_to(fake_twilio, patient.phone)[-1]
    _text(post_twilio, rt, patient.phone, "my chest pain is gone")
    _text(post_twilio, rt, patient.phone, "no")
    [(level, _reason, status)] = _escalations(rt, patient.id)
    assert (level, status) == ("URGENT", "open")  # never silently dropped
    reply = texts_to(fake_twilio, patient.phone)[-1]
    assert "nurse" in reply and reply.endswith(breath_question)  # the pending question again
    assert [a.question_id for a in answers(rt, patient.id)] == ["weight"]  # "no" answered "right now?"
    _text(post_twilio, rt, patient.phone, "no")
    saved = answers(rt, patient.id)
    assert [(a.question_id, a.value) for a in saved] == [("weight", 182.0), ("breath", False)]
    assert _conversation(rt, patient.id).status == "active"


def test_an_answer_that_raises_right_now_is_kept_after_no_and_the_check_in_goes_on(
    rt: Runtime, fake_twilio: FakeTwilio, at_breath_question: Callable[..., Any], post_twilio: Poster
) -> None:
    """ "yes, and I had chest pain yesterday" answers the breath question AND mentions a past red flag: after
    "right now?" and NO the yes is saved and the next question is asked (not the same question again)."""
    patient = at_breath_question()
    body = "yes, and I had chest pain yesterday"
    verdict = rt.content.triage.assess(body, "en")
    assert verdict.to_confirm and not verdict.emergency
    _text(post_twilio, rt, patient.phone, body)
    assert [a.question_id for a in answers(rt, patient.id)] == ["weight"]  # held while "right now?" is asked
    _text(post_twilio, rt, patient.phone, "no")
    saved = answers(rt, patient.id)
    assert [(a.question_id, a.value) for a in saved] == [("weight", 182.0), ("breath", True)]
    assert saved[-1].raw == body  # the message itself, linked to the answer
    sent = texts_to(fake_twilio, patient.phone)
    assert "nurse" in sent[-1] and "more short of breath" not in sent[-1]
    assert "rest" in sent[-1]  # the next question: short of breath even at rest
    assert ("URGENT", "open") in [(level, status) for level, _reason, status in _escalations(rt, patient.id)]
    assert _conversation(rt, patient.id).status == "active"


def test_silence_after_right_now_keeps_the_urgent_open(
    rt: Runtime, fake_twilio: FakeTwilio, at_breath_question: Callable[..., Any], post_twilio: Poster
) -> None:
    from app.scheduling.sweeper import tick

    patient = at_breath_question()
    _text(post_twilio, rt, patient.phone, "my chest pain is gone")
    tick(rt, MORNING + dt.timedelta(hours=4, minutes=1))
    run_worker(rt)
    tick(rt, MORNING + dt.timedelta(hours=24, minutes=2))
    run_worker(rt)
    assert _conversation(rt, patient.id).status == "expired"
    # Beside it, the breath question left unanswered after a reply is a ROUTINE "could not assess".
    [(level, _reason, status)] = [e for e in _escalations(rt, patient.id) if e[1] != "could_not_assess"]
    assert (level, status) == ("URGENT", "open")


# --------------------------------------------------------------------------- keywords never eat answers
LEVEL_FLOW = textwrap.dedent(
    """\
    id: test-level-check
    title: {en: Level, es: Nivel}
    description: A question whose answers are words that are also keywords (ALTO, BAJA, AYUDA).
    sources: [test]
    reviewed: {by: pending clinical review, on: 2026-11-26}
    languages: [en, es]
    start: level
    nodes:
      - id: level
        type: question
        answer: choice
        text: {en: "Is it high or low? 1 High 2 Low 3 Help", es: "¿Alto o bajo? 1 Alto 2 Bajo 3 Ayuda"}
        choices:
          - id: high
            label: {en: High, es: Alto}
          - id: low
            label: {en: Low, es: Baja}
          - id: help
            label: {en: Help, es: Ayuda}
        next: done
      - id: done
        type: end
        text: {en: "Thanks.", es: "Gracias."}
    """
)


@pytest.fixture()
def level_flow(rt: Runtime) -> str:
    flow = compile_flow(LEVEL_FLOW, "content/flows/test-level-check.yaml")
    rt.content.flows[flow.id] = flow  # this test's app only
    rt.content.flow_sources[flow.id] = LEVEL_FLOW
    return flow.id


@pytest.mark.parametrize(("word", "choice"), [("Alto", "high"), ("BAJA", "low"), ("ayuda", "help"), ("Help", "help")])
def test_a_keyword_the_pending_question_understands_is_the_answer_and_the_patient_stays_subscribed(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    post_twilio: Poster,
    level_flow: str,
    word: str,
    choice: str,
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language="es")
    start_checkin(rt, patient, MORNING, flow_id=level_flow)
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, word)
    assert patient_row(rt, patient.id).opted_out is False
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("level", choice)]
    assert texts_to(fake_twilio, patient.phone)[-1] == "Gracias."
    assert message_rows(rt, direction="inbound")[-1].kind == "reply"


def test_twilio_enforced_stop_is_an_opt_out_even_mid_question(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster, level_flow: str
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language="es")
    start_checkin(rt, patient, MORNING, flow_id=level_flow)
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, "STOP")
    assert patient_row(rt, patient.id).opted_out is True


def test_alto_with_no_conversation_is_still_an_opt_out(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language="es")
    _text(post_twilio, rt, patient.phone, "Alto")
    assert patient_row(rt, patient.id).opted_out is True


def test_alto_at_the_ketone_question_is_an_answer(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    # Depends on content/flows/diabetes-glucose-check.yaml (the content branch rewrites it): a glucose of
    # 350 leads to the ketone question, whose "Large" choice understands "alto". If the content changes the
    # path or the words, adjust the replies, not the rule: ALTO read as an answer, the patient subscribed.
    install_clock(rt, MORNING)
    patient = make_patient(language="es", conditions=["diabetes"])
    start_checkin(rt, patient, MORNING, flow_id="diabetes-glucose-check")
    run_worker(rt)
    _text(post_twilio, rt, patient.phone, "350")
    assert [a.question_id for a in answers(rt, patient.id)][-1] == "glucose"
    _text(post_twilio, rt, patient.phone, "Alto")
    assert patient_row(rt, patient.id).opted_out is False
    assert ("ketones", "large") in [(a.question_id, a.value) for a in answers(rt, patient.id)]


# ------------------------------------------------------------------------------- opt-out as a sentence
@pytest.mark.parametrize(
    ("language", "body", "line"),
    [
        ("en", "Stop. Thank you", "Reply STOP to stop all texts."),
        ("en", "don't text me anymore", "Reply STOP to stop all texts."),
        ("es", "no me manden más mensajes", "Responda PARAR para dejar de recibir todos los mensajes."),
    ],
)
def test_an_opt_out_sentence_mid_check_in_gets_one_line_and_a_flag_and_is_not_a_failed_attempt(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    at_breath_question: Callable[..., Any],
    post_twilio: Poster,
    language: str,
    body: str,
    line: str,
) -> None:
    patient = at_breath_question(language=language)
    _text(post_twilio, rt, patient.phone, body)
    assert patient_row(rt, patient.id).opted_out is False
    sent = texts_to(fake_twilio, patient.phone)
    assert sent[2:] == [line]
    inbound = message_rows(rt, direction="inbound")[-1]
    assert (inbound.needs_review, inbound.flags) == (True, ["opt_out_request"])
    assert [a.question_id for a in answers(rt, patient.id)] == ["weight"]
    _text(post_twilio, rt, patient.phone, "no")
    assert [a.question_id for a in answers(rt, patient.id)] == ["weight", "breath"]


# ------------------------------------------------------------------------------- outside a conversation
def test_symptoms_outside_a_conversation_reach_a_nurse_and_the_notice_goes_once_a_day(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    clock = install_clock(rt, MORNING)
    patient = make_patient()
    _text(post_twilio, rt, patient.phone, "my ankles are swollen today")
    assert _escalations(rt, patient.id) == [("URGENT", "symptoms_reported", "open")]
    [first] = texts_to(fake_twilio, patient.phone)
    assert "nurse" in first and first.endswith(NOTICE)
    inbound = message_rows(rt, direction="inbound")[-1]
    assert (inbound.kind, inbound.needs_review) == ("inbox", True)
    assert inbound.flags and inbound.flags[0].startswith("symptom:")

    clock.advance(dt.timedelta(hours=3))  # the same day in New York
    _text(post_twilio, rt, patient.phone, "still swollen")
    _text(post_twilio, rt, patient.phone, "ok thanks")
    sent = texts_to(fake_twilio, patient.phone)
    assert sum(NOTICE in s for s in sent) == 1  # no second notice the same day
    assert len(sent) == 2  # the second symptom text is promised a call again; "ok thanks" gets nothing
    assert _escalations(rt, patient.id) == [("URGENT", "symptoms_reported", "open")]  # joined, not piled up

    clock.advance(dt.timedelta(days=1))
    _text(post_twilio, rt, patient.phone, "ok thanks")
    assert texts_to(fake_twilio, patient.phone)[-1] == NOTICE  # a new day


def test_a_resolved_mention_outside_a_conversation_is_asked_about(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    _text(post_twilio, rt, patient.phone, "the chest pain is gone now")
    [reason] = rt.content.triage.assess("the chest pain is gone now", "en").to_confirm
    assert _escalations(rt, patient.id) == [("URGENT", reason, "open")]
    assert texts_to(fake_twilio, patient.phone) == ["Do you have chest pain right now? Reply YES or NO."]
    _text(post_twilio, rt, patient.phone, "yes")
    assert _escalations(rt, patient.id) == [("EMERGENCY", reason, "open")]
    assert "911" in texts_to(fake_twilio, patient.phone)[-1]


def test_an_emergency_outside_a_conversation_fires_every_reason(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language="es")
    body = "quiero morir, me duele el pecho"
    _text(post_twilio, rt, patient.phone, body)
    expected = rt.content.triage.assess(body, "es").emergency
    assert len(expected) == 2
    assert sorted(_escalations(rt, patient.id)) == sorted(("EMERGENCY", r, "open") for r in expected)
    [reply] = texts_to(fake_twilio, patient.phone)
    for fragment in ("911", "988", "oprima 2", "AYUDA"):
        assert fragment in reply


def test_an_opted_out_patient_saying_i_want_to_die_gets_an_emergency_and_no_text(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(opted_out=True)
    _text(post_twilio, rt, patient.phone, "I want to die")
    [(level, _reason, status)] = _escalations(rt, patient.id)
    assert (level, status) == ("EMERGENCY", "open")
    assert texts_to(fake_twilio, patient.phone) == []
    _text(post_twilio, rt, patient.phone, "my chest pain went away")  # confirm: URGENT, nothing asked
    assert [lvl for lvl, _r, _s in _escalations(rt, patient.id)] == ["EMERGENCY", "URGENT"]
    assert texts_to(fake_twilio, patient.phone) == []


def test_an_unknown_numbers_red_flag_reaches_staff(
    rt: Runtime, client: FlaskClient, fake_twilio: FakeTwilio, program: Program, post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    with rt.sessions() as session, session.begin():
        row = session.get(Program, program.id)
        assert row is not None
        row.on_call_phone = ON_CALL
    stranger = "+13125550199"
    _text(post_twilio, rt, stranger, "I want to die")
    [reply] = texts_to(fake_twilio, stranger)
    assert "911" in reply and "988" in reply
    [page] = texts_to(fake_twilio, ON_CALL)
    assert "unknown number" in page and "die" not in page  # no PHI in a page
    with rt.sessions() as session:
        [flagged] = flagged_unknown_senders(session)
        assert (flagged.from_number, flagged.body) == (stranger, "I want to die")
        assert flagged.flags and flagged.flags[0].startswith("red_flag:")
    # Visible in the care manager's queue until marked reviewed.
    create_user(rt, "nurse@example.org", "a-strong-password-2026", "care_manager", program=program.slug)
    sign_in(client, "nurse@example.org", "a-strong-password-2026")
    page_html = client.get("/queue").get_data(as_text=True)
    assert "I want to die" in page_html and stranger in page_html
    with rt.sessions() as session:
        message_id = session.scalars(select(Message.id).where(Message.from_number == stranger)).one()
    response = client.post(f"/inbox/{message_id}/reviewed", data={"csrf_token": csrf_from(page_html)})
    assert response.status_code in (302, 303)
    with rt.sessions() as session:
        assert flagged_unknown_senders(session) == []


def test_an_unknown_numbers_plain_text_is_not_flagged(
    rt: Runtime, fake_twilio: FakeTwilio, post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    _text(post_twilio, rt, "+13125550198", "hello who is this")
    with rt.sessions() as session:
        assert flagged_unknown_senders(session) == []
    [inbound] = message_rows(rt, direction="inbound")
    assert (inbound.needs_review, inbound.flags) == (True, None)
