"""Every /twilio/* SMS endpoint checks X-Twilio-Signature with the twilio library, over PUBLIC_BASE_URL +
path + the raw query string and the form exactly as posted; anything else is 403 and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.channels.signatures import is_signed, signed_url
from app.models import Message
from app.runtime import Runtime
from tests.conftest import PUBLIC_BASE_URL
from tests.integration.sms_helpers import (
    inbound_params,
    message_row,
    message_rows,
    new_sid,
    queue_one,
    signed_post,
)
from tests.support.fake_twilio import FakeTwilio, sign

# Twilio's own published example (twilio-python tests, "Validating requests" docs).
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def _count_messages(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


@pytest.mark.parametrize(("signature", "valid"), [(VECTOR_SIGNATURE, True), ("RSOYDt4T1cUTdK1PDd93/VVr8B9=", False)])
def test_twilio_published_vector_through_the_app_validator(signature: str, valid: bool) -> None:
    # The request reaches the app on an internal host; the validator must rebuild Twilio's public URL.
    bare = Flask(__name__)
    with bare.test_request_context(
        "/myapp.php?foo=1&bar=2",
        method="POST",
        base_url="http://10.0.0.5:8000",
        data=VECTOR_PARAMS,
        headers={"X-Twilio-Signature": signature},
    ):
        from flask import request

        assert signed_url("https://mycompany.com", request) == VECTOR_URL
        assert is_signed(VECTOR_TOKEN, "https://mycompany.com/", request) is valid


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/sms/status"])
def test_request_signed_for_the_public_https_url_is_accepted_behind_a_tls_proxy(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], path: str
) -> None:
    patient = make_patient()
    if path == "/twilio/sms":
        params = inbound_params(patient.phone, "hello")
        query = ""
    else:
        mid = queue_one(rt, patient, "Your check-in is ready.")
        params = {"MessageSid": new_sid(), "MessageStatus": "delivered"}
        query = f"mid={mid}"
    response = signed_post(
        client, path, params, token=fake_twilio.auth_token, query=query, base_url="http://10.0.0.5:8000"
    )
    assert response.status_code in {200, 204}
    if path == "/twilio/sms":
        [stored] = message_rows(rt, direction="inbound")
        assert stored.provider_sid == params["MessageSid"]
    else:
        row = message_row(rt, int(query.split("=")[1]))
        assert row.status == "delivered"
        assert row.provider_sid == params["MessageSid"]


def test_percent_encoded_query_is_validated_over_the_raw_string(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient()
    params = inbound_params(patient.phone, "hello")
    response = signed_post(client, "/twilio/sms", params, token=fake_twilio.auth_token, query="mid=5&x=%27a%27")
    assert response.status_code == 200
    assert len(message_rows(rt, direction="inbound")) == 1


def test_percent_encoded_query_on_the_status_callback(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    mid = queue_one(rt, make_patient(), "Your check-in is ready.")
    sid = new_sid()
    response = signed_post(
        client,
        "/twilio/sms/status",
        {"MessageSid": sid, "MessageStatus": "sent"},
        token=fake_twilio.auth_token,
        query=f"mid={mid}&note=%27%20x%27",
    )
    assert response.status_code == 204
    assert message_row(rt, mid).provider_sid == sid


def test_repeated_keys_are_all_part_of_the_signature(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    patient = make_patient()
    pairs = [
        *inbound_params(patient.phone, "photo of my legs").items(),
        ("MediaUrl", "https://api.twilio.com/media/ME1"),
        ("MediaUrl", "https://api.twilio.com/media/ME2"),
    ]
    response = signed_post(client, "/twilio/sms", pairs, token=fake_twilio.auth_token)
    assert response.status_code == 200
    assert len(message_rows(rt, direction="inbound")) == 1


def test_repeated_keys_signed_with_one_value_dropped_are_refused(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    # Signed over one MediaUrl, posted with two: the second value must not slip past the check.
    patient = make_patient()
    base = list(inbound_params(patient.phone, "photo").items())
    signature = sign(PUBLIC_BASE_URL + "/twilio/sms", [*base, ("MediaUrl", "https://m/1")], fake_twilio.auth_token)
    response = signed_post(
        client,
        "/twilio/sms",
        [*base, ("MediaUrl", "https://m/1"), ("MediaUrl", "https://m/2")],
        token=fake_twilio.auth_token,
        signature=signature,
    )
    assert response.status_code == 403
    assert _count_messages(rt) == 0


def _bad_signature(case: str, token: str, url: str, params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """Returns the params to post and the signature header to send (None: no header at all)."""
    if case == "missing":
        return params, None
    if case == "wrong":
        return params, sign(url, params, "not-the-auth-token")
    # replayed: a genuine signature captured for Body=yes, posted again with Body=no
    assert case == "replayed-with-changed-params"
    return {**params, "Body": "no"}, sign(url, {**params, "Body": "yes"}, token)


@pytest.mark.parametrize("case", ["missing", "wrong", "replayed-with-changed-params"])
def test_bad_signature_on_inbound_is_403_and_stores_nothing(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], case: str
) -> None:
    patient = make_patient()
    params, signature = _bad_signature(
        case, fake_twilio.auth_token, PUBLIC_BASE_URL + "/twilio/sms", inbound_params(patient.phone, "yes")
    )
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    response = client.post("/twilio/sms", data=params, headers=headers)
    assert response.status_code == 403
    assert _count_messages(rt) == 0


@pytest.mark.parametrize("case", ["missing", "wrong", "replayed-with-changed-params"])
def test_bad_signature_on_status_callback_is_403_and_changes_nothing(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], case: str
) -> None:
    mid = queue_one(rt, make_patient(), "Your check-in is ready.")
    url = f"{PUBLIC_BASE_URL}/twilio/sms/status?mid={mid}"
    params = {"MessageSid": new_sid(), "MessageStatus": "failed", "ErrorCode": "21610", "Body": "yes"}
    posted, signature = _bad_signature(case, fake_twilio.auth_token, url, params)
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    response = client.post(f"/twilio/sms/status?mid={mid}", data=posted, headers=headers)
    assert response.status_code == 403
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid, row.error_code, row.needs_review) == ("queued", None, None, False)


def test_signature_for_another_path_or_query_is_refused(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any]
) -> None:
    mid = queue_one(rt, make_patient(), "Your check-in is ready.")
    params = {"MessageSid": new_sid(), "MessageStatus": "delivered"}
    # Signed for a different message id: the query string is part of what Twilio signs.
    signature = sign(f"{PUBLIC_BASE_URL}/twilio/sms/status?mid={mid + 1}", params, fake_twilio.auth_token)
    response = client.post(f"/twilio/sms/status?mid={mid}", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert message_row(rt, mid).status == "queued"


def test_every_twilio_route_refuses_unsigned_and_badly_signed_posts(
    app: Flask, client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio
) -> None:
    """Covers routes added later too (voice): anything under /twilio/ that takes a POST."""
    routes = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/twilio/") and "POST" in (rule.methods or set())
    )
    assert {"/twilio/sms", "/twilio/sms/status"} <= set(routes)
    params = {"MessageSid": new_sid(), "CallSid": new_sid("CA"), "From": "+12025550100", "Body": "yes"}
    for path in routes:
        assert client.post(path, data=params).status_code == 403, path
        forged = sign(PUBLIC_BASE_URL + path, params, "not-the-auth-token")
        assert client.post(path, data=params, headers={"X-Twilio-Signature": forged}).status_code == 403, path
        # Signed for the internal URL the app sees, not the public one Twilio calls: refused as well.
        internal = sign("http://localhost" + path, params, fake_twilio.auth_token)
        assert client.post(path, data=params, headers={"X-Twilio-Signature": internal}).status_code == 403, path
    assert _count_messages(rt) == 0


# -- requests that cannot even be checked: every one is refused with 403, never a 500 or a 413 ----------

BOUNDARY = "----outreach-test-boundary"


def _multipart(*parts: tuple[str | None, str]) -> bytes:
    """A multipart body by hand (a test client would refuse to build a part without a name)."""
    chunks = []
    for name, value in parts:
        disposition = "form-data" if name is None else f'form-data; name="{name}"'
        chunks.append(f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n")
    return ("".join(chunks) + f"--{BOUNDARY}--\r\n").encode()


def _hostile(case: str, path: str, token: str) -> dict[str, Any]:
    """client.post keyword arguments for one request that fails its signature in an unusual way."""
    multipart = f"multipart/form-data; boundary={BOUNDARY}"
    named = {"MessageSid": new_sid(), "From": "+12025550100", "Body": "yes", "MessageStatus": "delivered"}
    good = sign(PUBLIC_BASE_URL + path, named, token)
    if case == "nameless part, unsigned":
        return {"data": _multipart(*named.items(), (None, "x")), "content_type": multipart}
    if case == "nameless part, forged header":
        return {
            "data": _multipart(*named.items(), (None, "x")),
            "content_type": multipart,
            "headers": {"X-Twilio-Signature": "abc="},
        }
    if case == "nameless part beside correctly signed fields":
        return {
            "data": _multipart(*named.items(), (None, "x")),
            "content_type": multipart,
            "headers": {"X-Twilio-Signature": good},
        }
    if case == "file part beside correctly signed fields":
        body = _multipart(*named.items()).replace(
            f"--{BOUNDARY}--".encode(),
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nzz\r\n'
            f"--{BOUNDARY}--".encode(),
        )
        return {"data": body, "content_type": multipart, "headers": {"X-Twilio-Signature": good}}
    if case == "multipart without a boundary":
        return {"data": b"MessageSid=1", "content_type": "multipart/form-data", "headers": {"X-Twilio-Signature": good}}
    if case == "truncated multipart":
        body = _multipart(*named.items())[:-40]
        return {"data": body, "content_type": multipart, "headers": {"X-Twilio-Signature": good}}
    if case == "form body that is not UTF-8":
        return {
            "data": b"MessageSid=SM1&Body=%ff%fe\xff&From=%2B1202",
            "content_type": "application/x-www-form-urlencoded",
            "headers": {"X-Twilio-Signature": "abc="},
        }
    if case == "JSON body":
        return {"data": b'{"Body": "yes"}', "content_type": "application/json", "headers": {"X-Twilio-Signature": good}}
    if case == "missing header":
        return {"data": named}
    if case == "empty header":
        return {"data": named, "headers": {"X-Twilio-Signature": ""}}
    if case == "non-ASCII header":
        return {"data": named, "headers": {"X-Twilio-Signature": "é" + good[1:]}}
    if case == "body over the size limit":
        return {
            "data": b"Body=" + b"x" * (2 * 1024 * 1024),
            "content_type": "application/x-www-form-urlencoded",
            "headers": {"X-Twilio-Signature": good},
        }
    raise AssertionError(case)


HOSTILE = [
    "nameless part, unsigned",
    "nameless part, forged header",
    "nameless part beside correctly signed fields",
    "file part beside correctly signed fields",
    "multipart without a boundary",
    "truncated multipart",
    "form body that is not UTF-8",
    "JSON body",
    "missing header",
    "empty header",
    "non-ASCII header",
    "body over the size limit",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_every_request_that_fails_its_signature_for_any_reason_is_403(
    app: Flask, client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, make_patient: Callable[..., Any], case: str
) -> None:
    mid = queue_one(rt, make_patient(), "Your check-in is ready.")
    routes = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/twilio/") and "POST" in (rule.methods or set())
    )
    for path in routes:
        response = client.post(path, **_hostile(case, path, fake_twilio.auth_token))
        assert response.status_code == 403, (path, response.status_code)
    assert _count_messages(rt) == 1
    row = message_row(rt, mid)
    assert (row.status, row.provider_sid) == ("queued", None)
