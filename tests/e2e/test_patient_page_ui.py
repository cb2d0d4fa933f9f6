"""The patient page in a real headless Chromium (Debian's /usr/bin/chromium) against the app served over
real HTTP on PostgreSQL + Redis, in English and in Spanish: the weight chart with its threshold line, a
call logged (feeding the TCM clock and the month's CCM minutes) and a one-off text that reaches the local
Twilio server; at 1280 px and at 390 px wide, driven by keyboard where it matters. Screenshots go to
test-artifacts/screenshots/ (patient-en.png, patient-es.png, patient-390-en.png, patient-390-es.png)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from app.models import Answer, CareCall, ContactAttempt, Conversation, Message, Patient, Program, User
from app.programs.tcm import open_discharge
from app.runtime import Runtime
from app.web.auth import create_user
from tests.e2e.test_care_manager_ui import (  # noqa: F401 - pytest fixtures used by name
    PASSWORD,
    SCREENSHOTS,
    _screenshot_dir,
    browser,
    live,
    sign_in,
)
from tests.integration.sms_helpers import install_clock

pytestmark = pytest.mark.browser

#: 14:00 in New York, inside texting hours.
AFTERNOON = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)

WORDS = {
    "en": {
        "weight": "Weight",
        "voicemail": "Left a voicemail",
        "minutes": "Minutes spent (care management)",
        "log": "Log call",
        "logged": "Call logged.",
        "text_to": "Text to Rosa Diaz",
        "send": "Send text",
        "queued": "Text queued.",
        "tcm": "counts for TCM",
        "to_go": "5 minutes to go",
        "sent": "sent",
        "call": "Call Rosa Diaz at",
    },
    "es": {
        "weight": "Peso",
        "voicemail": "Dejé un mensaje de voz",
        "minutes": "Minutos dedicados (gestión de cuidados)",
        "log": "Registrar llamada",
        "logged": "Llamada registrada.",
        "text_to": "Mensaje para Rosa Diaz",
        "send": "Enviar mensaje",
        "queued": "Mensaje en cola.",
        "tcm": "cuenta para TCM",
        "to_go": "faltan 5 minutos",
        "sent": "enviado",
        "call": "Llamar a Rosa Diaz al",
    },
}


def seed(rt: Runtime, patient: Patient) -> int:
    """A week of daily weights (the last one up 4 lb) and an open discharge; returns the discharge id."""
    with rt.sessions() as s, s.begin():
        conversation = Conversation(
            patient_id=patient.id, flow_id="hf-daily-check", flow_version="1", status="completed"
        )
        s.add(conversation)
        s.flush()
        for n, weight in enumerate([181, 180, 181, 182, 181, 180, 184]):
            s.add(
                Answer(
                    patient_id=patient.id,
                    conversation_id=conversation.id,
                    flow_id="hf-daily-check",
                    question_id="weight",
                    kind="number",
                    value_number=float(weight),
                    unit="lb",
                    raw=str(weight),
                    channel="sms",
                    answered_at=AFTERNOON - dt.timedelta(days=6 - n, hours=4),
                )
            )
        discharge = open_discharge(
            s,
            s.merge(patient),
            visit_number="V9",
            discharged_at=AFTERNOON - dt.timedelta(hours=26),
            tz="America/New_York",
            unit=None,
            diagnoses=[],
        )
        return discharge.id


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("width", [1280, 390])
def test_weight_chart_call_log_and_one_off_text(
    browser: Browser,  # noqa: F811 - the imported fixture
    live: str,  # noqa: F811 - the imported fixture
    rt: Runtime,
    program: Program,
    make_patient: Callable[..., Patient],
    fake_twilio: Any,
    run_jobs: Callable[[], int],
    lang: str,
    width: int,
) -> None:
    words = WORDS[lang]
    install_clock(rt, AFTERNOON)
    nurse: User = create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program=program.slug)
    patient = make_patient(given_name="Rosa", family_name="Diaz", caregiver_phone="+12025550999")
    discharge_id = seed(rt, patient)
    context = browser.new_context(locale="en-US", viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    tab: Page = context.new_page()
    try:
        sign_in(tab, live, nurse.email, PASSWORD)
        tab.goto(f"{live}/patients/{patient.id}?lang={lang}")

        # The weight chart: an SVG image named by its title, with its dashed threshold lines drawn.
        chart = tab.locator("svg[data-chart=weight]")
        expect(chart).to_be_visible()
        expect(tab.get_by_role("img", name=words["weight"])).to_be_visible()
        threshold = chart.locator("g.threshold[data-value='187']")  # 184 + 3 lb: the line and its label
        expect(threshold).to_be_visible()
        expect(threshold).to_contain_text("187")
        # A horizontal line has no height (Playwright calls it hidden): it must cross most of the chart.
        line = threshold.locator("line").bounding_box()
        frame = chart.bounding_box()
        assert line is not None and frame is not None and line["width"] > frame["width"] * 0.8
        expect(chart.locator("circle")).to_have_count(7)
        expect(tab.get_by_role("link", name=words["call"])).to_have_attribute("href", f"tel:{patient.phone}")
        tab.locator("#charts").screenshot(path=str(SCREENSHOTS / f"patient-chart-{width}-{lang}.png"))

        # Log a call by keyboard: choose the outcome, the minutes, submit.
        tab.get_by_label(words["voicemail"]).check()
        minutes = tab.get_by_label(words["minutes"])
        minutes.fill("15")
        minutes.press("Enter")  # submits the form, as a keyboard user would
        expect(tab.locator(".flash")).to_contain_text(words["logged"])
        calls = tab.locator("table.calls")
        expect(calls).to_contain_text(words["voicemail"])
        expect(calls).to_contain_text(words["tcm"])
        expect(tab.locator("tr[data-month='2026-11']")).to_contain_text(words["to_go"])
        with rt.sessions() as s:
            [call] = s.scalars(select(CareCall).where(CareCall.patient_id == patient.id)).all()
            assert call.minutes == 15 and call.outcome == "voicemail"
            attempt = s.get(ContactAttempt, call.contact_attempt_id)
            assert attempt is not None and attempt.discharge_id == discharge_id

        # A one-off text, typed and sent by keyboard; it reaches the local Twilio server.
        body = tab.get_by_label(words["text_to"])
        body.fill("Hola Rosa, please call us back today.")
        body.press("Tab")
        expect(tab.get_by_role("button", name=words["send"])).to_be_focused()
        tab.keyboard.press("Enter")
        expect(tab.locator(".flash")).to_contain_text(words["queued"])
        run_jobs()
        assert [m["Body"] for m in fake_twilio.messages if m["To"] == patient.phone] == [
            "Hola Rosa, please call us back today."
        ]
        tab.reload()
        row = tab.locator("table.messages tr", has_text="please call us back today")
        expect(row.locator("td[data-status]")).to_contain_text(words["sent"])
        with rt.sessions() as s:
            [message] = s.scalars(select(Message).where(Message.kind == "staff")).all()
            assert message.provider_sid
        tab.screenshot(path=str(SCREENSHOTS / f"patient-{width}-{lang}.png"), full_page=True)
        if width == 390:  # nothing wider than the screen
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, overflow
    finally:
        context.close()
