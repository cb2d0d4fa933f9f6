"""DESIGN §4.8: logs carry message SIDs and masked numbers, never message bodies, names or full phone
numbers — checked over a whole exchange, every logger included (app, RQ, twilio, urllib3)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.models import Program
from app.patients.phones import mask
from app.runtime import Runtime
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import (
    AUTH,
    inbound_params,
    install_clock,
    message_rows,
    new_sid,
    queue_one,
    run_worker,
    start_checkin,
    wall_now,
)
from tests.support.fake_twilio import FakeTwilio

PHONE = "+13125550142"
STRANGER = "+13125550199"
GIVEN, FAMILY = "Rosalind", "Whitfield"
INBOUND = ["zebra quartz umbrella", "182.5 lbs", "HELP", "no", "STOP"]
STRANGER_BODY = "is this about my heart test"


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.name, record.getMessage()]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def test_a_whole_exchange_logs_sids_and_masked_numbers_but_no_bodies_names_or_numbers(
    caplog: pytest.LogCaptureFixture,
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    post_twilio: Callable[..., Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = install_clock(rt, wall_now())
    patient = make_patient(given_name=GIVEN, family_name=FAMILY, phone=PHONE)

    def text(phone: str, body: str) -> None:
        assert post_twilio("/twilio/sms", inbound_params(phone, body)).status_code == 200
        run_worker(rt)

    start_checkin(rt, patient, clock.now)
    run_worker(rt)
    for body in INBOUND[:3]:  # gibberish (re-prompt), the weight, HELP
        text(PHONE, body)
    [first, *_] = message_rows(rt, direction="outbound")
    assert first.provider_sid
    for status in ("sent", "delivered"):
        params = {"MessageSid": first.provider_sid, "MessageStatus": status}
        assert post_twilio("/twilio/sms/status", params, query=f"mid={first.id}").status_code == 204
    # The next reply is taken by Twilio but the connection drops: the recovery looks it up by number.
    fake_twilio.fail_next("accept_then_drop")
    text(PHONE, INBOUND[3])
    tick(rt, clock.advance(dt.timedelta(minutes=3)))
    run_worker(rt)
    text(PHONE, INBOUND[4])
    text(STRANGER, STRANGER_BODY)
    # A status callback for a SID we never sent, and a send Twilio refuses.
    post_twilio("/twilio/sms/status", {"MessageSid": new_sid(), "MessageStatus": "delivered"})
    fake_twilio.fail_next("21211")
    other = make_patient(given_name="Bartholomew", family_name="Quince", phone="+13125550177")
    start_checkin(rt, other, clock.now)
    run_worker(rt)

    outbound = [m for m in message_rows(rt, direction="outbound") if m.provider_sid]
    assert len(outbound) >= 6
    records = [_record_text(r) for r in caplog.records]
    logged = "\n".join(records)
    assert len(records) > 10

    # What the logs should carry: the provider's SIDs and masked numbers.
    assert any(m.provider_sid in logged for m in outbound if m.provider_sid)
    assert mask(PHONE) in logged and mask(STRANGER) in logged

    forbidden = {
        *(str(m["Body"]) for m in fake_twilio.messages),
        *INBOUND[:2],
        STRANGER_BODY,
        "weight today in pounds",
        "Sorry, I didn't understand",
        "For help call",
        GIVEN,
        FAMILY,
        "Bartholomew",
        "Quince",
    }
    for number in (PHONE, STRANGER, "+13125550177"):
        forbidden |= {number, number[2:], "%2B" + number[1:]}
    leaks = sorted((secret, record.splitlines()[0]) for record in records for secret in forbidden if secret in record)
    assert leaks == []


# -- errors: a database error's text holds the row it refused; none of it may reach a log ----------------

MRN = "MRN-PHI-7731"
ERROR_PHONE = "+13125550163"
ERROR_BODY = "my chest feels tight since breakfast"


@contextmanager
def _refused_by_the_database(rt: Runtime, table: str, check: str) -> Iterator[None]:
    """Fault injection: a CHECK constraint the app knows nothing about, so the write fails in PostgreSQL
    with an error whose DETAIL holds the failing row (names, numbers, bodies)."""
    with rt.engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT phi_test_refusal CHECK ({check}) NOT VALID"))
    try:
        yield
    finally:
        with rt.engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {table} DROP CONSTRAINT phi_test_refusal"))


def _phi_leaks(records: list[logging.LogRecord], secrets: set[str]) -> list[tuple[str, str]]:
    texts = [_record_text(r) for r in records]
    return sorted((secret, text.splitlines()[0]) for text in texts for secret in secrets if secret in text)


def _numbers(number: str) -> set[str]:
    return {number, number[2:], number[-7:], "%2B" + number[1:]}


def test_a_database_500_on_the_api_logs_no_name_number_or_mrn(
    caplog: pytest.LogCaptureFixture, app: Flask, client: FlaskClient, rt: Runtime, program: Program
) -> None:
    caplog.set_level(logging.DEBUG)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error is logged and answered 500
    patient = {
        "mrn": MRN,
        "given_name": GIVEN,
        "family_name": FAMILY,
        "phone": ERROR_PHONE,
        "language": "en",
        "timezone": "America/Chicago",
        "program": program.slug,
        "conditions": ["heart_failure"],
    }
    with _refused_by_the_database(rt, "patients", "family_name <> 'Whitfield'"):
        response = client.post("/api/v1/patients", json=patient, headers=AUTH)
    assert response.status_code == 500
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "the failure itself must be logged"
    assert "CheckViolation" in "\n".join(_record_text(r) for r in errors)
    assert _phi_leaks(caplog.records, {MRN, GIVEN, FAMILY, *_numbers(ERROR_PHONE)}) == []


def test_a_database_error_on_the_webhook_logs_no_body_or_number(
    caplog: pytest.LogCaptureFixture,
    app: Flask,
    rt: Runtime,
    make_patient: Callable[..., Any],
    post_twilio: Callable[..., Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    make_patient(given_name=GIVEN, family_name=FAMILY, phone=ERROR_PHONE)
    with _refused_by_the_database(rt, "messages", "body NOT LIKE '%breakfast%'"):
        post_twilio("/twilio/sms", inbound_params(ERROR_PHONE, ERROR_BODY))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "the failure itself must be logged"
    assert "CheckViolation" in "\n".join(_record_text(r) for r in errors)
    assert _phi_leaks(caplog.records, {ERROR_BODY, "breakfast", GIVEN, FAMILY, *_numbers(ERROR_PHONE)}) == []


def test_a_send_job_that_fails_in_the_database_logs_no_body_or_number(
    caplog: pytest.LogCaptureFixture, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    patient = make_patient(given_name=GIVEN, family_name=FAMILY, phone=ERROR_PHONE)
    # Recording the send fails: the job raises inside RQ, which logs the failure.
    with _refused_by_the_database(rt, "messages", "status <> 'sent'"):
        queue_one(rt, patient, ERROR_BODY)
        run_worker(rt)
    assert fake_twilio.messages  # the provider call happened; only our write failed
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "the failure itself must be logged"
    assert "CheckViolation" in "\n".join(_record_text(r) for r in errors)
    assert _phi_leaks(caplog.records, {ERROR_BODY, "breakfast", GIVEN, FAMILY, *_numbers(ERROR_PHONE)}) == []


@pytest.mark.parametrize(
    ("statement", "secret"),
    [
        ("SELECT CAST(:v AS integer)", "Rosalind Whitfield"),  # invalid input syntax … "<value>"
        ("SELECT CAST(:v AS smallint)", "13125550163"),  # value "<value>" is out of range
        ("SELECT CAST(:v AS jsonb)", "MRN-PHI-7731"),  # DETAIL: Token "<value>" is invalid
        ("INSERT INTO programs (slug, name, phone_display) VALUES (:v, :v, '1'), (:v, :v, '1')", "+13125550163"),
        ("SELECT to_date(:v, 'YYYY-MM-DD')", "Whitfield-1950"),
    ],
)
def test_database_error_text_never_holds_the_values_it_refused(rt: Runtime, statement: str, secret: str) -> None:
    with pytest.raises(sa.exc.DBAPIError) as raised, rt.engine.begin() as conn:
        conn.execute(sa.text(statement), {"v": secret})
    text = "\n".join([str(raised.value), str(raised.value.orig), repr(raised.value.orig.args)])
    assert "sqlstate" in text
    for part in {secret, secret.split()[0], secret.lstrip("+")}:
        assert part not in text
