"""Staff sign-in, sessions, roles and program scoping, rate limits, redirects and headers, on the real app
(PostgreSQL, Redis-backed limiter) through Flask's test client and the real forms (CSRF tokens included)."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits import parse as parse_limit
from sqlalchemy import func, select

from app.escalation.service import open_or_join
from app.models import AuditEvent, Escalation, Patient, Program, User
from app.runtime import Runtime
from app.web import auth
from app.web.auth import create_user
from app.web.security import SEEN_KEY, safe_target
from tests.conftest import API_TOKEN
from tests.integration.staff_helpers import csrf_from, sign_in, token_on

PASSWORD = "correct horse battery staple"
LOCKED = "Too many failed attempts. Try again in 15 minutes."
WRONG = "Email or password is not right."


@pytest.fixture()
def south(rt: Runtime) -> Program:
    with rt.sessions() as s, s.begin():
        prog = Program(slug="south-clinic", name="South Clinic", phone_display="555-0200")
        s.add(prog)
    return prog


@pytest.fixture()
def staff(rt: Runtime, program: Program, south: Program) -> dict[str, User]:
    return {
        "north": create_user(rt, "north@example.org", PASSWORD, "care_manager", program="north-clinic", team="day"),
        "north2": create_user(rt, "north2@example.org", PASSWORD, "care_manager", program="north-clinic", team="day"),
        "south": create_user(rt, "south@example.org", PASSWORD, "care_manager", program="south-clinic"),
        "lead": create_user(rt, "lead@example.org", PASSWORD, "supervisor", program="north-clinic"),
        "admin": create_user(rt, "admin@example.org", PASSWORD, "admin"),
        "nowhere": create_user(rt, "nowhere@example.org", PASSWORD, "care_manager"),
    }


def escalate(rt: Runtime, patient_id: int, level: str = "URGENT", reason: str = "weight_gain") -> int:
    with rt.sessions() as s, s.begin():
        patient = s.get(Patient, patient_id)
        assert patient is not None
        return open_or_join(
            s,
            patient,
            level=level,
            reason=reason,
            rule_id="weight-gain-1-day",
            detail={"weight_rise": 4.0},
            conversation_id=None,
            now=dt.datetime.now(dt.UTC),
        ).id


@pytest.fixture()
def two_patients(rt: Runtime, make_patient: Callable[..., Patient], south: Program) -> tuple[Patient, Patient]:
    north_patient = make_patient(given_name="Rosa", family_name="Diaz")
    south_patient = make_patient(given_name="Omar", family_name="Haddad", program_id=south.id)
    escalate(rt, north_patient.id)
    escalate(rt, south_patient.id, level="EMERGENCY", reason="chest_pain")
    return north_patient, south_patient


def form_values(html: str, patient_id: int, action: str) -> dict[str, str]:
    """The hidden fields of one row's action form, as the browser would send them."""
    start = html.index(f'action="/episodes/{patient_id}/{action}"')
    chunk = html[start : html.index("</form>", start)]
    return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', chunk))


# --- scoping and roles --------------------------------------------------------------------------------


def test_staff_see_only_their_programs_patients(
    app: Flask, rt: Runtime, staff: dict[str, User], two_patients: tuple[Patient, Patient]
) -> None:
    north_patient, south_patient = two_patients
    nurse = app.test_client()
    assert sign_in(nurse, "north@example.org", PASSWORD).status_code == 302
    queue = nurse.get("/queue").get_data(as_text=True)
    assert "Rosa Diaz" in queue and "Omar Haddad" not in queue
    assert nurse.get(f"/patients/{north_patient.id}").status_code == 200
    refused = nurse.get(f"/patients/{south_patient.id}")
    assert refused.status_code == 403
    assert "You do not have access to this page" in refused.get_data(as_text=True)
    # An action on another program's episode is refused too, and changes nothing.
    with rt.sessions() as s:
        south_ids = [e.id for e in s.scalars(select(Escalation).where(Escalation.patient_id == south_patient.id))]
    token = token_on(nurse)
    posted = nurse.post(
        f"/episodes/{south_patient.id}/acknowledge", data={"csrf_token": token, "ids": str(south_ids[0]), "seen": ""}
    )
    assert posted.status_code == 403
    with rt.sessions() as s:
        assert s.get(Escalation, south_ids[0]).status == "open"  # type: ignore[union-attr]
        refusals = s.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == south_patient.id)).all()
        assert "patient.view_refused" in refusals

    admin = app.test_client()
    sign_in(admin, "admin@example.org", PASSWORD)
    everything = admin.get("/queue").get_data(as_text=True)
    assert "Rosa Diaz" in everything and "Omar Haddad" in everything
    assert admin.get(f"/patients/{south_patient.id}").status_code == 200

    nobody = app.test_client()
    sign_in(nobody, "nowhere@example.org", PASSWORD)
    empty = nobody.get("/queue").get_data(as_text=True)
    assert "Rosa Diaz" not in empty and "Omar Haddad" not in empty


def test_roles_audit_page_is_admin_only_and_assigning_needs_a_supervisor(
    app: Flask, rt: Runtime, staff: dict[str, User], two_patients: tuple[Patient, Patient]
) -> None:
    north_patient, _ = two_patients
    for email, status in (("north@example.org", 403), ("lead@example.org", 403), ("admin@example.org", 200)):
        client = app.test_client()
        sign_in(client, email, PASSWORD)
        assert client.get("/admin/audit").status_code == status, email

    nurse = app.test_client()
    sign_in(nurse, "north@example.org", PASSWORD)
    html = nurse.get("/queue").get_data(as_text=True)
    assert f'action="/episodes/{north_patient.id}/assign"' not in html  # no assign control for a care manager
    values = form_values(html, north_patient.id, "claim")
    refused = nurse.post(
        f"/episodes/{north_patient.id}/assign",
        data={**values, "assignee": str(staff["north2"].id)},
        follow_redirects=True,
    )
    assert "Only a supervisor can assign work to someone else." in refused.get_data(as_text=True)

    lead = app.test_client()
    sign_in(lead, "lead@example.org", PASSWORD)
    html = lead.get("/queue").get_data(as_text=True)
    values = form_values(html, north_patient.id, "assign")
    assigned = lead.post(f"/episodes/{north_patient.id}/assign", data={**values, "assignee": str(staff["north2"].id)})
    assert assigned.status_code == 302
    with rt.sessions() as s:
        escalation = s.scalars(select(Escalation).where(Escalation.patient_id == north_patient.id)).one()
        assert escalation.assigned_to_id == staff["north2"].id
    # Assigning outside the supervisor's programs is refused.
    outsider = lead.post(f"/episodes/{north_patient.id}/assign", data={**values, "assignee": str(staff["south"].id)})
    assert outsider.status_code in {302, 400}
    with rt.sessions() as s:
        escalation = s.scalars(select(Escalation).where(Escalation.patient_id == north_patient.id)).one()
        assert escalation.assigned_to_id == staff["north2"].id


def test_every_ui_view_declares_who_may_use_it(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".")[0]
        if blueprint not in {"auth", "queue", "admin", "simulator"}:
            continue
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "allowed_roles", None), f"{rule.endpoint} declares no roles"
    assert app.view_functions["admin.audit"].allowed_roles == ("admin",)  # type: ignore[attr-defined]


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient, staff: dict[str, User]) -> None:
    for path in ("/queue", "/queue/rows", "/admin/audit", "/patients/1"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")


# --- sessions -----------------------------------------------------------------------------------------


def test_logout_ends_the_session_on_the_server(app: Flask, staff: dict[str, User]) -> None:
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    old_cookie = client.get_cookie("session")
    assert old_cookie is not None
    assert client.get("/queue").status_code == 200
    client.post("/logout", data={"csrf_token": token_on(client)})
    # The old cookie, replayed as an attacker who copied it would: signed out.
    replay = app.test_client()
    replay.set_cookie("session", old_cookie.value)
    response = replay.get("/queue")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_password_change_ends_every_session(app: Flask, rt: Runtime, staff: dict[str, User]) -> None:
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    assert client.get("/queue").status_code == 200
    create_user(rt, "north@example.org", "a brand new passphrase", "care_manager")
    assert client.get("/queue").status_code == 302
    assert sign_in(client, "north@example.org", "a brand new passphrase").status_code == 302


def test_an_idle_session_is_signed_out_but_polling_does_not_keep_it_alive(app: Flask, staff: dict[str, User]) -> None:
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    assert client.get("/queue").status_code == 200
    with client.session_transaction() as session:
        seen = session[SEEN_KEY]
    assert client.get("/queue/rows", headers={"HX-Request": "true"}).status_code == 200
    with client.session_transaction() as session:
        assert session[SEEN_KEY] == seen  # the live poll is not activity
        session[SEEN_KEY] = time.time() - 31 * 60
    response = client.get("/queue")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "You were signed out after a time without activity." in client.get("/login").get_data(as_text=True)
    assert client.get("/queue").status_code == 302
    # The live poll of a signed-out tab sends the whole tab to sign-in (htmx's HX-Redirect).
    poll = client.get("/queue/rows", headers={"HX-Request": "true"})
    assert poll.headers["HX-Redirect"].startswith("/login?next=")


def test_forms_without_a_csrf_token_are_refused(app: Flask, staff: dict[str, User]) -> None:
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/queue").status_code == 200  # still signed in
    fresh = app.test_client()
    assert fresh.post("/login", data={"email": "north@example.org", "password": PASSWORD}).status_code == 400


# --- rate limits, enumeration ---------------------------------------------------------------------------


def test_five_failures_lock_the_account_from_that_ip_only(app: Flask, rt: Runtime, staff: dict[str, User]) -> None:
    attacker = app.test_client()
    for _ in range(5):
        failed = sign_in(attacker, "north@example.org", "wrong password", ip="10.9.9.9")
        assert failed.status_code == 401 and WRONG in failed.get_data(as_text=True)
    locked = sign_in(attacker, "north@example.org", PASSWORD, ip="10.9.9.9")
    assert locked.status_code == 429 and LOCKED in locked.get_data(as_text=True)
    # The nurse, on her own machine, still signs in: nobody can lock her out from elsewhere.
    nurse = app.test_client()
    assert sign_in(nurse, "north@example.org", PASSWORD, ip="10.0.0.7").status_code == 302
    # An unknown email gets exactly the same answers (no account enumeration).
    for _ in range(5):
        failed = sign_in(attacker, "ghost@example.org", "wrong password", ip="10.9.9.8")
        assert failed.status_code == 401 and WRONG in failed.get_data(as_text=True)
    ghost = sign_in(attacker, "ghost@example.org", "wrong password", ip="10.9.9.8")
    assert ghost.status_code == 429 and LOCKED in ghost.get_data(as_text=True)
    with rt.sessions() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "user")).all()
    assert actions.count("user.login_failed") == 10 and actions.count("user.login_limited") == 2


def test_one_ip_trying_many_accounts_is_limited(
    app: Flask, staff: dict[str, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped 20 a minute, over an hour's window: 20 scrypt checks can take over a minute on a loaded CI
    # machine, and the limit is what is tested here, not the machine's speed.
    [per_minute, _per_hour] = auth.PER_IP
    assert per_minute.amount == 20
    monkeypatch.setattr(auth, "PER_IP", (parse_limit(f"{per_minute.amount}/hour"),))
    client = app.test_client()
    for n in range(20):
        assert sign_in(client, f"guess{n}@example.org", "wrong password", ip="10.8.8.8").status_code == 401
    limited = sign_in(client, "north@example.org", PASSWORD, ip="10.8.8.8")
    assert limited.status_code == 429 and LOCKED in limited.get_data(as_text=True)
    assert sign_in(app.test_client(), "north@example.org", PASSWORD, ip="10.8.8.9").status_code == 302


def test_a_distributed_guess_at_one_account_is_limited(app: Flask, staff: dict[str, User]) -> None:
    client = app.test_client()
    for n in range(30):
        assert sign_in(client, "lead@example.org", "wrong password", ip=f"10.7.{n}.1").status_code == 401
    assert sign_in(client, "lead@example.org", PASSWORD, ip="10.7.99.1").status_code == 429


def test_unknown_and_known_emails_fail_in_similar_time(app: Flask, staff: dict[str, User]) -> None:
    """An unknown email costs one scrypt check like a wrong password does; the margin is wide (a factor of 3)
    because only the absence of a skipped hash (scrypt takes tens of ms, a lookup under one) is asserted."""
    client = app.test_client()

    def attempt(email: str, n: int) -> float:
        token = csrf_from(client.get("/login").get_data(as_text=True))
        started = time.perf_counter()
        client.post(
            "/login",
            data={"email": email, "password": "wrong password", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"10.6.{n}.1"},
        )
        return time.perf_counter() - started

    known = statistics.median(attempt("north@example.org", n) for n in range(4))
    unknown = statistics.median(attempt(f"nobody{n}@example.org", 10 + n) for n in range(4))
    assert unknown > known / 3 and known > unknown / 3


# --- redirects and headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["/%09/evil.example", "//evil.example", "/\\evil.example", "\\\\evil", "https://evil.example", "/%0d%0a/x", "evil"],
)
def test_only_same_site_relative_redirects_after_sign_in(app: Flask, staff: dict[str, User], target: str) -> None:
    response = sign_in(app.test_client(), "north@example.org", PASSWORD, next_=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/queue"


def test_safe_target_keeps_a_local_path() -> None:
    assert safe_target("/patients/3?lang=es", "/queue") == "/patients/3?lang=es"
    assert safe_target("/\t/evil.example", "/queue") == "/queue"
    assert safe_target(None, "/queue") == "/queue"


def test_the_back_field_cannot_send_a_nurse_off_site(
    app: Flask, staff: dict[str, User], two_patients: tuple[Patient, Patient]
) -> None:
    north_patient, _ = two_patients
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    values = form_values(client.get("/queue").get_data(as_text=True), north_patient.id, "claim")
    for back in ("//evil.example", "/%09/evil.example", "\\\\evil", "/\t/evil"):
        with client.session_transaction() as session:
            session.pop("_undo", None)
        response = client.post(f"/episodes/{north_patient.id}/claim", data={**values, "back": back})
        assert response.headers["Location"] == "/queue", back
        values = form_values(client.get("/queue").get_data(as_text=True), north_patient.id, "release")
        client.post(f"/episodes/{north_patient.id}/release", data=values)
        values = form_values(client.get("/queue").get_data(as_text=True), north_patient.id, "claim")


def test_security_headers_on_every_response(app: Flask, staff: dict[str, User], two_patients: Any) -> None:
    client = app.test_client()
    for response in (client.get("/login"), client.get("/nope"), client.get("/static/app.css")):
        csp = response.headers["Content-Security-Policy"]
        script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
        assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    sign_in(client, "north@example.org", PASSWORD)
    queue = client.get("/queue")
    assert queue.headers["Cache-Control"] == "no-store"
    assert client.get("/queue/rows").headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in queue.headers  # plain http, cookies not marked secure
    secure = client.get("/login", base_url="https://outreach.example.org")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    api = client.get("/api/v1/escalations", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert api.headers["Cache-Control"] == "no-store"


def test_error_pages_are_styled_and_translated(app: Flask, staff: dict[str, User]) -> None:
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    missing = client.get("/no-such-page?lang=es")
    html = missing.get_data(as_text=True)
    assert missing.status_code == 404
    assert 'lang="es"' in html and "Página no encontrada" in html and 'href="/queue"' in html
    # The API keeps its JSON errors.
    assert client.get("/api/v1/nope").json["error"]["code"] == "not_found"  # type: ignore[index]


# --- audit --------------------------------------------------------------------------------------------------


def test_queue_views_api_reads_and_actions_are_audited(
    app: Flask, rt: Runtime, staff: dict[str, User], two_patients: tuple[Patient, Patient]
) -> None:
    north_patient, _ = two_patients
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    html = client.get("/queue").get_data(as_text=True)
    client.get("/queue/rows", headers={"HX-Request": "true"})  # unchanged: no second row
    client.post(f"/episodes/{north_patient.id}/acknowledge", data=form_values(html, north_patient.id, "acknowledge"))
    client.get(f"/api/v1/patients/{north_patient.id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    with rt.sessions() as s:
        rows = s.execute(select(AuditEvent.action, AuditEvent.subject_type, AuditEvent.subject_id)).all()
        queue_views = s.scalar(select(func.count()).where(AuditEvent.action == "queue.viewed"))
    actions = {row[0] for row in rows}
    assert {"queue.viewed", "escalation.acknowledged", "api.read", "user.login"} <= actions
    assert ("api.read", "patient", north_patient.id) in rows
    assert queue_views == 1

    admin = app.test_client()
    sign_in(admin, "admin@example.org", PASSWORD)
    page = admin.get("/admin/audit?action=escalation").get_data(as_text=True)
    assert "escalation.acknowledged" in page and "north@example.org" in page


# --- the queue's actions ---------------------------------------------------------------------------------


def test_a_stale_tab_is_told_who_did_what(
    app: Flask, rt: Runtime, staff: dict[str, User], two_patients: tuple[Patient, Patient]
) -> None:
    north_patient, _ = two_patients
    first, second = app.test_client(), app.test_client()
    sign_in(first, "north@example.org", PASSWORD)
    sign_in(second, "north2@example.org", PASSWORD)
    old = form_values(second.get("/queue").get_data(as_text=True), north_patient.id, "acknowledge")
    fresh = form_values(first.get("/queue").get_data(as_text=True), north_patient.id, "acknowledge")
    first.post(f"/episodes/{north_patient.id}/acknowledge", data=fresh)
    answer = second.post(f"/episodes/{north_patient.id}/acknowledge", data=old, follow_redirects=True)
    text = answer.get_data(as_text=True)
    assert "north@example.org acknowledged it at" in text and "nothing was done" in text
    with rt.sessions() as s:
        escalation = s.scalars(select(Escalation).where(Escalation.patient_id == north_patient.id)).one()
        assert escalation.acknowledged_by_id == staff["north"].id


def test_resolve_with_a_multi_line_note_then_undo(
    app: Flask, rt: Runtime, staff: dict[str, User], two_patients: tuple[Patient, Patient]
) -> None:
    north_patient, _ = two_patients
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    values = form_values(client.get("/queue").get_data(as_text=True), north_patient.id, "resolve")
    note = "Called Rosa.\nDiuretic dose reviewed with Dr. Lee."
    client.post(f"/episodes/{north_patient.id}/resolve", data={**values, "outcome": "reached_patient", "note": note})
    page = client.get("/queue").get_data(as_text=True)
    assert "Resolved: Rosa Diaz." in page and ">Undo<" in page
    resolved = client.get("/queue?view=resolved").get_data(as_text=True)
    assert note in resolved and "Reached the patient" in resolved
    client.post("/undo", data={"csrf_token": csrf_from(page)})
    with rt.sessions() as s:
        escalation = s.scalars(select(Escalation).where(Escalation.patient_id == north_patient.id)).one()
        assert (escalation.status, escalation.outcome, escalation.note) == ("open", None, None)
        undone = s.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "escalation")).all()
    assert undone == ["escalation.resolved", "escalation.undone"]
    assert "Rosa Diaz" in client.get("/queue").get_data(as_text=True)


def test_one_row_per_patient_episode_with_plain_reasons(
    app: Flask, rt: Runtime, staff: dict[str, User], make_patient: Callable[..., Patient]
) -> None:
    patient = make_patient(given_name="Ana", family_name="Lopez")
    escalate(rt, patient.id, level="URGENT", reason="weight_gain")
    escalate(rt, patient.id, level="EMERGENCY", reason="chest_pain")
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    html = client.get("/queue").get_data(as_text=True)
    assert html.count(f'data-episode="{patient.id}"') == 1
    assert "Chest pain, Weight gain" in html and "weight up 4 lb" in html
    assert "weight-gain-1-day" not in html and "weight_rise" not in html
    assert "2 items for this patient" in html
    spanish = client.get("/queue?lang=es").get_data(as_text=True)
    assert "Dolor de pecho" in spanish and "EMERGENCIA" in spanish and "vence en" in spanish


def test_filters_mine_level_and_search(
    app: Flask, rt: Runtime, staff: dict[str, User], two_patients: tuple[Patient, Patient], make_patient: Any
) -> None:
    north_patient, _ = two_patients
    other = make_patient(given_name="Lena", family_name="Novak")
    escalate(rt, other.id, level="ROUTINE", reason="unreachable")
    client = app.test_client()
    sign_in(client, "north@example.org", PASSWORD)
    values = form_values(client.get("/queue").get_data(as_text=True), north_patient.id, "claim")
    client.post(f"/episodes/{north_patient.id}/claim", data=values)
    with client.session_transaction() as session:
        session.pop("_undo", None)  # the confirmation names the patient too
    mine = client.get("/queue?mine=1").get_data(as_text=True)
    assert "Rosa Diaz" in mine and "Lena Novak" not in mine
    team = client.get("/queue?team=1").get_data(as_text=True)
    assert "Rosa Diaz" in team and "Lena Novak" not in team
    routine = client.get("/queue?level=ROUTINE").get_data(as_text=True)
    assert "Lena Novak" in routine and "Rosa Diaz" not in routine
    found = client.get("/queue?q=novak").get_data(as_text=True)
    assert "Lena Novak" in found and "Rosa Diaz" not in found
    assert "Rosa Diaz" in client.get("/queue?q=MRN0001").get_data(as_text=True)


def test_create_user_command_takes_program_and_team(app: Flask, rt: Runtime, program: Program) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "create-user",
            "rn@example.org",
            "--role",
            "care_manager",
            "--program",
            "north-clinic",
            "--team",
            "night",
        ],
        input="a-long-passphrase\na-long-passphrase\n",
    )
    assert result.exit_code == 0, result.output
    assert "in program north-clinic, team night" in result.output
    unknown = runner.invoke(
        args=["create-user", "rn@example.org", "--program", "nope"], input="a-long-passphrase\na-long-passphrase\n"
    )
    assert unknown.exit_code != 0 and "no program" in unknown.output


def test_behind_a_proxy_the_clients_address_is_what_is_limited(
    app_config: dict[str, Any], staff: dict[str, User]
) -> None:
    from app import create_app
    from app.runtime import clear_current

    proxied = create_app({**app_config, "trusted_proxies": 1})
    try:
        client = proxied.test_client()
        for n in range(20):
            page = client.get("/login", environ_base={"REMOTE_ADDR": "10.0.0.2"})
            client.post(
                "/login",
                data={
                    "email": f"g{n}@example.org",
                    "password": "x",
                    "csrf_token": csrf_from(page.get_data(as_text=True)),
                },
                headers={"X-Forwarded-For": "203.0.113.9"},
                environ_base={"REMOTE_ADDR": "10.0.0.2"},
            )
        page = client.get("/login")
        other = client.post(
            "/login",
            data={
                "email": "north@example.org",
                "password": PASSWORD,
                "csrf_token": csrf_from(page.get_data(as_text=True)),
            },
            headers={"X-Forwarded-For": "198.51.100.4"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        assert other.status_code == 302  # another client behind the same proxy is not limited
    finally:
        proxied.extensions["outreach"].engine.dispose()
        clear_current()
