"""Enrollment from the hospital's feeds (issue 10 item 4): HL7 v2 ADT over HTTP (``POST /api/v1/adt``) and
over a real MLLP socket (``0x0b`` message ``0x1c 0x0d``), on PostgreSQL, ACK codes asserted.

A03 enrolls in the mapped campaigns and starts the TCM clock; A01/A04 while enrolled is a readmission
that pauses outreach; A08 updates demographics; A11/A13 cancel; a malformed message changes nothing and
the ACK says why; a redelivered message changes nothing."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.models import AdtMessage, AuditEvent, Discharge, Enrollment, Patient, Program, ScheduledTouch
from app.programs.adt import receive_adt
from app.programs.hl7_adt import ack_code_of
from app.programs.mllp import MllpServer, frame, read_frames, send_message
from app.runtime import Runtime
from tests.conftest import API_TOKEN
from tests.support.hl7_messages import adt

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # Monday 10:00 in New York


@pytest.fixture()
def clocked(rt: Runtime, program: Program) -> Runtime:
    rt.clock = lambda: NOW
    return rt


def post_adt(client: FlaskClient, message: str, **query: str) -> Any:
    return client.post(
        "/api/v1/adt", data=message.encode(), headers={**AUTH, "Content-Type": "application/hl7-v2"}, query_string=query
    )


def _counts(rt: Runtime) -> dict[str, int]:
    with rt.sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Patient, Enrollment, ScheduledTouch, Discharge)
        }


def test_a03_over_http_enrolls_by_unit_and_diagnosis_and_starts_the_tcm_clock(
    client: FlaskClient, clocked: Runtime
) -> None:
    message = adt(diagnoses=("I50.23^Acute on chronic systolic HF^I10", "E11.9^Type 2 diabetes^I10", "J44.1^COPD^I10"))
    response = post_adt(client, message)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["ack_code"] == "AA" and ack_code_of(body["ack"]) == "AA"
    assert "MSA|AA|MSG00001|" in body["ack"]
    # Heart failure, diabetes and COPD: one combined daily check-in, not three campaigns (issue 12).
    assert "enrolled: post-discharge-30d, chronic-care" in body["detail"]
    with clocked.sessions() as session:
        patient = session.scalars(select(Patient)).one()
        assert (patient.mrn, patient.given_name, patient.family_name) == ("E1001", "Mary", "O&Brien")
        assert patient.phone == "+16175550199"  # the cell phone, for texts
        assert patient.birth_date == dt.date(1950, 3, 1)
        assert patient.timezone == "America/New_York"
        assert patient.conditions == ["heart_failure", "diabetes", "copd"]
        enrollments = session.scalars(select(Enrollment).order_by(Enrollment.id)).all()
        assert [(e.campaign, e.anchor_date, e.status) for e in enrollments] == [
            ("post-discharge-30d", dt.date(2026, 11, 30), "active"),
            ("chronic-care", dt.date(2026, 11, 30), "active"),
        ]
        assert all(e.next_due_at is not None for e in enrollments)
        discharge = session.scalars(select(Discharge)).one()
        assert discharge.visit_number == "V123456"
        assert discharge.deadline_at == dt.datetime(2026, 12, 3, 4, 59, 59, tzinfo=dt.UTC)  # Wed 23:59:59 ET
        assert discharge.diagnoses == ["I50.23", "E11.9", "J44.1"]
        timeline = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("enrollment.%"))).all()
        assert timeline == ["enrollment.created"] * 2
    tcm = client.get("/api/v1/tcm?status=due", headers=AUTH).get_json()["discharges"]
    assert [(d["mrn"], d["status"]) for d in tcm] == [("E1001", "due")]


def test_the_same_message_delivered_twice_changes_nothing_and_gets_the_same_ack(
    client: FlaskClient, clocked: Runtime
) -> None:
    first = post_adt(client, adt())
    before = _counts(clocked)
    again = post_adt(client, adt())
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["ack_code"] == "AA"
    assert _counts(clocked) == before
    assert first.get_json()["patient_id"] == again.get_json()["patient_id"]


@pytest.mark.parametrize(
    ("message", "status", "ack", "reason"),
    [
        ("not hl7 at all", 400, "AR", "must start with an MSH segment"),
        (adt(message_type="ORU"), 400, "AR", "MSH-9"),
        (adt(control_id=""), 400, "AR", "MSH-10"),
        (adt(phones="^PRN^Internet^mary@example.org"), 422, "AE", "PID-13: no phone number"),
        (adt(phones="555"), 422, "AE", "PID-13"),
        (adt(family=""), 422, "AE", "PID-5.1"),
        (adt(discharged="", extra=()).replace("EVN|A03|20261130082500-0500", "EVN|A03|"), 422, "AE", "PV1-45"),
        (adt(discharged="20261330"), 422, "AE", "PV1-45"),
        (adt(discharged="20271130080000-0500"), 422, "AE", "in the future"),
    ],
)
def test_a_malformed_message_changes_nothing_and_says_why(
    client: FlaskClient, clocked: Runtime, message: str, status: int, ack: str, reason: str
) -> None:
    before = _counts(clocked)
    response = post_adt(client, message)
    assert response.status_code == status
    body = response.get_json()
    assert body["ack_code"] == ack and ack_code_of(body["ack"]) == ack
    assert reason in body["error"]["message"]
    assert set(body["error"]) == {"code", "message", "fields"}
    assert _counts(clocked) == before
    assert "Mary" not in body["ack"] and "5550199" not in body["ack"]  # no PHI echoed in the reason


def test_the_adt_endpoint_needs_the_token_and_an_hl7_content_type(client: FlaskClient, clocked: Runtime) -> None:
    assert client.post("/api/v1/adt", data=adt(), content_type="text/plain").status_code == 401
    wrong = client.post("/api/v1/adt", data=adt(), headers=AUTH, content_type="application/json")
    assert wrong.status_code == 400
    assert post_adt(client, adt(), program="no-such-program").status_code == 400


def test_readmission_pauses_outreach_and_a11_resumes_it(client: FlaskClient, clocked: Runtime) -> None:
    assert post_adt(client, adt()).status_code == 200
    admit = adt("A01", control_id="MSG00002", visit="V999", discharged="", admitted="20261201090000-0500")
    response = post_adt(client, admit)
    assert response.status_code == 200 and "2 enrollments paused" in response.get_json()["detail"]
    with clocked.sessions() as session:
        assert {e.status for e in session.scalars(select(Enrollment)).all()} == {"paused"}
        assert session.scalars(select(ScheduledTouch).where(ScheduledTouch.status == "pending")).all() == []
        assert session.scalars(select(Discharge)).one().readmitted_at == dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
    history = client.get(f"/api/v1/patients/{response.get_json()['patient_id']}/enrollments", headers=AUTH).get_json()
    assert [(t["action"], t["reason"]) for t in history["timeline"]][-2:] == [
        ("paused", "readmitted"),
        ("paused", "readmitted"),
    ]
    cancel = post_adt(client, adt("A11", control_id="MSG00003", visit="V999", discharged=""))
    assert cancel.status_code == 200 and "2 enrollments resumed" in cancel.get_json()["detail"]
    with clocked.sessions() as session:
        assert {e.status for e in session.scalars(select(Enrollment)).all()} == {"active"}
        assert session.scalars(select(Discharge)).one().readmitted_at is None
        assert session.scalars(select(ScheduledTouch).where(ScheduledTouch.status == "pending")).all()


def test_an_admission_of_a_patient_not_enrolled_changes_nothing(client: FlaskClient, clocked: Runtime) -> None:
    response = post_adt(client, adt("A04", control_id="REG-1"))
    assert response.status_code == 200 and "nothing to do" in response.get_json()["detail"]
    assert _counts(clocked) == {"patients": 0, "enrollments": 0, "scheduled_touches": 0, "discharges": 0}


def test_a08_updates_demographics_and_keeps_what_it_does_not_carry(client: FlaskClient, clocked: Runtime) -> None:
    post_adt(client, adt())
    update = adt(
        "A08", control_id="MSG00010", family="Rivera", given="Maria", phones="", language="SPA^Spanish^HL70296"
    )
    response = post_adt(client, update)
    assert response.status_code == 200
    assert "family_name" in response.get_json()["detail"] and "language" in response.get_json()["detail"]
    with clocked.sessions() as session:
        patient = session.scalars(select(Patient)).one()
        assert (patient.given_name, patient.family_name, patient.language) == ("Maria", "Rivera", "es")
        assert patient.phone == "+16175550199"  # no phone in the A08: the old one stays


def test_a13_cancels_the_discharge_and_ends_what_it_enrolled(client: FlaskClient, clocked: Runtime) -> None:
    post_adt(client, adt())
    response = post_adt(client, adt("A13", control_id="MSG00020"))
    assert response.status_code == 200 and "2 enrollments ended" in response.get_json()["detail"]
    with clocked.sessions() as session:
        assert session.scalars(select(Discharge)).one().status == "cancelled"
        assert {e.status for e in session.scalars(select(Enrollment)).all()} == {"ended"}
        assert session.scalars(select(ScheduledTouch).where(ScheduledTouch.status == "pending")).all() == []
    assert client.get("/api/v1/tcm?status=due", headers=AUTH).get_json()["discharges"] == []
    assert len(client.get("/api/v1/tcm?status=cancelled", headers=AUTH).get_json()["discharges"]) == 1


def test_other_adt_events_are_accepted_and_change_nothing(client: FlaskClient, clocked: Runtime) -> None:
    response = post_adt(client, adt("A02", control_id="XFER-1"))
    assert response.status_code == 200 and response.get_json()["ack_code"] == "AA"
    assert _counts(clocked)["patients"] == 0


def test_a_second_program_is_picked_by_query_or_by_the_mapping(
    client: FlaskClient, clocked: Runtime, program: Program
) -> None:
    with clocked.sessions() as session, session.begin():
        session.add(Program(slug="south-plan", name="South Plan", phone_display="555-0200", timezone="America/Chicago"))
    response = post_adt(client, adt(), program="south-plan")
    assert response.status_code == 200
    with clocked.sessions() as session:
        patient = session.scalars(select(Patient)).one()
        assert patient.program.slug == "south-plan" and patient.timezone == "America/Chicago"
        assert session.scalars(select(AdtMessage)).one().program_id == patient.program_id


# -- MLLP -------------------------------------------------------------------------------------------


@pytest.fixture()
def mllp(clocked: Runtime) -> Any:
    server = MllpServer(("127.0.0.1", 0), lambda text: receive_adt(clocked, text).ack)
    server.start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def test_mllp_answers_each_framed_message_with_its_ack_on_one_connection(mllp: MllpServer, clocked: Runtime) -> None:
    messages = [
        adt(),  # AA
        adt(control_id="BAD-1", mrn="E2002", phones=""),  # AE: no phone for a new patient
        "MSH|^~\\&|LAB|GH|OUTREACH|NORTH|20261130||ORU^R01|LAB-1|P|2.5\rOBX|1|NM|WT||80\r",  # AR
    ]
    with socket.create_connection(("127.0.0.1", mllp.port), timeout=10) as sock:
        # Two messages in one write, the third split across writes: framing, not packets, delimits them.
        sock.sendall(frame(messages[0]) + frame(messages[1]))
        third = frame(messages[2])
        sock.sendall(third[:10])
        sock.sendall(third[10:])
        raw = b""
        while raw.count(b"\x1c\x0d") < 3:
            chunk = sock.recv(65536)
            assert chunk, "the listener closed the connection early"
            raw += chunk
    assert raw.startswith(b"\x0b") and raw.endswith(b"\x1c\x0d")
    acks = [part.decode() for part in raw.split(b"\x1c\x0d")[:3]]
    assert [ack_code_of(a.lstrip("\x0b")) for a in acks] == ["AA", "AE", "AR"]
    assert "MSA|AA|MSG00001|" in acks[0]
    assert "MSA|AE|BAD-1|PID-13: no phone number that can receive texts" in acks[1]
    assert "MSA|AR|LAB-1|MSH-9: only ADT messages are accepted here" in acks[2]
    assert "ERR|||200^" in acks[2]
    with clocked.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 1
        rows = session.scalars(select(AdtMessage).order_by(AdtMessage.id)).all()
        assert [(r.control_id, r.ack_code) for r in rows] == [("MSG00001", "AA"), ("BAD-1", "AE"), ("LAB-1", "AR")]


def test_mllp_a03_to_first_scheduled_touch(mllp: MllpServer, clocked: Runtime) -> None:
    ack = send_message("127.0.0.1", mllp.port, adt())
    assert ack_code_of(ack) == "AA"
    with clocked.sessions() as session:
        touches = session.scalars(select(ScheduledTouch).order_by(ScheduledTouch.due_at)).all()
        # The schedule exists when the ACK arrives (the scheduler's own rules decide the times).
        assert touches and {t.status for t in touches} == {"pending"}
        assert {t.enrollment.campaign for t in touches} == {"post-discharge-30d", "hf-remote-monitoring"}


def test_mllp_bytes_outside_frames_are_ignored_and_latin1_is_read(mllp: MllpServer, clocked: Runtime) -> None:
    message = adt(family="Pe\xf1a").encode("latin-1")
    with socket.create_connection(("127.0.0.1", mllp.port), timeout=10) as sock:
        sock.sendall(b"\r\n garbage \x0b" + message + b"\x1c\x0d")
        ack = next(read_frames(sock)).decode()
    assert ack_code_of(ack) == "AA"
    with clocked.sessions() as session:
        assert session.scalars(select(Patient)).one().family_name == "Peña"


def test_a_fault_of_ours_is_an_ae_that_changes_nothing(
    client: FlaskClient, clocked: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("app.programs.adt.open_discharge", broken)
    response = post_adt(client, adt())
    assert response.status_code == 422
    assert response.get_json()["ack_code"] == "AE" and "internal error" in response.get_json()["error"]["message"]
    assert _counts(clocked) == {"patients": 0, "enrollments": 0, "scheduled_touches": 0, "discharges": 0}


def test_a03_for_a_patient_under_the_exemption_keeps_the_discharge_and_says_which_campaign_needs_consent(
    client: FlaskClient, clocked: Runtime
) -> None:
    """A campaign that needs more than 1 a day / 3 a week is not started for an exemption patient, never
    silently: the ACK detail and the patient's timeline say so; the discharge and its TCM clock still count."""
    from app.models import TimelineEvent

    with clocked.sessions() as session, session.begin():
        session.add(
            Program(slug="exempt-plan", name="Exempt Plan", phone_display="555-0300", uses_healthcare_exemption=True)
        )
    response = post_adt(client, adt(), program="exempt-plan")
    assert response.status_code == 200, response.get_json()
    detail = response.get_json()["detail"]
    assert "needs express consent first: " in detail
    with clocked.sessions() as session:
        patient = session.scalars(select(Patient)).one()
        assert session.scalars(select(Discharge)).one().patient_id == patient.id
        refused = session.scalars(
            select(TimelineEvent).where(
                TimelineEvent.patient_id == patient.id, TimelineEvent.code == "consent_required"
            )
        ).all()
        assert refused and all(event.detail["campaign"] in detail for event in refused)
