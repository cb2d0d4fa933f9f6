"""The patient page and its actions on PostgreSQL + Redis through the real forms (CSRF tokens read from the
page): log a call (TCM attempt, CCM minutes), a one-off text (opt-out, quiet hours, reply, exactly once,
delivered to the local Twilio server), pause/resume, the needs-review inbox, acknowledge/resolve in place;
403 for another program's care manager and a refusal without the CSRF token, every action audited."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.escalation.service import open_or_join
from app.models import (
    Answer,
    AuditEvent,
    CareCall,
    ContactAttempt,
    Conversation,
    Enrollment,
    Escalation,
    Message,
    Patient,
    Program,
)
from app.programs.tcm import clock_of, open_discharge
from app.runtime import Runtime
from app.scheduling.enrollments import enroll
from app.web.auth import create_user
from tests.integration.sms_helpers import install_clock, texts_to
from tests.integration.staff_helpers import csrf_from, sign_in

PASSWORD = "correct horse battery staple"
#: 14:00 in New York: inside texting hours.
AFTERNOON = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)
#: 03:00 in New York: outside them.
NIGHT = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)


@pytest.fixture()
def south(rt: Runtime) -> Program:
    with rt.sessions() as s, s.begin():
        prog = Program(slug="south-clinic", name="South Clinic", phone_display="555-0200")
        s.add(prog)
    return prog


@pytest.fixture()
def nurse(app: Flask, rt: Runtime, program: Program, south: Program) -> FlaskClient:
    create_user(rt, "north@example.org", PASSWORD, "care_manager", program="north-clinic")
    create_user(rt, "south@example.org", PASSWORD, "care_manager", program="south-clinic")
    client = app.test_client()
    assert sign_in(client, "north@example.org", PASSWORD).status_code == 302
    return client


@pytest.fixture()
def rosa(make_patient: Callable[..., Patient]) -> Patient:
    return make_patient(given_name="Rosa", family_name="Diaz", caregiver_phone="+12025550999")


def page_token(client: FlaskClient, patient_id: int) -> tuple[str, str]:
    html = client.get(f"/patients/{patient_id}").get_data(as_text=True)
    return html, csrf_from(html)


def text_key(html: str) -> str:
    found = re.search(r'name="key" value="([^"]+)"', html)
    assert found
    return found.group(1)


def audited(rt: Runtime, action: str, patient_id: int) -> int:
    with rt.sessions() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == action, AuditEvent.subject_id == patient_id)
            )
            or 0
        )


def add_weights(rt: Runtime, patient: Patient, weights: list[float], start: dt.datetime) -> None:
    with rt.sessions() as s, s.begin():
        conversation = Conversation(
            patient_id=patient.id, flow_id="hf-daily-check", flow_version="1", status="completed"
        )
        s.add(conversation)
        s.flush()
        for day, weight in enumerate(weights):
            s.add(
                Answer(
                    patient_id=patient.id,
                    conversation_id=conversation.id,
                    flow_id="hf-daily-check",
                    question_id="weight",
                    kind="number",
                    value_number=weight,
                    unit="lb",
                    raw=f"{weight:g}",
                    channel="sms",
                    answered_at=start + dt.timedelta(days=day),
                )
            )


def test_the_page_shows_contact_times_consent_charts_and_answers_by_question_text(
    nurse: FlaskClient, rt: Runtime, rosa: Patient
) -> None:
    install_clock(rt, AFTERNOON)
    add_weights(rt, rosa, [180, 181, 184], AFTERNOON - dt.timedelta(days=3))
    response = nurse.get(f"/patients/{rosa.id}")
    html = response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert f'href="tel:{rosa.phone}"' in html and 'href="tel:+12025550999"' in html
    assert "America/New_York" in html and "their time 14:00" in html
    # The weight chart: an SVG with title/desc, a dashed threshold line at the latest reading + 3 lb and
    # the lowest of the week + 5 lb, and the readings as a table.
    chart = html[html.index('id="chart-weight"') : html.index('id="chart-glucose"')]
    assert 'role="img"' in chart and "<title" in chart and "<desc" in chart
    assert 'class="threshold" data-value="187"' in chart and 'data-value="185"' in chart
    assert chart.count("<circle") == 3 and "<table" in chart
    # Answers by the question's words, not node ids.
    assert "What is your weight today in pounds?" in html and "hf-daily-check / weight" not in html
    assert "184 lb" in html
    assert audited(rt, "patient.viewed", rosa.id) == 1

    spanish = nurse.get(f"/patients/{rosa.id}?lang=es").get_data(as_text=True)
    assert "¿Qué peso tiene hoy, en libras?" in spanish and "Peso" in spanish
    assert "Llamar a Rosa Diaz" in spanish


def test_logging_a_call_feeds_the_tcm_clock_and_counts_ccm_minutes(
    nurse: FlaskClient, rt: Runtime, rosa: Patient
) -> None:
    clock = install_clock(rt, AFTERNOON)
    with rt.sessions() as s, s.begin():
        discharge = open_discharge(
            s,
            s.merge(rosa),
            visit_number="V1",
            discharged_at=AFTERNOON - dt.timedelta(hours=20),
            tz="America/New_York",
            unit=None,
            diagnoses=[],
        )
        discharge_id = discharge.id
    for outcome, minutes in (("no_answer", "2"), ("voicemail", "15")):
        _, token = page_token(nurse, rosa.id)
        posted = nurse.post(
            f"/patients/{rosa.id}/calls",
            data={"csrf_token": token, "outcome": outcome, "minutes": minutes, "note": "left callback number"},
        )
        assert posted.status_code == 302
        clock.advance(dt.timedelta(minutes=30))
    with rt.sessions() as s:
        found = s.get(type(discharge), discharge_id)
        assert found is not None
        assert [a.outcome for a in found.attempts] == ["no_answer", "voicemail"]
        state = clock_of(found, rt.now())
        assert (state.status, state.met_by) == ("met", "two_attempts")  # two documented attempts in time
        calls = s.scalars(select(CareCall).where(CareCall.patient_id == rosa.id)).all()
        assert sorted(c.minutes for c in calls) == [2, 15] and all(c.contact_attempt_id for c in calls)
    html = nurse.get(f"/patients/{rosa.id}").get_data(as_text=True)
    row = re.search(r'<tr data-month="2026-11">(.*?)</tr>', html)
    assert row and "<td>17</td>" in row.group(1) and "3 minutes to go" in row.group(1)
    assert audited(rt, "patient.call_logged", rosa.id) == 2

    # Three more minutes: the month meets CPT 99490's 20 minutes.
    _, token = page_token(nurse, rosa.id)
    nurse.post(f"/patients/{rosa.id}/calls", data={"csrf_token": token, "outcome": "reached", "minutes": "3"})
    html = nurse.get(f"/patients/{rosa.id}").get_data(as_text=True)
    row = re.search(r'<tr data-month="2026-11">(.*?)</tr>', html)
    assert row and "<td>20</td>" in row.group(1) and "met" in row.group(1)

    # A bad outcome or minutes is refused and saves nothing.
    _, token = page_token(nurse, rosa.id)
    refused = nurse.post(
        f"/patients/{rosa.id}/calls",
        data={"csrf_token": token, "outcome": "texted", "minutes": "-4"},
        follow_redirects=True,
    )
    text = refused.get_data(as_text=True)
    assert "Choose how the call went." in text and "Minutes must be a whole number" in text
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CareCall)) == 3


def test_a_call_without_a_discharge_counts_minutes_only(nurse: FlaskClient, rt: Runtime, rosa: Patient) -> None:
    install_clock(rt, AFTERNOON)
    _, token = page_token(nurse, rosa.id)
    nurse.post(f"/patients/{rosa.id}/calls", data={"csrf_token": token, "outcome": "reached", "minutes": "12"})
    with rt.sessions() as s:
        [call] = s.scalars(select(CareCall)).all()
        assert call.contact_attempt_id is None and call.minutes == 12
        assert s.scalar(select(func.count()).select_from(ContactAttempt)) == 0


def test_a_one_off_text_is_sent_once_and_respects_opt_out_and_quiet_hours(
    nurse: FlaskClient, rt: Runtime, rosa: Patient, fake_twilio: Any, run_jobs: Callable[[], int]
) -> None:
    clock = install_clock(rt, NIGHT)
    html, token = page_token(nurse, rosa.id)
    key = text_key(html)
    night = nurse.post(
        f"/patients/{rosa.id}/text",
        data={"csrf_token": token, "key": key, "body": "Please call us back."},
        follow_redirects=True,
    )
    assert "outside texting hours" in night.get_data(as_text=True)
    assert audited(rt, "patient.text_refused", rosa.id) == 1

    clock.set(AFTERNOON)
    html, token = page_token(nurse, rosa.id)
    key = text_key(html)
    for _ in range(2):  # a double submit of the same form
        posted = nurse.post(
            f"/patients/{rosa.id}/text", data={"csrf_token": token, "key": key, "body": "Please call us back."}
        )
        assert posted.status_code == 302
    run_jobs()
    assert texts_to(fake_twilio, rosa.phone) == ["Please call us back."]
    with rt.sessions() as s:
        [message] = s.scalars(select(Message).where(Message.kind == "staff")).all()
        assert message.status in {"sent", "queued", "delivered"} and message.provider_sid
    assert audited(rt, "patient.text_sent", rosa.id) == 1

    # A reply in an open conversation goes out at night too.
    clock.set(NIGHT)
    with rt.sessions() as s, s.begin():
        s.add(Conversation(patient_id=rosa.id, flow_id="hf-daily-check", flow_version="1", status="active"))
    html, token = page_token(nurse, rosa.id)
    nurse.post(f"/patients/{rosa.id}/text", data={"csrf_token": token, "key": text_key(html), "body": "Thanks!"})
    run_jobs()
    assert texts_to(fake_twilio, rosa.phone) == ["Please call us back.", "Thanks!"]

    # Never to an opted-out patient, even as a reply.
    with rt.sessions() as s, s.begin():
        patient = s.get(Patient, rosa.id)
        assert patient is not None
        patient.opted_out = True
    html, token = page_token(nurse, rosa.id)
    assert 'name="body"' not in html
    refused = nurse.post(
        f"/patients/{rosa.id}/text",
        data={"csrf_token": token, "key": "k" * 24, "body": "Are you there?"},
        follow_redirects=True,
    )
    assert "opted out" in refused.get_data(as_text=True)
    run_jobs()
    assert len(texts_to(fake_twilio, rosa.phone)) == 2


def test_pause_and_resume_outreach_with_a_reason(nurse: FlaskClient, rt: Runtime, rosa: Patient) -> None:
    install_clock(rt, AFTERNOON)
    with rt.sessions() as s, s.begin():
        enrollment = enroll(s, rt, s.merge(rosa), "hf-remote-monitoring", AFTERNOON.date(), AFTERNOON)
        enrollment_id = enrollment.id
    _, token = page_token(nurse, rosa.id)
    without = nurse.post(
        f"/patients/{rosa.id}/enrollments/{enrollment_id}/pause", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Give a reason." in without.get_data(as_text=True)
    nurse.post(
        f"/patients/{rosa.id}/enrollments/{enrollment_id}/pause",
        data={"csrf_token": token, "reason": "in hospital"},
    )
    with rt.sessions() as s:
        assert s.get(Enrollment, enrollment_id).status == "paused"  # type: ignore[union-attr]
    html = nurse.get(f"/patients/{rosa.id}").get_data(as_text=True)
    assert "in hospital" in html and "Resume outreach" in html
    _, token = page_token(nurse, rosa.id)
    nurse.post(
        f"/patients/{rosa.id}/enrollments/{enrollment_id}/resume",
        data={"csrf_token": token, "reason": "home again"},
    )
    with rt.sessions() as s:
        assert s.get(Enrollment, enrollment_id).status == "active"  # type: ignore[union-attr]
    assert audited(rt, "patient.outreach_paused", rosa.id) == 1
    assert audited(rt, "patient.outreach_resumed", rosa.id) == 1


def test_the_inbox_lists_needs_review_texts_and_clears_them_with_who_and_when(
    nurse: FlaskClient, rt: Runtime, rosa: Patient
) -> None:
    install_clock(rt, AFTERNOON)
    with rt.sessions() as s, s.begin():
        message = Message(
            patient_id=rosa.id,
            direction="inbound",
            channel="sms",
            body="my feet look puffy, is that ok?",
            status="received",
            needs_review=True,
            created_at=AFTERNOON,
        )
        s.add(message)
        s.flush()
        message_id = message.id
    html, token = page_token(nurse, rosa.id)
    inbox = html[html.index('id="inbox"') : html.index('id="charts"')]
    assert "my feet look puffy" in inbox
    nurse.post(f"/patients/{rosa.id}/inbox/{message_id}/clear", data={"csrf_token": token})
    with rt.sessions() as s:
        assert s.get(Message, message_id).needs_review is False  # type: ignore[union-attr]
    html = nurse.get(f"/patients/{rosa.id}").get_data(as_text=True)
    inbox = html[html.index('id="inbox"') : html.index('id="charts"')]
    assert "Nothing to review." in inbox and "north@example.org at" in inbox


def test_escalations_are_acknowledged_and_resolved_in_place(nurse: FlaskClient, rt: Runtime, rosa: Patient) -> None:
    with rt.sessions() as s, s.begin():
        escalation_id = open_or_join(
            s,
            s.merge(rosa),
            level="URGENT",
            reason="weight_gain",
            rule_id="weight-gain-1-day",
            detail={"weight_rise": 4.0},
            conversation_id=None,
            now=dt.datetime.now(dt.UTC),
        ).id
    html, token = page_token(nurse, rosa.id)
    section = html[html.index('id="escalations"') : html.index('id="inbox"')]
    seen = re.search(r'name="seen" value="([^"]*)"', section)
    assert seen
    done = nurse.post(
        f"/episodes/{rosa.id}/acknowledge",
        data={"csrf_token": token, "ids": str(escalation_id), "seen": seen.group(1), "back": f"/patients/{rosa.id}"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/patients/{rosa.id}")
    html, token = page_token(nurse, rosa.id)
    assert "Acknowledged: Rosa Diaz." in html and 'action="/undo"' in html  # the confirmation offers undo
    section = html[html.index('id="escalations"') : html.index('id="inbox"')]
    seen = re.search(r'name="seen" value="([^"]*)"', section)
    assert seen
    nurse.post(
        f"/episodes/{rosa.id}/resolve",
        data={
            "csrf_token": token,
            "ids": str(escalation_id),
            "seen": seen.group(1),
            "outcome": "reached_patient",
            "note": "Spoke with her.\nDiuretic adjusted.",
            "back": f"/patients/{rosa.id}",
        },
    )
    with rt.sessions() as s:
        escalation = s.get(Escalation, escalation_id)
        assert escalation is not None and escalation.status == "resolved"
    html = nurse.get(f"/patients/{rosa.id}").get_data(as_text=True)
    assert "None open." in html and "Diuretic adjusted." in html


ACTIONS = [
    ("calls", {"outcome": "reached", "minutes": "5"}),
    ("text", {"key": "a" * 24, "body": "hello"}),
    ("inbox/1/clear", {}),
    ("enrollments/1/pause", {"reason": "x"}),
]


@pytest.mark.parametrize(("path", "data"), ACTIONS)
def test_another_programs_care_manager_gets_403_and_a_form_without_csrf_is_refused(
    app: Flask,
    rt: Runtime,
    nurse: FlaskClient,
    rosa: Patient,
    fake_twilio: Any,
    run_jobs: Callable[[], int],
    path: str,
    data: dict[str, str],
) -> None:
    install_clock(rt, AFTERNOON)
    south = app.test_client()
    sign_in(south, "south@example.org", PASSWORD)
    token = csrf_from(south.get("/queue").get_data(as_text=True))
    assert south.get(f"/patients/{rosa.id}").status_code == 403
    assert south.post(f"/patients/{rosa.id}/{path}", data={"csrf_token": token, **data}).status_code == 403
    # The patient's own care manager, without the token: refused before anything happens.
    no_token = nurse.post(f"/patients/{rosa.id}/{path}", data=data)
    assert no_token.status_code in {400, 403}
    run_jobs()
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CareCall)) == 0
        assert s.scalar(select(func.count()).select_from(Message).where(Message.kind == "staff")) == 0
    assert fake_twilio.messages == []


def test_the_care_team_inbox_lists_only_my_programs_texts_and_clears_them(
    app: Flask, nurse: FlaskClient, rt: Runtime, rosa: Patient, make_patient: Callable[..., Patient], south: Program
) -> None:
    install_clock(rt, AFTERNOON)
    omar = make_patient(given_name="Omar", family_name="Haddad", program_id=south.id)
    ids = {}
    with rt.sessions() as s, s.begin():
        for who, body in ((rosa, "can I take my pill with food?"), (omar, "south clinic question")):
            message = Message(
                patient_id=who.id,
                direction="inbound",
                channel="sms",
                body=body,
                status="received",
                needs_review=True,
                created_at=AFTERNOON,
            )
            s.add(message)
            s.flush()
            ids[who.given_name] = message.id
    page = nurse.get("/inbox")
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "can I take my pill with food?" in html and "south clinic question" not in html
    assert "Needs review (1)" in html
    token = csrf_from(html)
    cleared = nurse.post(f"/patients/{rosa.id}/inbox/{ids['Rosa']}/clear", data={"csrf_token": token, "back": "/inbox"})
    assert cleared.headers["Location"].endswith("/inbox")
    html = nurse.get("/inbox").get_data(as_text=True)
    waiting = html[: html.index("Handled today")]
    assert "can I take my pill with food?" not in waiting and "Nothing to review." in waiting
    handled = html[html.index("Handled today") :]
    assert "north@example.org" in handled and "can I take my pill with food?" in handled
    # Another program's message cannot be cleared through this patient, nor through its own.
    assert nurse.post(f"/patients/{rosa.id}/inbox/{ids['Omar']}/clear", data={"csrf_token": token}).status_code == 404
    assert nurse.post(f"/patients/{omar.id}/inbox/{ids['Omar']}/clear", data={"csrf_token": token}).status_code == 403
    with rt.sessions() as s:
        assert s.get(Message, ids["Omar"]).needs_review is True  # type: ignore[union-attr]
        viewed = s.scalars(select(AuditEvent).where(AuditEvent.action == "inbox.viewed")).all()
        assert viewed and viewed[0].detail["message_ids"] == [ids["Rosa"]]


def test_the_transcript_groups_sms_and_voice_by_conversation_with_delivery_and_call_status(
    nurse: FlaskClient, rt: Runtime, rosa: Patient
) -> None:
    from app.models import Call

    install_clock(rt, AFTERNOON)
    with rt.sessions() as s, s.begin():
        by_text = Conversation(
            patient_id=rosa.id, flow_id="hf-daily-check", flow_version="1", status="completed", started_at=AFTERNOON
        )
        by_phone = Conversation(
            patient_id=rosa.id,
            flow_id="phq2",
            flow_version="1",
            status="expired",
            channel="voice",
            started_at=AFTERNOON + dt.timedelta(hours=1),
        )
        s.add_all([by_text, by_phone])
        s.flush()
        s.add_all(
            [
                Message(
                    patient_id=rosa.id,
                    conversation_id=by_text.id,
                    direction="outbound",
                    channel="sms",
                    body="What is your weight today?",
                    status="undelivered",
                    error_code="30003",
                    created_at=AFTERNOON,
                ),
                Message(
                    patient_id=rosa.id,
                    conversation_id=by_phone.id,
                    direction="outbound",
                    channel="voice",
                    body="Over the last 2 weeks...",
                    status="said",
                    created_at=AFTERNOON + dt.timedelta(hours=1),
                ),
                Call(
                    patient_id=rosa.id,
                    conversation_id=by_phone.id,
                    status="voicemail",
                    call_key="k1",
                    tries=2,
                    created_at=AFTERNOON + dt.timedelta(hours=1),
                    updated_at=AFTERNOON + dt.timedelta(hours=1),
                ),
            ]
        )
    html = nurse.get(f"/patients/{rosa.id}").get_data(as_text=True)
    section = html[html.index('id="transcript"') :]
    articles = section.split('<article class="conversation"')[1:]
    assert len(articles) == 2
    phone, text = articles  # newest conversation first
    assert "phone call" in phone and "no reply" in phone and "said on the call" in phone
    assert 'data-call-status="voicemail"' in phone and "went to voicemail (2 tries)" in phone
    assert "Heart failure daily check-in" in text and "text messages" in text
    assert 'data-status="undelivered"' in text and "not delivered" in text and "30003" in text
    spanish = nurse.get(f"/patients/{rosa.id}?lang=es").get_data(as_text=True)
    assert "fue al buzón de voz (2 intentos)" in spanish and "dicho en la llamada" in spanish


def test_a_call_note_over_the_limit_is_refused_not_cut(nurse: FlaskClient, rt: Runtime, rosa: Patient) -> None:
    install_clock(rt, AFTERNOON)
    page, token = page_token(nurse, rosa.id)
    assert 'id="call-note" name="note" rows="2" maxlength="2000"' in page
    refused = nurse.post(
        f"/patients/{rosa.id}/calls",
        data={"csrf_token": token, "outcome": "reached", "minutes": "5", "note": "x" * 2001},
        follow_redirects=True,
    )
    assert "The note is too long (at most 2000 characters)" in refused.get_data(as_text=True)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CareCall)) == 0
    _, token = page_token(nurse, rosa.id)
    nurse.post(
        f"/patients/{rosa.id}/calls",
        data={"csrf_token": token, "outcome": "reached", "minutes": "5", "note": "y" * 2000},
    )
    with rt.sessions() as s:
        assert [c.note for c in s.scalars(select(CareCall)).all()] == ["y" * 2000]
