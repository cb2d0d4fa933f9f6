"""Conversations on PostgreSQL: pinned flow versions, care-plan thresholds, the simulator CLI."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.cli import main as cli
from app.config import CONTENT_DIR
from app.conversations.service import resume_conversation, start_conversation
from app.flows import engine
from app.models import Answer, Conversation, Escalation, FlowVersion
from app.runtime import Runtime, clear_current
from tests.conftest import API_TOKEN

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def test_a_conversation_keeps_the_flow_version_it_started_on(
    rt: Runtime, make_patient: Callable[..., Any], app_config: dict[str, Any], tmp_path: Path
) -> None:
    patient = make_patient()
    with rt.sessions() as session, session.begin():
        conversation = start_conversation(session, rt, session.merge(patient), "hf-daily-check", NOW)
        started_on = conversation.flow_version

    # The content team rewrites the weight question while the patient is mid-conversation.
    edited = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, edited)
    flow_file = edited / "flows" / "hf-daily-check.yaml"
    flow_file.write_text(flow_file.read_text().replace("Are you more short of breath", "NEW WORDING: breath?"))
    clear_current()
    edited_app = create_app({**app_config, "content_dir": edited})
    edited_rt: Runtime = edited_app.extensions["outreach"]
    try:
        assert edited_rt.content.flow("hf-daily-check").version != started_on
        with edited_rt.sessions() as session, session.begin():
            conv = session.get(Conversation, conversation.id)
            assert conv is not None
            step = resume_conversation(
                session, edited_rt, session.merge(patient), conv, engine.Reply("182"), NOW, inbound=None
            )
        assert "Are you more short of breath" in step.said()[0]
        with edited_rt.sessions() as session:
            assert (
                session.scalar(select(FlowVersion.version).where(FlowVersion.flow_id == "hf-daily-check")) == started_on
            )
            # A new conversation starts on the new version.
            new_conv = start_conversation(session, edited_rt, session.merge(make_patient()), "hf-daily-check", NOW)
            assert new_conv.flow_version == edited_rt.content.flow("hf-daily-check").version
            session.rollback()
    finally:
        edited_rt.engine.dispose()
        clear_current()


def test_a_care_plan_threshold_set_through_the_api_changes_the_escalation(
    client: FlaskClient, program: Any, rt: Runtime
) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    typo = client.post(
        "/api/v1/patients",
        headers=auth,
        json={
            "mrn": "T1",
            "given_name": "Ada",
            "family_name": "Ruiz",
            "phone": "+13125550170",
            "thresholds": {"weight_gain_one_day": 2},
        },
    )
    assert typo.status_code == 422
    assert "weight_gain_one_day" in typo.json["error"]["fields"]["thresholds"]
    created = client.post(
        "/api/v1/patients",
        headers=auth,
        json={
            "mrn": "T1",
            "given_name": "Ada",
            "family_name": "Ruiz",
            "phone": "+13125550170",
            "thresholds": {"weight_gain_1_day_lb": 2},
        },
    )
    assert created.status_code == 201
    assert created.json["thresholds"] == {"weight_gain_1_day_lb": 2.0}
    from app.models import Patient

    with rt.sessions() as session, session.begin():
        patient = session.scalars(select(Patient)).one()
        session.add(
            Answer(
                patient_id=patient.id,
                conversation_id=_ended_conversation(session, patient.id),
                flow_id="hf-daily-check",
                question_id="weight",
                kind="number",
                value_number=180.0,
                unit="lb",
                raw="180",
                channel="sms",
                answered_at=NOW - dt.timedelta(days=1),
            )
        )
        conversation = start_conversation(session, rt, patient, "hf-daily-check", NOW)
        # The weight, then NO to the symptom questions: the check-in's signs are escalated at its end.
        for body in ("182", "no", "no", "no", "no", "no", "no", "no"):
            resume_conversation(session, rt, patient, conversation, engine.Reply(body), NOW, inbound=None)
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        assert (escalation.level, escalation.reason) == ("URGENT", "weight_gain")


def _ended_conversation(session: Any, patient_id: int) -> int:
    conversation = Conversation(
        patient_id=patient_id,
        flow_id="hf-daily-check",
        flow_version="old",
        status="completed",
        state={},
        started_at=NOW - dt.timedelta(days=1),
    )
    session.add(conversation)
    session.flush()
    return conversation.id


def test_simulate_plays_a_flow_from_standard_input(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["simulate", "hf-daily-check", "--lang", "es"], input="183\nsí\nsí\n")
    assert result.exit_code == 0, result.output
    assert "libras" in result.output
    assert "[answer weight = 183.0 lb]" in result.output
    assert "ESCALATION EMERGENCY: breathless_at_rest" in result.output
    assert "911" in result.output
    assert "(conversation completed: escalated)" in result.output


def test_simulate_plays_a_flow_as_a_call_in_a_pipe(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        cli,
        ["simulate", "hf-daily-check", "--channel", "voice", "--lang", "es", "--nurse-line", "+15550100"],
        input="say[0.3]: 183\n1\n\n2\nsay: me duele el pecho ahora\n0\n",
    )
    assert result.exit_code == 0, result.output
    assert "oprima la tecla numeral" in result.output
    assert "Para no recibir más llamadas, oprima 9." in result.output
    assert "[keys, # to end | speech es-US]" in result.output
    assert "Escuché 183. Oprima 1 si es correcto" in result.output
    assert "[answer weight = 183.0 lb]" in result.output
    assert "Perdone, no le escuché." in result.output
    assert "[answer breath = False]" in result.output
    assert "ESCALATION EMERGENCY: chest_pain" in result.output and "911" in result.output
    assert "oprima 0" in result.output and "[dials +15550100]" in result.output
    assert "(call ended; conversation completed: red_flag)" in result.output


def test_simulate_refuses_an_unknown_flow(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["simulate", "no-such-flow"])
    assert result.exit_code != 0
    assert "unknown flow" in result.output


def test_simulate_refuses_and_does_not_list_an_internal_flow(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["simulate", "right-now-check"])
    assert result.exit_code != 0
    assert "unknown flow 'right-now-check'" in result.output
    known = result.output.split("known:", 1)[1]
    assert "hf-daily-check" in known
    assert "right-now-check" not in known
