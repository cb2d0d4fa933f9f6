"""The care-manager UI and the patient simulator in a real headless Chromium, against the app served by a
real HTTP server (werkzeug, threaded) on PostgreSQL: sign-in and lockout, the queue's order, acknowledge
and resolve with their audit trail, CSRF, the simulator on the console channel, and the Spanish UI.

Chromium is Debian's (/usr/bin/chromium). Run by hand without it, the tests skip; inside ``make test``
(which sets OUTREACH_REQUIRE_BROWSER=1 after its ``browser`` target installed Chromium) a missing Chromium
fails the run instead, so the suite can never pass with the UI untested.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app import create_app
from app.escalation.service import open_or_join
from app.models import Answer, AuditEvent, Call, Conversation, Escalation, Patient, Program, User
from app.runtime import Runtime, clear_current
from app.web.auth import create_user

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
#: Screenshots the run saves (gitignored): the queue, the simulator, the live queue in en and es, the audit page.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
QUEUE_SCREENSHOT = SCREENSHOTS / "queue.png"
SIMULATOR_SCREENSHOT = SCREENSHOTS / "simulator.png"


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        why = f"headless Chromium not installed at {CHROMIUM} (apt-get install chromium, or make browser)"
        if os.environ.get("OUTREACH_REQUIRE_BROWSER") == "1":
            pytest.fail(why + "; OUTREACH_REQUIRE_BROWSER=1 forbids skipping the browser tests")
        pytest.skip(why)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test: no cookies or session shared between tests."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@contextmanager
def serve(application: Flask) -> Iterator[str]:
    """Serve the app over real HTTP on a free local port; yields the base URL."""
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="outreach-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def live(app: Flask) -> Iterator[str]:
    """The test app (PostgreSQL, Redis, local Twilio) behind a real HTTP server."""
    with serve(app) as url:
        yield url


@pytest.fixture()
def console_app(app_config: dict[str, Any]) -> Iterator[Flask]:
    """The embedded console channel with in-process jobs: the setup that serves the simulator."""
    application = create_app({**app_config, "channel": "console", "redis_url": None})
    yield application
    runtime: Runtime = application.extensions["outreach"]
    runtime.engine.dispose()
    clear_current()


@pytest.fixture()
def console_rt(console_app: Flask) -> Runtime:
    runtime: Runtime = console_app.extensions["outreach"]
    return runtime


@pytest.fixture()
def console_live(console_app: Flask) -> Iterator[str]:
    with serve(console_app) as url:
        yield url


@pytest.fixture()
def nurse(rt: Runtime, program: Program) -> User:
    return create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program=program.slug)


@pytest.fixture(autouse=True)
def _screenshot_dir() -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


# --- helpers ------------------------------------------------------------------------------------------


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def escalate(
    rt: Runtime,
    patient_id: int,
    *,
    level: str,
    reason: str,
    rule_id: str,
    detail: dict[str, Any],
    now: dt.datetime,
) -> int:
    with rt.sessions() as s, s.begin():
        patient = s.get(Patient, patient_id)
        assert patient is not None
        escalation = open_or_join(
            s, patient, level=level, reason=reason, rule_id=rule_id, detail=detail, conversation_id=None, now=now
        )
        return escalation.id


def load_escalation(rt: Runtime, escalation_id: int) -> Escalation:
    with rt.sessions() as s:
        escalation = s.get(Escalation, escalation_id)
        assert escalation is not None
        return escalation


def audit_actions(rt: Runtime, *, subject_type: str, subject_id: int) -> list[tuple[str, int | None]]:
    with rt.sessions() as s:
        rows = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id)
            .order_by(AuditEvent.id)
        ).all()
        return [(row.action, row.user_id) for row in rows]


def row_for(page: Page, escalation_id: int) -> Locator:
    return page.locator(f'tr[data-escalation="{escalation_id}"]')


# --- 1. sign-in -------------------------------------------------------------------------------------


def test_sign_in_redirects_rejects_wrong_passwords_and_locks_after_five(
    page: Page, live: str, rt: Runtime, nurse: User
) -> None:
    page.goto(f"{live}/queue")
    expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)queue$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # Wrong password: the error, no session.
    page.get_by_label("Email").fill(nurse.email)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Email or password is not right.")
    page.goto(f"{live}/queue")
    expect(page).to_have_url(re.compile(r"/login"))

    # The right password, from the redirect: lands on the page asked for.
    page.get_by_label("Email").fill(nurse.email.upper())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live}/queue")
    expect(page.get_by_role("heading", name="Escalation queue")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    # Five wrong passwords lock the account; then even the right one is refused with the lockout message.
    for _ in range(5):
        sign_in(page, live, nurse.email, "wrong password, again")
        expect(page.get_by_role("alert")).to_have_text("Email or password is not right.")
    sign_in(page, live, nurse.email, PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Too many failed attempts. Try again in 15 minutes.")
    page.goto(f"{live}/queue")
    expect(page).to_have_url(re.compile(r"/login"))

    actions = [action for action, _ in audit_actions(rt, subject_type="user", subject_id=nurse.id)]
    assert actions.count("user.login") == 1
    assert actions.count("user.login_failed") == 6
    assert actions.count("user.login_limited") == 1


# --- 2. queue order ---------------------------------------------------------------------------------


def test_queue_lists_emergency_then_urgent_then_routine(
    page: Page, live: str, rt: Runtime, nurse: User, make_patient: Callable[..., Patient]
) -> None:
    now = dt.datetime.now(dt.UTC)
    rosa = make_patient(given_name="Rosa", family_name="Diaz")
    james = make_patient(given_name="James", family_name="Okafor")
    lena = make_patient(given_name="Lena", family_name="Novak")
    # Inserted ROUTINE, EMERGENCY, URGENT, with the ROUTINE oldest and overdue: id order, creation order and
    # deadline order are all wrong; only severity first gives EMERGENCY, URGENT, ROUTINE.
    escalate(
        rt,
        lena.id,
        level="ROUTINE",
        reason="unreachable",
        rule_id="missed-check-ins",
        detail={"missed": 2},
        # Ten days back: its deadline (the end of the next business day) has passed whatever day and hour the
        # suite runs; three days back was not yet overdue early on a Monday (opened on a Friday).
        now=now - dt.timedelta(days=10),
    )
    escalate(
        rt,
        rosa.id,
        level="EMERGENCY",
        reason="chest_pain",
        rule_id="red-flag:chest-pain",
        detail={"phrase": "chest pain"},
        now=now,
    )
    escalate(
        rt,
        james.id,
        level="URGENT",
        reason="weight_gain",
        rule_id="weight-gain-1-day",
        detail={"weight_rise": 4.0},
        now=now - dt.timedelta(minutes=30),
    )

    sign_in(page, live, nurse.email, PASSWORD)
    expect(page).to_have_url(f"{live}/queue")
    rows = page.locator("tr[data-escalation]")
    expect(rows).to_have_count(3)
    # Reasons in plain words, what the rule found too, never rule ids or key=value pairs.
    expected = [
        ("EMERGENCY", "Rosa Diaz", "Chest pain", re.compile(r"due in 1\d min")),
        ("URGENT", "James Okafor", "Weight gain", "weight up 4 lb"),
        ("ROUTINE", "Lena Novak", "Not answering check-ins", "Not answering check-ins"),
    ]
    for index, (level, name, reason, detail) in enumerate(expected):
        row = rows.nth(index)
        cells = row.locator("td")
        badge = cells.nth(0).locator("span.level")
        expect(badge).to_have_text(level)
        expect(badge).to_have_class(re.compile(rf"\blevel-{level}\b"))
        expect(cells.nth(1).get_by_role("link")).to_have_text(name)
        expect(cells.nth(2)).to_contain_text(reason)
        expect(row).to_contain_text(detail)
        expect(row.locator("[data-status]")).to_have_text("open")
        expect(row).not_to_contain_text("=")
    # The badges are colored, not just labelled.
    emergency_bg = rows.nth(0).locator("span.level").evaluate("el => getComputedStyle(el).backgroundColor")
    assert emergency_bg == "rgb(176, 0, 32)"
    # The overdue ROUTINE deadline is flagged, in words and not only in colour.
    expect(rows.nth(2).locator("td").nth(4).locator(".overdue")).to_have_count(1)
    expect(rows.nth(2).locator("td").nth(4)).to_contain_text("overdue by")
    expect(page).to_have_title(re.compile(r"^\(3\) "))

    page.screenshot(path=str(QUEUE_SCREENSHOT), full_page=True)
    assert QUEUE_SCREENSHOT.stat().st_size > 10_000


# --- 3. acknowledge, resolve, audit -----------------------------------------------------------------


def test_acknowledge_then_resolve_records_who_what_and_audit(
    page: Page, live: str, rt: Runtime, nurse: User, make_patient: Callable[..., Patient]
) -> None:
    patient = make_patient(given_name="Rosa", family_name="Diaz")
    escalation_id = escalate(
        rt,
        patient.id,
        level="URGENT",
        reason="weight_gain",
        rule_id="weight-gain-1-day",
        detail={"weight_rise": 4.0},
        now=dt.datetime.now(dt.UTC),
    )

    sign_in(page, live, nurse.email, PASSWORD)
    row = row_for(page, escalation_id)
    row.get_by_role("button", name="Acknowledge").click()
    expect(row.locator("[data-status]")).to_have_text("acknowledged")
    expect(page.get_by_role("status").filter(has_text="Acknowledged: Rosa Diaz.")).to_be_visible()
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    acknowledged = load_escalation(rt, escalation_id)
    assert acknowledged.status == "acknowledged"
    assert acknowledged.acknowledged_by_id == nurse.id
    assert acknowledged.acknowledged_at is not None

    # Opening the patient is audited.
    row.get_by_role("link", name="Rosa Diaz").click()
    expect(page).to_have_url(f"{live}/patients/{patient.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Rosa Diaz")
    expect(page.locator("li", has_text="Weight gain")).to_contain_text("acknowledged")
    assert ("patient.viewed", nurse.id) in audit_actions(rt, subject_type="patient", subject_id=patient.id)

    # Resolving without an outcome: the browser will not submit it, and the server refuses it anyway.
    page.get_by_role("link", name="Queue").click()
    outcome = row.locator("select[name=outcome]")
    row.get_by_role("button", name="Resolve").click()
    assert outcome.evaluate("el => el.validity.valueMissing") is True
    outcome.evaluate("el => el.removeAttribute('required')")
    row.locator("textarea[name=note]").fill("no outcome chosen")
    row.get_by_role("button", name="Resolve").click()
    expect(page.locator(".flash")).to_have_text("Choose an outcome before you resolve.")
    expect(row.locator("[data-status]")).to_have_text("acknowledged")
    refused = load_escalation(rt, escalation_id)
    assert (refused.status, refused.outcome, refused.note, refused.resolved_at) == ("acknowledged", None, None, None)

    # With an outcome and a note.
    row.locator("select[name=outcome]").select_option("reached_patient")
    row.locator("textarea[name=note]").fill("Called Rosa; diuretic dose reviewed with Dr. Lee.")
    row.get_by_role("button", name="Resolve").click()
    expect(row).to_have_count(0)
    expect(page.get_by_text("Nothing is waiting. New escalations appear here.")).to_be_visible()

    resolved = load_escalation(rt, escalation_id)
    assert resolved.status == "resolved"
    assert resolved.acknowledged_by_id == nurse.id
    assert resolved.resolved_by_id == nurse.id
    assert resolved.resolved_at is not None and resolved.acknowledged_at is not None
    assert resolved.resolved_at >= resolved.acknowledged_at
    assert resolved.outcome == "reached_patient"
    assert resolved.note == "Called Rosa; diuretic dose reviewed with Dr. Lee."
    assert audit_actions(rt, subject_type="escalation", subject_id=escalation_id) == [
        ("escalation.acknowledged", nurse.id),
        ("escalation.resolved", nurse.id),
    ]

    page.goto(f"{live}/patients/{patient.id}")
    expect(page.locator("li", has_text="Weight gain")).to_contain_text("resolved (Reached the patient)")
    expect(page.locator("li", has_text="Weight gain")).to_contain_text("Called Rosa; diuretic dose reviewed")
    views = audit_actions(rt, subject_type="patient", subject_id=patient.id)
    assert views == [("patient.viewed", nurse.id), ("patient.viewed", nurse.id)]


# --- 4. CSRF ----------------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_are_refused_and_change_nothing(
    browser: Browser, page: Page, live: str, rt: Runtime, nurse: User, make_patient: Callable[..., Patient]
) -> None:
    patient = make_patient()
    escalation_id = escalate(
        rt,
        patient.id,
        level="URGENT",
        reason="swelling",
        rule_id="more-swelling",
        detail={},
        now=dt.datetime.now(dt.UTC),
    )
    sign_in(page, live, nurse.email, PASSWORD)
    expect(page).to_have_url(f"{live}/queue")

    # Signed in (the session cookie goes along), but no token, or a forged one.
    missing = page.request.post(
        f"{live}/episodes/{patient.id}/acknowledge", form={"ids": str(escalation_id), "note": "x"}
    )
    forged = page.request.post(
        f"{live}/episodes/{patient.id}/resolve",
        form={"csrf_token": "forged-token", "ids": str(escalation_id), "outcome": "reached_patient", "note": "f"},
    )
    signed_out = page.request.post(f"{live}/logout", form={})
    assert (missing.status, forged.status, signed_out.status) == (400, 400, 400)
    assert "form expired" in missing.text()

    unchanged = load_escalation(rt, escalation_id)
    assert (unchanged.status, unchanged.acknowledged_by_id, unchanged.outcome, unchanged.note) == (
        "open",
        None,
        None,
        None,
    )
    assert audit_actions(rt, subject_type="escalation", subject_id=escalation_id) == []
    # The refused logout did not sign the nurse out.
    page.reload()
    expect(row_for(page, escalation_id).locator("[data-status]")).to_have_text("open")
    expect(page).to_have_url(f"{live}/queue")

    # The login form too: a token-less sign-in attempt is refused before the password is even checked.
    fresh = browser.new_context()
    try:
        refused = fresh.request.post(f"{live}/login", form={"email": nurse.email, "password": PASSWORD})
        assert refused.status == 400
    finally:
        fresh.close()
    with rt.sessions() as s:
        logins = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.in_(["user.login", "user.login_failed"]))
        )
    assert logins == 1


# --- 5. simulator -----------------------------------------------------------------------------------


def test_simulator_plays_the_hf_check_in_and_a_red_flag(page: Page, console_live: str, console_rt: Runtime) -> None:
    rt = console_rt
    with rt.sessions() as s, s.begin():
        program = Program(slug="north-clinic", name="North Clinic", phone_display="555-0100")
        s.add(program)
        s.flush()
        s.add(
            Patient(
                program_id=program.id,
                mrn="SIM-1",
                given_name="Omar",
                family_name="Haddad",
                phone="+12025550101",
                language="en",
                timezone="America/New_York",
                conditions=["copd"],
            )
        )
        ana = Patient(
            program_id=program.id,
            mrn="SIM-2",
            given_name="Ana",
            family_name="Lopez",
            phone="+12025550102",
            language="en",
            timezone="America/New_York",
            conditions=["heart_failure"],
        )
        s.add(ana)
        s.flush()
        ana_id = ana.id
    create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program="north-clinic")

    sign_in(page, console_live, "nurse@example.org", PASSWORD)
    expect(page).to_have_url(f"{console_live}/queue")
    page.get_by_role("link", name="Simulator").click()
    expect(page.get_by_role("heading", name="Patient simulator")).to_be_visible()
    page.get_by_label("Patient").select_option(label="Ana Lopez (en)")
    expect(page).to_have_url(f"{console_live}/simulator?patient={ana_id}")
    expect(page.get_by_text("No messages yet.")).to_be_visible()

    bubbles = page.locator("#transcript .bubble")
    page.locator("select[name=flow]").select_option("hf-daily-check")
    page.get_by_role("button", name="Start this conversation now").click()
    expect(bubbles).to_have_count(1)
    expect(bubbles.nth(0)).to_have_attribute("data-direction", "outbound")
    expect(bubbles.nth(0)).to_contain_text("Hi Ana. What is your weight today in pounds?")

    reply_box = page.get_by_label("Your reply")
    for count, (body, bot_says) in enumerate(
        [
            ("182", "more short of breath than usual"),
            ("no", "more pillows"),
            ("no", "more swelling"),
            ("no", "dizzy"),
            ("no", "chest pain"),
            ("no", "faint"),
            ("no", "confused"),
            ("no", "Thank you, Ana. Your answers were sent to your care team."),
        ],
        start=1,
    ):
        reply_box.fill(body)
        page.get_by_role("button", name="Send").click()
        expect(bubbles).to_have_count(1 + 2 * count)
        expect(bubbles.nth(2 * count - 1)).to_have_attribute("data-direction", "inbound")
        expect(bubbles.nth(2 * count - 1)).to_have_text(body)
        expect(bubbles.nth(2 * count)).to_contain_text(bot_says)

    with rt.sessions() as s:
        answers = s.scalars(select(Answer).where(Answer.patient_id == ana_id).order_by(Answer.id)).all()
        assert [(a.question_id, a.value, a.channel) for a in answers] == [
            ("weight", 182.0, "console"),
            *[
                (q, False, "console")
                for q in ("breath", "pillows", "swelling", "dizzy", "chest", "fainted", "confused")
            ],
        ]
        assert s.scalar(select(func.count()).select_from(Escalation)) == 0

    # A second check-in: a red flag in place of the weight.
    page.locator("select[name=flow]").select_option("hf-daily-check")
    page.get_by_role("button", name="Start this conversation now").click()
    expect(bubbles).to_have_count(18)
    expect(bubbles.nth(17)).to_contain_text("What is your weight today in pounds?")
    reply_box.fill("I have chest pain")
    page.get_by_role("button", name="Send").click()
    expect(bubbles.nth(18)).to_have_text("I have chest pain")
    expect(page.locator("#transcript .bubble.outbound").last).to_contain_text("911")

    with rt.sessions() as s:
        escalations = s.scalars(select(Escalation).where(Escalation.patient_id == ana_id)).all()
        assert [(e.level, e.reason, e.status) for e in escalations] == [("EMERGENCY", "chest_pain", "open")]
        assert s.scalar(select(func.count()).select_from(Answer).where(Answer.patient_id == ana_id)) == 8

    page.screenshot(path=str(SIMULATOR_SCREENSHOT), full_page=True)
    assert SIMULATOR_SCREENSHOT.stat().st_size > 10_000

    # The care manager sees it at the top of the queue.
    page.get_by_role("link", name="Queue").click()
    first = page.locator("tr[data-escalation]").first
    expect(first.locator("span.level")).to_have_text("EMERGENCY")
    expect(first).to_contain_text("Ana Lopez")


# --- 6. Spanish ---------------------------------------------------------------------------------------


def test_queue_in_spanish_with_lang_es(
    page: Page, live: str, rt: Runtime, nurse: User, make_patient: Callable[..., Patient]
) -> None:
    patient = make_patient(given_name="Rosa", family_name="Diaz")
    escalate(
        rt,
        patient.id,
        level="URGENT",
        reason="weight_gain",
        rule_id="weight-gain-1-day",
        detail={"weight_rise": 4.0},
        now=dt.datetime.now(dt.UTC),
    )
    sign_in(page, live, nurse.email, PASSWORD)
    expect(page).to_have_url(f"{live}/queue")

    page.goto(f"{live}/queue?lang=es")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text("Cola de alertas")
    expect(page.locator("thead th")).to_have_text(
        ["Nivel", "Paciente", "Qué pasó", "Abierta", "Vence", "Estado", "Acciones"]
    )
    expect(page.locator("tr[data-escalation]").first).to_contain_text("Aumento de peso")
    expect(page.locator("tr[data-escalation]").first).to_contain_text("URGENTE")
    expect(page.locator("tr[data-escalation]").first).to_contain_text("vence en")
    row = page.locator("tr[data-escalation]").first
    expect(row.get_by_role("button", name="Confirmar recibido")).to_be_visible()
    expect(row.get_by_role("button", name="Resolver")).to_be_visible()
    expect(row.locator("select[name=outcome] option").first).to_have_text("Resultado…")
    expect(row.locator("textarea[name=note]")).to_have_attribute("placeholder", "Nota")
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()
    expect(page.locator("header nav").get_by_role("link", name="Cola")).to_be_visible()

    # The choice sticks for the session.
    page.goto(f"{live}/queue")
    expect(page.get_by_role("heading", level=1)).to_have_text("Cola de alertas")
    page.goto(f"{live}/queue?lang=en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Escalation queue")


def test_the_patient_page_says_why_a_touch_was_skipped_in_english_and_spanish(
    page: Page, live: str, rt: Runtime, nurse: User, make_patient: Callable[..., Patient]
) -> None:
    """Issue 10 item 3: a skipped touch is never silent; staff read why on the patient's timeline."""
    from app.scheduling.enrollments import enroll
    from app.scheduling.sweeper import tick

    patient = make_patient(given_name="Rosa", family_name="Diaz", timezone="America/Chicago")
    nine = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)  # 09:00 in Chicago
    with rt.sessions() as s, s.begin():
        enroll(s, rt, s.merge(patient), "hf-remote-monitoring", nine.date(), nine - dt.timedelta(hours=1))
    tick(rt, nine + dt.timedelta(hours=13))  # 22:00: the 09:00 check-in is stale, skipped
    sign_in(page, live, nurse.email, PASSWORD)
    page.goto(f"{live}/patients/{patient.id}")
    note = page.locator("table.schedule-notes td[data-code=stale]")
    expect(note).to_contain_text("Skipped: it was too late to send it (never sent late).")
    page.goto(f"{live}/patients/{patient.id}?lang=es")
    expect(page.locator("table.schedule-notes td[data-code=stale]")).to_contain_text(
        "Omitido: ya era muy tarde para enviarlo"
    )


# --- 7. the live queue, worked end to end (en and es) --------------------------------------------------

LIVE_WORDS = {
    "en": {
        "empty": "Nothing is waiting. New escalations appear here.",
        "claim": "Claim",
        "acknowledge": "Acknowledge",
        "resolve": "Resolve",
        "level": "EMERGENCY",
        "reason": "Chest pain",
        "announce": "New in the queue: EMERGENCY: Rosa Diaz",
        "working": "Working on it: you",
        "acknowledged": "acknowledged",
        "resolved_today": "Resolved today",
        "outcome": "Advised to call 911",
        "undo": "Undo",
        "paged": "Paged once at",
    },
    "es": {
        "empty": "No hay nada pendiente. Las alertas nuevas aparecen aquí.",
        "claim": "Tomar",
        "acknowledge": "Confirmar recibido",
        "resolve": "Resolver",
        "level": "EMERGENCIA",
        "reason": "Dolor de pecho",
        "announce": "Nuevo en la cola: EMERGENCIA: Rosa Diaz",
        "working": "Lo atiende: usted",
        "acknowledged": "recibida",
        "resolved_today": "Resueltas hoy",
        "outcome": "Se le indicó llamar al 911",
        "undo": "Deshacer",
        "paged": "Aviso enviado al turno a las",
    },
}


def post_signed_sms(base: str, fake_twilio: Any, phone: str, body: str) -> int:
    """A Twilio webhook over real HTTP, signed for PUBLIC_BASE_URL as Twilio signs it."""
    import urllib.parse
    import urllib.request
    import uuid

    from tests.conftest import FROM_NUMBER, PUBLIC_BASE_URL
    from tests.support.fake_twilio import sign

    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": fake_twilio.account_sid,
        "From": phone,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }
    request = urllib.request.Request(
        f"{base}/twilio/sms",
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/twilio/sms", params, fake_twilio.auth_token)},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_emergency_texted_in_appears_live_then_is_claimed_acknowledged_and_resolved(
    browser: Browser,
    page: Page,
    live: str,
    rt: Runtime,
    nurse: User,
    program: Program,
    fake_twilio: Any,
    make_patient: Callable[..., Patient],
    lang: str,
) -> None:
    from tests.support.jobs import drain_inbound

    words = LIVE_WORDS[lang]
    with rt.sessions() as s, s.begin():
        found = s.get(Program, program.id)
        assert found is not None
        found.on_call_phone = "+12025550199"
    patient = make_patient(given_name="Rosa", family_name="Diaz", language=lang, timezone="America/Chicago")
    admin = create_user(rt, "admin@example.org", PASSWORD, "admin")

    sign_in(page, live, nurse.email, PASSWORD)
    page.goto(f"{live}/queue?lang={lang}")
    expect(page.get_by_text(words["empty"])).to_be_visible()
    page.evaluate("window.__noReload = true")

    # The patient texts a red flag; the webhook stores it, the worker processes it.
    assert post_signed_sms(live, fake_twilio, patient.phone, "I have chest pain right now") == 200
    drain_inbound(rt)

    # It appears without a reload: the row, the count in the tab title, the live region's announcement.
    row = page.locator(f'tr[data-episode="{patient.id}"]')
    expect(row).to_have_count(1, timeout=15_000)
    assert page.evaluate("window.__noReload") is True
    expect(row.locator("span.level")).to_have_text(words["level"])
    expect(row).to_contain_text(words["reason"])
    expect(row.locator("blockquote.words")).to_contain_text("I have chest pain right now")  # her own words
    expect(row).to_contain_text(words["paged"])
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    expect(page.locator("#queue-announcer")).to_have_text(words["announce"])
    page.screenshot(path=str(SCREENSHOTS / f"live-queue-{lang}.png"), full_page=True)

    # Claim, acknowledge (with the confirmation and its undo), resolve with a two-line note.
    row.get_by_role("button", name=words["claim"]).click()
    expect(row).to_contain_text(words["working"])
    row.get_by_role("button", name=words["acknowledge"]).click()
    expect(row.locator("[data-status]")).to_have_text(words["acknowledged"])
    expect(page.get_by_role("button", name=words["undo"])).to_be_visible()
    note = "Called Rosa at home.\nShe is calling 911 now; EMS on the way."
    row.locator("select[name=outcome]").select_option("advised_911")
    row.locator("textarea[name=note]").fill(note)
    row.get_by_role("button", name=words["resolve"]).click()
    expect(row).to_have_count(0)

    page.locator("nav.tabs").get_by_role("link", name=words["resolved_today"]).click()
    resolved = page.locator("tr[data-resolved]").first
    expect(resolved).to_contain_text(words["outcome"])
    expect(resolved.locator(".note")).to_have_text(note)

    with rt.sessions() as s:
        [escalation] = s.scalars(select(Escalation).where(Escalation.patient_id == patient.id)).all()
        assert (escalation.status, escalation.outcome, escalation.note) == ("resolved", "advised_911", note)
        assert escalation.assigned_to_id == nurse.id and escalation.resolved_by_id == nurse.id
    assert [a for a, _ in audit_actions(rt, subject_type="escalation", subject_id=escalation.id)] == [
        "escalation.assigned",
        "escalation.acknowledged",
        "escalation.resolved",
    ]

    # The admin reads the audit rows in the browser.
    page.get_by_role("button", name="Sign out" if lang == "en" else "Cerrar sesión").click()
    sign_in(page, live, admin.email, PASSWORD)
    page.goto(f"{live}/admin/audit?subject_type=escalation&subject_id={escalation.id}")
    audit_rows = page.locator("tr[data-audit]")
    expect(audit_rows).to_have_count(3)
    expect(audit_rows.nth(0)).to_contain_text("escalation.resolved")
    expect(audit_rows.nth(0)).to_contain_text(nurse.email)
    page.goto(f"{live}/admin/audit?action=queue.viewed&user={nurse.email}")
    viewed = page.locator("tr[data-audit]", has_text=f"escalation_ids: [{escalation.id}]")
    expect(viewed.first).to_contain_text(nurse.email)  # the live poll that showed the new item
    page.screenshot(path=str(SCREENSHOTS / f"audit-{lang}.png"), full_page=True)


# --- 8. another program's patient, the old cookie after sign-out ----------------------------------------


def test_a_care_manager_of_another_program_gets_403(
    browser: Browser, page: Page, live: str, rt: Runtime, nurse: User, make_patient: Callable[..., Patient]
) -> None:
    patient = make_patient(given_name="Rosa", family_name="Diaz")
    escalate(rt, patient.id, level="URGENT", reason="weight_gain", rule_id="r", detail={}, now=dt.datetime.now(dt.UTC))
    with rt.sessions() as s, s.begin():
        s.add(Program(slug="south-clinic", name="South Clinic", phone_display="555-0200"))
    create_user(rt, "south@example.org", PASSWORD, "care_manager", program="south-clinic")

    sign_in(page, live, "south@example.org", PASSWORD)
    expect(page).to_have_url(f"{live}/queue")
    expect(page.locator("tr[data-escalation]")).to_have_count(0)
    response = page.goto(f"{live}/patients/{patient.id}")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")
    expect(page.get_by_role("link", name="Back to the queue")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "forbidden.png"), full_page=True)


def test_after_sign_out_the_old_cookie_is_signed_out(browser: Browser, page: Page, live: str, nurse: User) -> None:
    sign_in(page, live, nurse.email, PASSWORD)
    expect(page).to_have_url(f"{live}/queue")
    old_cookies = page.context.cookies()
    assert any(c["name"] == "session" for c in old_cookies)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    replay = browser.new_context()
    try:
        replay.add_cookies(old_cookies)  # type: ignore[arg-type]
        tab = replay.new_page()
        tab.goto(f"{live}/queue")
        expect(tab).to_have_url(re.compile(r"/login\?next="))
        expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        replay.close()


def test_the_queue_works_by_keyboard_at_390_px(
    browser: Browser, live: str, rt: Runtime, nurse: User, make_patient: Callable[..., Patient]
) -> None:
    patient = make_patient(given_name="Rosa", family_name="Diaz")
    escalate(rt, patient.id, level="URGENT", reason="weight_gain", rule_id="r", detail={}, now=dt.datetime.now(dt.UTC))
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        tab = context.new_page()
        sign_in(tab, live, nurse.email, PASSWORD)
        expect(tab).to_have_url(f"{live}/queue")
        # The skip link comes first and moves focus to the main content.
        tab.keyboard.press("Tab")
        expect(tab.get_by_role("link", name="Skip to main content")).to_be_focused()
        tab.keyboard.press("Enter")
        # Every row action has its own accessible name.
        expect(tab.get_by_role("button", name="Acknowledge: Rosa Diaz")).to_have_count(1)
        tab.get_by_role("button", name="Acknowledge: Rosa Diaz").focus()
        tab.keyboard.press("Enter")
        expect(tab.locator(f'tr[data-episode="{patient.id}"] [data-status]')).to_have_text("acknowledged")
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, width  # no sideways scrolling at 390 px
        tab.screenshot(path=str(SCREENSHOTS / "queue-390px.png"), full_page=True)
    finally:
        context.close()


# --- 7. simulator, phone mode -------------------------------------------------------------------------


def _sim_patient(rt: Runtime, *, mrn: str, given: str, phone: str, language: str, nurse_line: str | None) -> int:
    with rt.sessions() as s, s.begin():
        program = s.scalars(select(Program).where(Program.slug == "north-clinic")).first()
        if program is None:
            program = Program(slug="north-clinic", name="North Clinic", phone_display="555-0100", nurse_line=nurse_line)
            s.add(program)
            s.flush()
        patient = Patient(
            program_id=program.id,
            mrn=mrn,
            given_name=given,
            family_name="Lopez",
            phone=phone,
            language=language,
            timezone="America/New_York",
            conditions=["heart_failure"],
        )
        s.add(patient)
        s.flush()
        return patient.id


def _press(page: Page, keys: str) -> None:
    for key in keys:
        page.get_by_role("button", name=f"Key {key}", exact=True).click()


def test_simulator_phone_mode_plays_hf_check_in_by_keypad_and_voice(
    page: Page, console_live: str, console_rt: Runtime
) -> None:
    rt = console_rt
    ana_id = _sim_patient(rt, mrn="PH-1", given="Ana", phone="+12025550111", language="en", nurse_line="+12025550199")
    create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program="north-clinic")
    sign_in(page, console_live, "nurse@example.org", PASSWORD)
    page.goto(f"{console_live}/simulator?patient={ana_id}")
    page.get_by_role("link", name="Phone").click()
    expect(page).to_have_url(f"{console_live}/simulator?patient={ana_id}&mode=phone")
    expect(page.get_by_text("No call yet.")).to_be_visible()

    page.get_by_label("Check-in").select_option("hf-daily-check")
    page.get_by_role("button", name="Call now").click()
    hears, listen, answers = page.locator("#hears"), page.locator("#listen"), page.locator("#answers")
    expect(hears).to_contain_text("What is your weight today in pounds?")
    expect(hears).to_contain_text("press the pound key")
    expect(hears).to_contain_text("To stop these calls, press 9.")
    expect(listen).to_contain_text("press the keys, then # to end")

    _press(page, "183")
    expect(page.locator("#keys")).to_have_text("183")
    _press(page, "#")
    expect(hears).to_contain_text("Are you more short of breath than usual? Press 1 for yes or 2 for no.")
    expect(listen).to_contain_text("press one key")
    expect(answers).to_contain_text("weight = 183.0")

    _press(page, "2")
    expect(hears).to_contain_text("more pillows")
    expect(answers).to_contain_text("breath = no")

    # Speech heard with low confidence is read back first; 1 confirms it.
    page.get_by_label("Say something").fill("yes")
    page.get_by_label("Confidence (0-1, optional)").fill("0.3")
    page.get_by_role("button", name="Say it").click()
    expect(hears).to_contain_text("I heard yes. Press 1 if that is right, or 2 to try again.")
    expect(answers).not_to_contain_text("pillows")
    _press(page, "1")
    expect(answers).to_contain_text("pillows = yes")
    expect(page.locator("#escalations")).to_contain_text("URGENT")
    expect(hears).to_contain_text("swelling")

    # A spoken red flag: 911 at once, 0 for the nurse.
    page.get_by_label("Say something").fill("I have chest pain right now")
    page.get_by_role("button", name="Say it").click()
    expect(hears).to_contain_text("911")
    expect(hears).to_contain_text("To talk to a nurse now, press 0.")
    expect(page.locator("#escalations")).to_contain_text("EMERGENCY")
    _press(page, "0")
    expect(hears).to_contain_text("Connecting you to a nurse now.")
    expect(listen).to_contain_text("Dialing +12025550199.")

    with rt.sessions() as s:
        saved = s.scalars(select(Answer).where(Answer.patient_id == ana_id).order_by(Answer.id)).all()
        assert [(a.question_id, a.value, a.channel) for a in saved] == [
            ("weight", 183.0, "voice"),
            ("breath", False, "voice"),
            ("pillows", True, "voice"),
        ]
        levels = s.scalars(select(Escalation.level).where(Escalation.patient_id == ana_id).order_by(Escalation.id))
        assert sorted(levels) == ["EMERGENCY", "URGENT"]
    page.screenshot(path="/tmp/outreach-simulator-phone.png", full_page=True)

    # Bad input is a defined 4xx, never a 500.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    with rt.sessions() as s:
        call_id = s.scalar(select(func.max(Call.id)).where(Call.patient_id == ana_id))
    base = f"{console_live}/simulator/{ana_id}/call"
    assert page.request.post(f"{base}/{call_id}/key", form={"csrf_token": token, "key": "A"}).status == 400
    assert (
        page.request.post(f"{base}/{call_id}/say", form={"csrf_token": token, "speech": "no", "confidence": "x"}).status
        == 400
    )
    assert (
        page.request.post(f"{base}/{call_id}/say", form={"csrf_token": token, "speech": "no", "confidence": "7"}).status
        == 400
    )
    assert page.request.post(f"{base}/999999/key", form={"csrf_token": token, "key": "1"}).status == 404
    assert page.request.post(f"{base}/999999/say", form={"csrf_token": token, "speech": "no"}).status == 404
    assert page.request.post(base, form={"csrf_token": token, "flow": "no-such-flow"}).status == 400


def test_simulator_phone_mode_in_spanish(page: Page, console_live: str, console_rt: Runtime) -> None:
    rt = console_rt
    rosa_id = _sim_patient(rt, mrn="PH-2", given="Rosa", phone="+12025550112", language="es", nurse_line=None)
    create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program="north-clinic")
    sign_in(page, console_live, "nurse@example.org", PASSWORD)
    page.goto(f"{console_live}/simulator?patient={rosa_id}&mode=phone&lang=es")
    expect(page.get_by_text("Todavía no hay llamada.")).to_be_visible()
    expect(page.get_by_role("link", name="Teléfono")).to_have_attribute("aria-current", "page")
    page.get_by_label("Control").select_option("hf-daily-check")
    page.get_by_role("button", name="Llamar ahora").click()
    hears = page.locator("#hears")
    expect(page.get_by_role("heading", name="Lo que oye la persona")).to_be_visible()
    expect(hears).to_contain_text("oprima la tecla numeral")
    expect(hears).to_contain_text("Para no recibir más llamadas, oprima 9.")
    expect(page.locator("#listen")).to_contain_text("oprima las teclas y luego # para terminar")

    page.get_by_label("Diga algo").fill("ciento ochenta y dos")
    page.get_by_role("button", name="Decirlo").click()
    expect(hears).to_contain_text("Oprima 1 para sí o 2 para no")
    expect(page.locator("#answers")).to_contain_text("weight = 182.0")
    page.get_by_role("button", name="Tecla 2", exact=True).click()
    expect(page.locator("#answers")).to_contain_text("breath = no")
    # Silence once asks again; the question still waits.
    page.get_by_role("button", name="Quedarse en silencio").click()
    expect(hears).to_contain_text("Perdone, no le escuché.")

    with rt.sessions() as s:
        saved = s.scalars(select(Answer).where(Answer.patient_id == rosa_id).order_by(Answer.id)).all()
        assert [(a.question_id, a.value) for a in saved] == [("weight", 182.0), ("breath", False)]

    # "Call now" with another check-in while this call is open: the user is told, nothing else starts.
    page.get_by_label("Control").select_option("phq2")
    page.get_by_role("button", name="Llamar ahora").click()
    expect(page.get_by_role("alert")).to_contain_text("la llamada de hf-daily-check sigue abierta")
    expect(hears).to_contain_text("Perdone, no le escuché.")  # the open call is still shown
    with rt.sessions() as s:
        flows = s.scalars(select(Conversation.flow_id).where(Conversation.patient_id == rosa_id)).all()
        assert flows == ["hf-daily-check"]


def test_simulator_call_now_with_another_flow_says_a_call_is_open(
    page: Page, console_live: str, console_rt: Runtime
) -> None:
    rt = console_rt
    ana_id = _sim_patient(rt, mrn="PH-3", given="Ana", phone="+12025550113", language="en", nurse_line=None)
    create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program="north-clinic")
    sign_in(page, console_live, "nurse@example.org", PASSWORD)
    page.goto(f"{console_live}/simulator?patient={ana_id}&mode=phone")
    page.get_by_label("Check-in").select_option("hf-daily-check")
    page.get_by_role("button", name="Call now").click()
    expect(page.locator("#hears")).to_contain_text("What is your weight")
    page.get_by_label("Check-in").select_option("phq2")
    page.get_by_role("button", name="Call now").click()
    expect(page.get_by_role("alert")).to_contain_text("the hf-daily-check call is still open")
    expect(page.locator("#hears")).to_contain_text("What is your weight")
