"""DESIGN §4.8: logs carry message SIDs and masked numbers, never message bodies, names or full phone
numbers — checked over a whole exchange, every logger included (app, RQ, twilio, urllib3)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest

from app.phones import mask
from app.runtime import Runtime
from app.scheduling.sweeper import tick
from tests.integration.sms_helpers import (
    inbound_params,
    install_clock,
    message_rows,
    new_sid,
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
