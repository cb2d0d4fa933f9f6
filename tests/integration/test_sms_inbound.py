"""Inbound texts as DESIGN §4.1 and §4.3 say: consent keywords before any flow (English and Spanish),
unknown senders, replies after expiry, long, emoji and gibberish bodies; every one answered 200 with TwiML
and nothing a patient sends is lost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import Conversation, Escalation
from app.runtime import Runtime
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import (
    answers,
    inbound_params,
    install_clock,
    message_rows,
    patient_row,
    run_worker,
    start_checkin,
    texts_to,
    transcript,
)
from tests.support.fake_twilio import FakeTwilio

Poster = Callable[..., Any]
# 10:00 in New York (EST) on a Tuesday.
MORNING = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
PROGRAM_NAME = "North Clinic"
PROGRAM_PHONE = "555-0100"
WEIGHT_REPROMPT = "Sorry, I didn't understand. Please reply with your weight in pounds, like 182."
NOTICE = f"This number is not watched all the time. In an emergency call 911. Questions: {PROGRAM_PHONE}"
STOP_LINE = "Reply STOP to stop all texts."


def _text(post: Poster, rt: Runtime, phone: str, body: str) -> None:
    """The patient texts ``body``; the webhook must answer 200 with TwiML, then replies go out."""
    response = post("/twilio/sms", inbound_params(phone, body))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True).strip().endswith("<Response />")
    run_worker(rt)


def _conversation(rt: Runtime, patient_id: int) -> Conversation:
    with rt.sessions() as session:
        row = session.scalars(
            select(Conversation).where(Conversation.patient_id == patient_id).order_by(Conversation.id.desc())
        ).first()
        assert row is not None
        return row


@pytest.fixture()
def in_checkin(rt: Runtime, make_patient: Callable[..., Any], fake_twilio: FakeTwilio) -> Callable[..., Any]:
    """A patient who was just asked today's weight."""

    def make(**overrides: Any) -> Any:
        install_clock(rt, MORNING)
        patient = make_patient(**overrides)
        start_checkin(rt, patient, MORNING)
        run_worker(rt)
        assert len(texts_to(fake_twilio, patient.phone)) == 1
        return patient

    return make


@pytest.mark.parametrize(
    ("keyword", "confirmation"),
    [
        ("STOP", "You will not get more messages from us"),
        ("  stop! ", "You will not get more messages from us"),
        ("Unsubscribe", "You will not get more messages from us"),
        ("PARAR", "Ya no va a recibir nuestros mensajes. Responda SI o START"),
        ("baja", "Ya no va a recibir nuestros mensajes"),
    ],
)
def test_opt_out_keyword_stops_everything_and_is_confirmed_once_in_its_language(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    in_checkin: Callable[..., Any],
    post_twilio: Poster,
    keyword: str,
    confirmation: str,
) -> None:
    patient = in_checkin(language="en")
    _text(post_twilio, rt, patient.phone, keyword)
    _text(post_twilio, rt, patient.phone, keyword)  # again: not confirmed twice
    sent = texts_to(fake_twilio, patient.phone)
    assert len(sent) == 2
    assert sent[1].startswith(f"{PROGRAM_NAME}: {confirmation}")
    assert patient_row(rt, patient.id).opted_out is True
    conversation = _conversation(rt, patient.id)
    assert (conversation.status, conversation.result) == ("stopped", "opted_out")
    assert answers(rt, patient.id) == []  # a keyword is never an answer
    # The conversation's reminder never comes.
    tick(rt, MORNING + dt.timedelta(hours=5))
    run_worker(rt)
    assert len(texts_to(fake_twilio, patient.phone)) == 2


@pytest.mark.parametrize(
    ("opt_in", "language", "confirmation"),
    [
        ("START", "en", "You will get messages from us again"),
        ("unstop", "en", "You will get messages from us again"),
        ("Yes", "en", "You will get messages from us again"),
        ("SÍ", "es", "Va a recibir nuestros mensajes otra vez"),
    ],
)
def test_opt_in_keywords_while_opted_out(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    post_twilio: Poster,
    opt_in: str,
    language: str,
    confirmation: str,
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient(language=language)
    _text(post_twilio, rt, patient.phone, "STOP")
    assert patient_row(rt, patient.id).opted_out is True
    _text(post_twilio, rt, patient.phone, opt_in)
    assert patient_row(rt, patient.id).opted_out is False
    assert texts_to(fake_twilio, patient.phone)[-1] == f"{PROGRAM_NAME}: {confirmation}" + (
        ". Reply STOP to stop them." if language == "en" else ". Responda PARAR para dejar de recibirlos."
    )


def test_a_text_from_an_opted_out_patient_is_kept_for_review_and_not_answered(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    _text(post_twilio, rt, patient.phone, "STOP")
    _text(post_twilio, rt, patient.phone, "my ankles are swollen today")
    assert patient_row(rt, patient.id).opted_out is True
    inbound = message_rows(rt, direction="inbound")
    assert [(m.body, m.needs_review) for m in inbound][-1] == ("my ankles are swollen today", True)
    assert len(texts_to(fake_twilio, patient.phone)) == 1  # only the STOP confirmation


def test_yes_is_not_an_opt_in_keyword_unless_opted_out(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    _text(post_twilio, rt, patient.phone, "YES")
    [inbound] = message_rows(rt, direction="inbound")
    assert (inbound.kind, inbound.needs_review) == ("inbox", True)
    # Not an opt-in confirmation: only the daily "not watched all the time" notice (issue 7 item 6).
    assert texts_to(fake_twilio, patient.phone) == [NOTICE]


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("HELP", f"{PROGRAM_NAME}: For help call {PROGRAM_PHONE}. Reply STOP to stop messages."),
        ("info", f"{PROGRAM_NAME}: For help call {PROGRAM_PHONE}. Reply STOP to stop messages."),
        ("AYUDA", f"{PROGRAM_NAME}: Para ayuda llame al {PROGRAM_PHONE}. Responda PARAR para no recibir mensajes."),
    ],
)
def test_help_names_the_program_its_number_and_how_to_stop(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    in_checkin: Callable[..., Any],
    post_twilio: Poster,
    keyword: str,
    expected: str,
) -> None:
    patient = in_checkin(language="en")
    _text(post_twilio, rt, patient.phone, keyword)
    reply = texts_to(fake_twilio, patient.phone)[-1]
    assert reply.startswith(expected)
    assert "911" in reply
    assert patient_row(rt, patient.id).opted_out is False
    assert _conversation(rt, patient.id).status == "active"  # help does not end the check-in
    _text(post_twilio, rt, patient.phone, "182")
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("weight", 182.0)]


def test_please_stop_texting_me_is_not_an_opt_out_and_reaches_the_care_team(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    _text(post_twilio, rt, patient.phone, "please stop texting me")
    assert patient_row(rt, patient.id).opted_out is False
    [inbound] = message_rows(rt, direction="inbound")
    assert (inbound.body, inbound.kind, inbound.needs_review, inbound.patient_id) == (
        "please stop texting me",
        "inbox",
        True,
        patient.id,
    )
    assert inbound.flags == ["opt_out_request"]
    assert texts_to(fake_twilio, patient.phone) == [STOP_LINE]  # how to stop; no opt-out confirmation


def test_please_stop_during_a_check_in_is_not_an_opt_out(
    rt: Runtime, fake_twilio: FakeTwilio, in_checkin: Callable[..., Any], post_twilio: Poster
) -> None:
    patient = in_checkin()
    _text(post_twilio, rt, patient.phone, "please stop texting me")
    assert patient_row(rt, patient.id).opted_out is False
    assert texts_to(fake_twilio, patient.phone)[1:] == [STOP_LINE]  # one line, never "Sorry, I didn't…"
    [inbound] = message_rows(rt, direction="inbound")
    assert (inbound.needs_review, inbound.flags) == (True, ["opt_out_request"])


def test_unknown_sender_gets_a_generic_reply_without_phi_and_is_kept_for_review(
    client: FlaskClient,
    rt: Runtime,
    fake_twilio: FakeTwilio,
    in_checkin: Callable[..., Any],
    post_twilio: Poster,
) -> None:
    in_checkin(given_name="Rosalind", family_name="Whitfield")  # someone the reply must not reveal
    stranger = "+13125550199"
    _text(post_twilio, rt, stranger, "Hi, is this about my mother's heart test?")
    [reply] = texts_to(fake_twilio, stranger)
    assert "911" in reply
    for secret in ("Rosalind", "Whitfield", PROGRAM_NAME, "North", "heart", "Heart"):
        assert secret not in reply
    [inbound] = message_rows(rt, direction="inbound")
    assert (inbound.patient_id, inbound.needs_review, inbound.from_number) == (None, True, stranger)
    assert inbound.body == "Hi, is this about my mother's heart test?"


def test_reply_after_the_conversation_expired_goes_to_the_inbox(
    rt: Runtime, fake_twilio: FakeTwilio, in_checkin: Callable[..., Any], post_twilio: Poster
) -> None:
    patient = in_checkin()
    tick(rt, MORNING + dt.timedelta(hours=4))  # the reminder, 14:00 in New York
    run_worker(rt)
    tick(rt, MORNING + dt.timedelta(hours=24, minutes=1))  # no answer in 24 h: expired
    run_worker(rt)
    assert _conversation(rt, patient.id).status == "expired"
    before = [(a.question_id, a.kind) for a in answers(rt, patient.id)]
    sent = texts_to(fake_twilio, patient.phone)
    assert len(sent) == 2 and sent[1].startswith("Reminder:")

    install_clock(rt, MORNING + dt.timedelta(hours=26))
    _text(post_twilio, rt, patient.phone, "182 sorry I was out")
    [inbound] = message_rows(rt, direction="inbound")
    assert (inbound.kind, inbound.needs_review, inbound.body) == ("inbox", True, "182 sorry I was out")
    assert [(a.question_id, a.kind) for a in answers(rt, patient.id)] == before  # nothing saved from it
    assert texts_to(fake_twilio, patient.phone) == [*sent, NOTICE]


def test_a_2000_character_body_is_stored_to_1600_and_gets_the_reprompt(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, in_checkin: Callable[..., Any], post_twilio: Poster
) -> None:
    patient = in_checkin()
    body = ("I am not sure what to say here, ñ and ü are fine. " * 50)[:2000]
    assert len(body) == 2000
    _text(post_twilio, rt, patient.phone, body)
    [inbound] = message_rows(rt, direction="inbound")
    assert inbound.body == body[:1600]
    assert texts_to(fake_twilio, patient.phone)[-1].startswith(WEIGHT_REPROMPT)
    listed = transcript(client, patient.id).values()
    assert [m["body"] for m in listed if m["direction"] == "inbound"] == [body[:1600]]


def test_a_1600_character_unicode_body_is_stored_whole(
    rt: Runtime, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    body = ("Señora Müller 💊🙂 " * 100)[:1600]
    _text(post_twilio, rt, patient.phone, body)
    [inbound] = message_rows(rt, direction="inbound")
    assert inbound.body == body


@pytest.mark.parametrize("body", ["😀😀😀", "🙂", "asdkj qwpoe zzxq", "???"])
def test_emoji_only_and_gibberish_get_the_reprompt(
    rt: Runtime, fake_twilio: FakeTwilio, in_checkin: Callable[..., Any], post_twilio: Poster, body: str
) -> None:
    patient = in_checkin()
    _text(post_twilio, rt, patient.phone, body)
    sent = texts_to(fake_twilio, patient.phone)
    assert len(sent) == 2
    assert sent[1].startswith(WEIGHT_REPROMPT)
    assert answers(rt, patient.id) == []
    [inbound] = message_rows(rt, direction="inbound")
    assert (inbound.body, inbound.needs_review) == (body, True)
    assert _conversation(rt, patient.id).status == "active"


def test_red_flag_outside_a_conversation_opens_an_emergency_and_says_911(
    rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], post_twilio: Poster
) -> None:
    install_clock(rt, MORNING)
    patient = make_patient()
    _text(post_twilio, rt, patient.phone, "I have chest pain")
    [reply] = texts_to(fake_twilio, patient.phone)
    assert "911" in reply
    with rt.sessions() as session:
        levels = session.scalars(select(Escalation.level).where(Escalation.patient_id == patient.id)).all()
    assert levels == ["EMERGENCY"]
    [inbound] = message_rows(rt, direction="inbound")
    assert inbound.needs_review is True
