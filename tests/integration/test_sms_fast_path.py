"""POST /twilio/sms below Flask (app/channels/sms_fast_path.py): the common signed text is stored by the
middleware itself; every other request reaches the Flask view with its body intact and gets the view's
answer; both give the same stored row. On PostgreSQL (the fast path is off on SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.channels import sms_fast_path
from app.channels.sms_fast_path import EMPTY_TWIML, InboundSmsFastPath
from app.runtime import Runtime
from tests.integration.sms_helpers import inbound_params, message_rows, new_sid, signed_post
from tests.support.fake_twilio import FakeTwilio


@pytest.fixture()
def inner_calls(app: Flask) -> list[str]:
    """Paths the wrapped Flask app was asked to answer (the middleware stays in place)."""
    middleware = app.wsgi_app
    assert isinstance(middleware, InboundSmsFastPath)
    assert middleware.enabled, "these tests run on PostgreSQL"
    calls: list[str] = []
    flask_app = middleware.inner

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    middleware.inner = recording
    return calls


def test_a_signed_text_is_stored_by_the_middleware_with_the_views_answer(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], inner_calls: list[str]
) -> None:
    patient = make_patient()
    response = signed_post(client, "/twilio/sms", inbound_params(patient.phone, "182"), token=fake_twilio.auth_token)
    assert response.status_code == 200
    assert response.data == EMPTY_TWIML
    assert response.mimetype == "text/xml"
    assert response.headers["Cache-Control"] == "no-store"
    assert inner_calls == []
    [row] = message_rows(rt, direction="inbound")
    assert (row.body, row.patient_id, row.status) == ("182", patient.id, "pending")


def test_cleaning_is_the_views_nul_and_controls_stripped_utf8_kept(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], inner_calls: list[str]
) -> None:
    patient = make_patient()
    body = "dolor\x00 en el pecho\x07 😟 ñ\n2"
    response = signed_post(client, "/twilio/sms", inbound_params(patient.phone, body), token=fake_twilio.auth_token)
    assert response.status_code == 200
    assert inner_calls == []
    [row] = message_rows(rt, direction="inbound")
    assert row.body == "dolor en el pecho 😟 ñ\n2"


def test_a_replayed_sid_is_stored_once(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], inner_calls: list[str]
) -> None:
    patient = make_patient()
    params = inbound_params(patient.phone, "yes", sid=new_sid())
    for _ in range(3):
        assert signed_post(client, "/twilio/sms", params, token=fake_twilio.auth_token).status_code == 200
    assert len(message_rows(rt, direction="inbound")) == 1
    assert inner_calls == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong signature", 403),
        ("no signature", 403),
        ("nameless field", 403),
        ("sid too long", 400),
        ("stop keyword", 200),
        ("no sender", 200),
    ],
)
def test_everything_else_reaches_the_flask_view_with_its_body(
    client: FlaskClient,
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    inner_calls: list[str],
    case: str,
    expected: int,
) -> None:
    patient = make_patient()
    params: list[tuple[str, str]] = list(
        inbound_params(patient.phone, "STOP" if case == "stop keyword" else "hi").items()
    )
    signature: str | None = None
    if case == "wrong signature":
        signature = "bm90IGEgc2lnbmF0dXJl"
    elif case == "no signature":
        signature = ""
    elif case == "nameless field":
        params.append(("", "x"))
    elif case == "sid too long":
        params = [(k, "SM" + "a" * 70 if k == "MessageSid" else v) for k, v in params]
    elif case == "no sender":
        params = [(k, "" if k == "From" else v) for k, v in params]
    response = signed_post(client, "/twilio/sms", params, token=fake_twilio.auth_token, signature=signature)
    assert response.status_code == expected
    assert inner_calls == ["/twilio/sms"]
    stored = message_rows(rt, direction="inbound")
    if case == "stop keyword":
        [row] = stored
        assert row.body == "STOP"
    else:
        assert stored == []


def test_a_failure_in_the_middleware_is_redone_by_the_view_and_stored_once(
    client: FlaskClient,
    rt: Runtime,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    inner_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = sms_fast_path.receive_sms

    def store_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # committed, then the kick or the answer fails
        raise ConnectionError("lost after the commit")

    monkeypatch.setattr(sms_fast_path, "receive_sms", store_then_fail)
    patient = make_patient()
    response = signed_post(
        client, "/twilio/sms", inbound_params(patient.phone, "chest pain"), token=fake_twilio.auth_token
    )
    assert response.status_code == 200
    assert inner_calls == ["/twilio/sms"]
    [row] = message_rows(rt, direction="inbound")
    assert row.body == "chest pain"


def test_other_paths_and_methods_are_not_touched(client: FlaskClient, inner_calls: list[str]) -> None:
    assert client.get("/twilio/sms").status_code == 405
    assert client.get("/healthz").status_code in {200, 503}
    assert inner_calls == ["/twilio/sms", "/healthz"]
