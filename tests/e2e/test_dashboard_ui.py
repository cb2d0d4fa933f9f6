"""The patient list, the program dashboard with its CSV export, and the simulator's "why nothing started"
(issue 11 items 4 and 7) in Debian's headless Chromium against the app served over real HTTP on
PostgreSQL; once in Spanish. Fixtures and helpers are the care-manager UI tests' own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from app.models import AuditEvent, Conversation, Patient, Program, User
from app.runtime import Runtime
from app.web.auth import create_user
from tests.e2e import test_care_manager_ui as ui
from tests.e2e.test_care_manager_ui import PASSWORD, SCREENSHOTS, escalate, sign_in

# The care-manager UI tests' fixtures, by name (a headless Chromium, a page, the app over HTTP).
pytestmark = ui.pytestmark
browser = ui.browser
page = ui.page
live = ui.live
console_app = ui.console_app
console_rt = ui.console_rt
console_live = ui.console_live
_screenshot_dir = ui._screenshot_dir

DASHBOARD_SCREENSHOT = SCREENSHOTS / "dashboard.png"


def _world(rt: Runtime, program: Program, make_patient: Callable[..., Patient]) -> tuple[Patient, Patient]:
    with rt.sessions() as s, s.begin():
        south = Program(slug="south-clinic", name="South Clinic", phone_display="555-0200")
        s.add(south)
    rosa = make_patient(given_name="Rosa", family_name="Diaz", phone="+12025550101", mrn="N-1")
    make_patient(given_name="Rosalind", family_name="Other", phone="+12025550131", mrn="N-2")
    omar = make_patient(given_name="Omar", family_name="Haddad", phone="+12025550101", program_id=south.id, mrn="S-1")
    now = dt.datetime.now(dt.UTC)
    escalate(rt, rosa.id, level="URGENT", reason="weight_gain", rule_id="r", detail={"weight_rise": 4.0}, now=now)
    escalate(rt, omar.id, level="EMERGENCY", reason="chest_pain", rule_id="r", detail={}, now=now)
    create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program=program.slug)
    with rt.sessions() as s, s.begin():
        for user in s.scalars(select(User)).all():
            user.timezone = "UTC"
    return rosa, omar


def test_find_a_patient_by_phone_then_read_the_dashboard_and_export(
    page: Page, live: str, rt: Runtime, program: Program, make_patient: Callable[..., Patient]
) -> None:
    rosa, _omar = _world(rt, program, make_patient)
    sign_in(page, live, "nurse@example.org", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    page.get_by_label("Name, MRN or phone").fill("(202) 555-0101")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#patients tbody tr[data-patient]")
    expect(rows).to_have_count(1)  # Omar has the same number but is South's patient
    expect(rows.first).to_contain_text("Rosa Diaz")
    page.get_by_label("Name, MRN or phone").fill("rosa")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(2)
    rows.first.get_by_role("link", name="Rosa Diaz").click()
    expect(page).to_have_url(f"{live}/patients/{rosa.id}")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Program dashboard: North Clinic")).to_be_visible()
    expect(page.locator('[data-figure="escalations_urgent"] td')).to_have_text("1")
    expect(page.locator('[data-figure="escalations_emergency"] td')).to_have_text("0")  # South's is not counted
    expect(page.locator('[data-figure="sla_breaches"] td')).to_have_text("0")
    today = dt.datetime.now(dt.UTC).date()
    page.get_by_label("From", exact=True).fill((today - dt.timedelta(days=400)).isoformat())
    page.get_by_label("To", exact=True).fill((today - dt.timedelta(days=300)).isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.locator('[data-figure="escalations_urgent"] td')).to_have_text("0")
    page.get_by_label("From", exact=True).fill(today.isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.locator('[data-figure="escalations_urgent"] td')).to_have_text("1")
    page.screenshot(path=str(DASHBOARD_SCREENSHOT), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Escalations (CSV)").click()
    text = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert text.splitlines()[0].startswith("id,created_at_utc,mrn")
    assert "N-1" in text and "S-1" not in text and "URGENT" in text
    with rt.sessions() as s:
        actions = set(s.scalars(select(AuditEvent.action)).all())
    assert {"patients.listed", "dashboard.viewed", "export.downloaded"} <= actions
    assert page.goto(f"{live}/dashboard?program=south-clinic").status == 403


def test_patient_list_and_dashboard_in_spanish(
    page: Page, live: str, rt: Runtime, program: Program, make_patient: Callable[..., Patient]
) -> None:
    _world(rt, program, make_patient)
    sign_in(page, live, "nurse@example.org", PASSWORD)
    page.goto(f"{live}/patients?lang=es")
    expect(page.get_by_role("heading", name="Pacientes")).to_be_visible()
    page.get_by_label("Nombre, MRN o teléfono").fill("n-1")
    page.get_by_role("button", name="Buscar").click()
    expect(page.locator("#patients tbody tr[data-patient]")).to_have_count(1)
    page.get_by_role("link", name="Panel").click()
    expect(page.get_by_role("heading", name="Panel del programa: North Clinic")).to_be_visible()
    expect(page.locator('[data-figure="escalations_urgent"] th')).to_have_text("Alertas: URGENTE")
    expect(page.locator('[data-figure="enrolled"] th')).to_have_text("Pacientes inscritos")
    expect(page.get_by_role("link", name="Alertas (CSV)")).to_be_visible()
    assert "Patients enrolled" not in page.content()


def test_simulator_says_why_start_did_nothing_and_keeps_the_flow(
    page: Page, console_live: str, console_rt: Runtime
) -> None:
    rt = console_rt
    with rt.sessions() as s, s.begin():
        program = Program(slug="north-clinic", name="North Clinic", phone_display="555-0100")
        s.add(program)
        s.flush()
        stopped = Patient(
            program_id=program.id,
            mrn="SIM-1",
            given_name="Omar",
            family_name="Haddad",
            phone="+12025550101",
            opted_out=True,
            opted_out_at=dt.datetime.now(dt.UTC),
            conditions=["heart_failure"],
        )
        busy = Patient(
            program_id=program.id,
            mrn="SIM-2",
            given_name="Ana",
            family_name="Lopez",
            phone="+12025550102",
            conditions=["heart_failure"],
        )
        s.add_all([stopped, busy])
        s.flush()
        stopped_id, busy_id = stopped.id, busy.id
    create_user(rt, "nurse@example.org", PASSWORD, "care_manager", program="north-clinic")
    sign_in(page, console_live, "nurse@example.org", PASSWORD)

    page.goto(f"{console_live}/simulator?patient={stopped_id}")
    page.locator("select[name=flow]").first.select_option("phq2")
    page.get_by_role("button", name="Start this conversation now").click()
    expect(page.get_by_role("alert")).to_have_text("Nothing started: this patient opted out of texts.")
    expect(page.locator("select[name=flow]").first).to_have_value("phq2")

    page.goto(f"{console_live}/simulator?patient={busy_id}")
    page.locator("select[name=flow]").first.select_option("hf-daily-check")
    page.get_by_role("button", name="Start this conversation now").click()
    expect(page.locator("#transcript .bubble")).to_have_count(1)
    page.locator("select[name=flow]").first.select_option("gad7")
    page.get_by_role("button", name="Start this conversation now").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Nothing started: a conversation is already under way. Reply to it first."
    )
    expect(page.locator("select[name=flow]").first).to_have_value("gad7")
    with rt.sessions() as s:
        flows = s.scalars(select(Conversation.flow_id).where(Conversation.patient_id == busy_id)).all()
        assert flows == ["hf-daily-check"]
        assert (
            s.scalar(select(func.count()).select_from(Conversation).where(Conversation.patient_id == stopped_id)) == 0
        )
