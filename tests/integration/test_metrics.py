"""``/metrics``: Prometheus' text format, read from SQL and Redis at scrape time, behind a bearer token.

The exposition text is parsed with prometheus_client's own parser, as Prometheus would read it; the work
behind each figure goes through the real paths (signed webhooks, the sweeper, RQ workers, a moved clock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from app.models import Message, Program
from app.runtime import Runtime
from tests.conftest import API_TOKEN
from tests.integration.sms_helpers import custom_app, inbound_params, install_clock, queue_one, start_checkin

ON_CALL = "+13125550001"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient, token: str = API_TOKEN) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_need_the_bearer_token(app_config: dict[str, Any], client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": API_TOKEN}).status_code == 401  # no "Bearer "
    assert "outreach_inbound_received_total" in client.get(
        "/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).get_data(as_text=True)
    with custom_app(app_config, metrics_token="metrics-only-" + "y" * 16) as (app, _rt):
        own = app.test_client()
        assert own.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 401
        assert scrape(own, "metrics-only-" + "y" * 16)
    with custom_app(app_config, api_token="") as (app, _rt):
        assert app.test_client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404
    # The liveness check stays open and cheap.
    assert client.get("/healthz").status_code == 200


def test_metrics_follow_a_text_from_the_prompt_to_the_page(
    rt: Runtime,
    client: FlaskClient,
    program: Program,
    make_patient: Callable[..., Any],
    post_twilio: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    with rt.sessions() as session, session.begin():
        prog = session.get(Program, program.id)
        assert prog is not None
        prog.on_call_phone = ON_CALL
    clock = install_clock(rt)
    patient = make_patient()
    start_checkin(rt, patient, clock.now)

    before = scrape(client)
    assert value(before, "outreach_metrics_source_up", source="database") == 1
    assert value(before, "outreach_metrics_source_up", source="queue") == 1
    assert value(before, "outreach_inbound_received_total") == 0
    assert value(before, "outreach_outbound_messages", kind_group="text", status="queued") == 1
    assert value(before, "outreach_outbound_due") == 1
    assert value(before, "outreach_queue_depth", queue="outreach", state="queued") == 1
    assert value(before, "outreach_pages_sent_total") == 0

    assert run_jobs() == 1
    response = post_twilio("/twilio/sms", inbound_params(patient.phone, "I have chest pain"))
    assert response.status_code == 200

    after = scrape(client)
    assert value(after, "outreach_inbound_received_total") == 1
    assert value(after, "outreach_inbound_processed_total") == 1
    assert value(after, "outreach_inbound_failed_total") == 0
    assert value(after, "outreach_inbound_pending") == 0
    assert value(after, "outreach_inbound_oldest_pending_age_seconds") == 0
    assert value(after, "outreach_outbound_messages", kind_group="text", status="sent") == 1  # the prompt
    assert value(after, "outreach_outbound_messages", kind_group="page", status="queued") == 1
    assert value(after, "outreach_escalations_open", level="EMERGENCY", status="open") == 1
    assert value(after, "outreach_escalations_sla_breached", level="EMERGENCY") == 0

    run_jobs()
    sent = scrape(client)
    assert value(sent, "outreach_pages_sent_total") == 1
    assert value(sent, "outreach_outbound_due") == 0
    assert value(sent, "outreach_queue_depth", queue="outreach", state="queued") == 0

    # Nobody acknowledged it: a day later it is past its SLA, now and in the running count.
    clock.advance(dt.timedelta(days=1))
    late = scrape(client)
    assert value(late, "outreach_escalations_sla_breached", level="EMERGENCY") == 1
    assert value(late, "outreach_escalation_sla_breaches_total", level="EMERGENCY") == 1


def test_a_stuck_outbound_pipeline_shows_within_a_minute(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any]
) -> None:
    """No worker runs: the due text's wait, and the RQ job at the head of the queue, are visible."""
    clock = install_clock(rt)
    queue_one(rt, make_patient(), "North Clinic: time for your check-in.")
    first = scrape(client)
    assert value(first, "outreach_outbound_due") == 1
    assert (value(first, "outreach_outbound_oldest_due_age_seconds") or 0) < 60
    head_age = value(first, "outreach_queue_oldest_job_age_seconds")
    assert head_age is not None and 0 < head_age < 60  # the send job waits at the head of the queue
    clock.advance(dt.timedelta(seconds=75))
    stuck = scrape(client)
    assert value(stuck, "outreach_outbound_due") == 1
    assert (value(stuck, "outreach_outbound_oldest_due_age_seconds") or 0) >= 75


def test_an_inbound_text_marked_for_retry_is_pending_then_failed(
    rt: Runtime, client: FlaskClient, make_patient: Callable[..., Any], post_twilio: Callable[..., Any]
) -> None:
    """How a store-first pipeline marks a text whose step raised (error class, next attempt): pending and
    ageing while a retry is due, failed once no retry is left."""
    clock = install_clock(rt)
    patient = make_patient()
    params = inbound_params(patient.phone, "182")
    assert post_twilio("/twilio/sms", params).status_code == 200
    with rt.sessions() as session, session.begin():
        session.execute(
            update(Message)
            .where(Message.provider_sid == params["MessageSid"])
            .values(error_code="ValueError", next_attempt_at=clock.now + dt.timedelta(minutes=1))
        )
    clock.advance(dt.timedelta(minutes=2))
    waiting = scrape(client)
    assert value(waiting, "outreach_inbound_pending") == 1
    assert value(waiting, "outreach_inbound_processed_total") == 0
    assert (value(waiting, "outreach_inbound_oldest_pending_age_seconds") or 0) >= 120
    with rt.sessions() as session, session.begin():
        session.execute(
            update(Message).where(Message.provider_sid == params["MessageSid"]).values(next_attempt_at=None)
        )
    given_up = scrape(client)
    assert value(given_up, "outreach_inbound_pending") == 0
    assert value(given_up, "outreach_inbound_failed_total") == 1
    assert value(given_up, "outreach_inbound_received_total") == 1


def test_metrics_answer_with_redis_down_and_say_so(app_config: dict[str, Any]) -> None:
    with custom_app(app_config, redis_url="redis://127.0.0.1:1/0") as (app, _rt):  # nothing listens there
        samples = scrape(app.test_client())
    assert value(samples, "outreach_metrics_source_up", source="queue") == 0
    assert value(samples, "outreach_metrics_source_up", source="database") == 1
    assert value(samples, "outreach_inbound_received_total") == 0
    assert not any(name == "outreach_queue_depth" for name, _labels in samples)
