"""Twilio retrying one inbound webhook, many times at once, over real HTTP: one stored message, one
answer, one reply; every request answered 200."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app.runtime import Runtime
from tests.conftest import PUBLIC_BASE_URL
from tests.integration.sms_helpers import (
    answers,
    inbound_params,
    install_clock,
    message_rows,
    run_worker,
    start_checkin,
    texts_to,
)
from tests.support.fake_twilio import FakeTwilio, sign

COPIES = 1000
CLIENTS = 64


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@pytest.fixture()
def served_app(app: Flask) -> Iterator[str]:
    """The app behind a real threaded HTTP server, as gunicorn's threads would serve it."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    server.request_queue_size = 256
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_a_thousand_identical_webhooks_at_once_store_one_message_and_one_answer(
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    served_app: str,
) -> None:
    install_clock(rt)
    patient = make_patient()
    start_checkin(rt, patient, rt.now())
    run_worker(rt)
    [prompt] = texts_to(fake_twilio, patient.phone)

    params = inbound_params(patient.phone, "182")
    headers = {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/twilio/sms", params, fake_twilio.auth_token)}
    local = threading.local()

    def post(_: int) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        return session.post(served_app + "/twilio/sms", data=params, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(post, range(COPIES)))
    assert statuses == [200] * COPIES

    run_worker(rt)
    [inbound] = message_rows(rt, direction="inbound")
    assert inbound.provider_sid == params["MessageSid"]
    assert [(a.question_id, a.value) for a in answers(rt, patient.id)] == [("weight", 182.0)]
    sent = texts_to(fake_twilio, patient.phone)
    assert sent[0] == prompt
    assert len(sent) == 2  # the weight prompt and one next question, not a thousand
    assert "short of breath" in sent[1]
