"""The fake Twilio server, driven by the real ``twilio`` client.

Why: every send-path test in the suite trusts this fake; if it drifted from what the client sends or
parses (paths, auth, error bodies, segments, signatures), those tests would pass against a fiction.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from app.channels.twilio_http import RedirectingHttpClient
from tests.support.fake_twilio import FakeTwilio, count_segments, sign, sms_encoding

REPO = Path(__file__).resolve().parents[2]
TO = "+15417543010"
FROM = "+15005550006"
SERVICE = "MG" + "1" * 32


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


def make_client(fake: FakeTwilio, **http_kwargs: Any) -> Any:
    http = RedirectingHttpClient(fake.base_url, **http_kwargs)
    return Client(fake.account_sid, fake.auth_token, http_client=http, environment={})


@pytest.fixture
def client(fake: FakeTwilio) -> Any:
    return make_client(fake)


class Receiver:
    """A stand-in for the app's webhook endpoint that keeps what it was posted."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((request.full_path, dict(request.form), dict(request.headers)))
        return Response("", status=204)(environ, start_response)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- creating, fetching, listing --------------------------------------------------------------------


def test_create_with_from_answers_like_twilio(fake: FakeTwilio, client: Any) -> None:
    message = client.messages.create(to=TO, from_=FROM, body="a" * 161)

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.num_segments == "2"
    assert (message.to, message.from_, message.body) == (TO, FROM, "a" * 161)
    assert message.direction == "outbound-api"
    assert message.account_sid == fake.account_sid
    assert isinstance(message.date_created, datetime)
    assert message.price is None and message.error_code is None
    assert message.uri == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{message.sid}.json"

    [recorded] = fake.messages
    assert recorded["sid"] == message.sid
    assert (recorded["To"], recorded["From"], recorded["Body"]) == (TO, FROM, "a" * 161)
    assert recorded["num_segments"] == 2 and recorded["status"] == "queued"
    assert abs(recorded["time"] - time.time()) < 10


def test_create_through_messaging_service_has_no_from(fake: FakeTwilio, client: Any) -> None:
    message = client.messages.create(to=TO, messaging_service_sid=SERVICE, body="á" * 71)

    assert message.from_ is None
    assert message.messaging_service_sid == SERVICE
    assert message.num_segments == "2"
    assert client.messages.create(to=TO, messaging_service_sid=SERVICE, body="á" * 70).num_segments == "1"
    assert fake.messages[0]["MessagingServiceSid"] == SERVICE
    assert "From" not in fake.messages[0]


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters count twice: 160 septets
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),  # the escape pair can't straddle parts
        ("¿Cómo está? ñ é ü ¡", "UCS-2", 1),  # ó and á are not GSM-7
        ("¿Como esta? ñ é ü ¡", "GSM-7", 1),
        ("it’s", "UCS-2", 1),  # one curly quote is enough
        ("á" * 70, "UCS-2", 1),
        ("á" * 71, "UCS-2", 2),
        ("á" * 134, "UCS-2", 2),
        ("á" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # surrogate pairs: two units each
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segments(body: str, encoding: str, segments: int) -> None:
    assert sms_encoding(body) == encoding
    assert count_segments(body) == segments


def test_fetch_back_and_unknown_sid(fake: FakeTwilio, client: Any) -> None:
    sid = client.messages.create(to=TO, from_=FROM, body="hello").sid

    fetched = client.messages(sid).fetch()
    assert (fetched.sid, fetched.body, fetched.status) == (sid, "hello", "queued")

    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_list_filters_by_to_and_follows_pages(fake: FakeTwilio, client: Any) -> None:
    for i in range(5):
        client.messages.create(to=TO, from_=FROM, body=f"to one {i}")
    client.messages.create(to="+15417543011", from_=FROM, body="to another")

    listed = client.messages.list(to=TO, page_size=2)
    assert [m.body for m in listed] == [f"to one {i}" for i in reversed(range(5))]  # newest first
    assert [m.body for m in client.messages.list(to="+15417543011")] == ["to another"]
    assert len(client.messages.list(limit=3)) == 3
    assert client.messages.list(to="+15417543099") == []

    raw = requests.get(
        f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
        params={"To": TO, "PageSize": "2"},
        auth=(fake.account_sid, fake.auth_token),
        timeout=5,
    ).json()
    assert set(raw) >= {
        "messages",
        "page",
        "page_size",
        "first_page_uri",
        "next_page_uri",
        "uri",
        "start",
        "end",
    }
    assert (raw["page"], raw["page_size"], raw["start"], raw["end"]) == (0, 2, 0, 1)
    assert raw["previous_page_uri"] is None and raw["next_page_uri"]


def test_list_filters_by_date_sent(client: Any) -> None:
    client.messages.create(to=TO, from_=FROM, body="today")
    a_year_ago = datetime.now(UTC) - timedelta(days=365)
    assert len(client.messages.list(date_sent_after=a_year_ago)) == 1
    assert client.messages.list(date_sent_before=a_year_ago) == []


def test_create_call_is_recorded(fake: FakeTwilio, client: Any) -> None:
    call = client.calls.create(
        to=TO,
        from_=FROM,
        url="https://outreach.example.org/voice/start",
        status_callback="https://outreach.example.org/voice/status",
        machine_detection="DetectMessageEnd",
        async_amd="true",
    )

    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert (call.status, call.to, call.from_formatted, call.direction) == ("queued", TO, FROM, "outbound-api")
    [recorded] = fake.calls
    assert recorded["sid"] == call.sid
    assert recorded["MachineDetection"] == "DetectMessageEnd" and recorded["AsyncAmd"] == "true"
    assert client.calls(call.sid).fetch().status == "queued"
    assert fake.messages == []


def test_validation_errors(client: Any) -> None:
    cases: list[tuple[dict[str, str], int]] = [
        ({"to": TO, "body": "no sender"}, 21603),
        ({"to": TO, "from_": FROM, "body": "x" * 1601}, 21617),
        ({"to": "5417543010", "from_": FROM, "body": "not E.164"}, 21211),
    ]
    for kwargs, code in cases:
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(**kwargs)
        assert (caught.value.status, caught.value.code) == (400, code), kwargs
    assert client.messages.create(to=TO, from_=FROM, body="x" * 1600).num_segments == "11"
    with pytest.raises(TwilioRestException) as caught:
        client.calls.create(to=TO, from_=FROM)
    assert caught.value.status == 400


def test_bad_auth_is_401_with_twilio_error_shape(fake: FakeTwilio) -> None:
    wrong = Client(
        fake.account_sid,
        "wrong-token",
        http_client=RedirectingHttpClient(fake.base_url),
        environment={},
    )
    with pytest.raises(TwilioRestException) as caught:
        wrong.messages.create(to=TO, from_=FROM, body="hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)

    anonymous = requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
        data={"To": TO, "From": FROM, "Body": "hi"},
        timeout=5,
    )
    assert anonymous.status_code == 401
    body = anonymous.json()
    assert (body["code"], body["message"], body["status"]) == (20003, "Authenticate", 401)
    assert body["more_info"].startswith("https://")
    assert fake.messages == []
    assert [r["status"] for r in fake.requests] == [401, 401]


# -- scripted failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("429", 429, 20429),
        ("500", 500, 20500),
        ("21610", 400, 21610),
        ("21211", 400, 21211),
        ("21614", 400, 21614),
    ],
)
def test_scripted_failure_raises_twilio_rest_exception(
    fake: FakeTwilio, client: Any, kind: str, status: int, code: int
) -> None:
    fake.fail_next(kind)
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, from_=FROM, body="hi")
    assert (caught.value.status, caught.value.code) == (status, code)
    assert fake.messages == []
    assert client.messages.create(to=TO, from_=FROM, body="hi").status == "queued"  # only once


def test_failures_are_fifo_and_apply_to_calls_too(fake: FakeTwilio, client: Any) -> None:
    fake.fail_next("429", times=2)
    fake.fail_next("21610")
    codes = []
    for _ in range(3):
        with pytest.raises(TwilioRestException) as caught:
            client.calls.create(to=TO, from_=FROM, twiml="<Response/>")
        codes.append(caught.value.code)
    assert codes == [20429, 20429, 21610]
    assert client.calls.create(to=TO, from_=FROM, twiml="<Response/>").status == "queued"
    with pytest.raises(ValueError):
        fake.fail_next("418")


def test_failures_do_not_apply_to_fetches(fake: FakeTwilio, client: Any) -> None:
    sid = client.messages.create(to=TO, from_=FROM, body="hi").sid
    fake.fail_next("500")
    assert client.messages(sid).fetch().sid == sid
    assert len(client.messages.list()) == 1
    with pytest.raises(TwilioRestException):
        client.messages.create(to=TO, from_=FROM, body="hi")


def test_fail_for_number_and_magic_numbers(fake: FakeTwilio, client: Any) -> None:
    fake.fail_for_number("+15417543012", "21610")
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to="+15417543012", from_=FROM, body="STOP was sent")
        assert caught.value.code == 21610
    assert client.messages.create(to=TO, from_=FROM, body="others are fine").status == "queued"
    fake.fail_for_number("+15417543012", None)
    assert client.messages.create(to="+15417543012", from_=FROM, body="lifted").status == "queued"

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+15005550009", from_=FROM, body="landline")
    assert caught.value.code == 21614


def test_hang_makes_the_client_time_out(fake: FakeTwilio) -> None:
    fake.hang_seconds = 8
    fake.fail_next("hang")
    impatient = make_client(fake, timeout=1)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        impatient.messages.create(to=TO, from_=FROM, body="hi")
    assert time.monotonic() - started < 6  # the client's 1 s timeout, not the server's 8 s, ended the wait
    assert fake.messages == []
    assert impatient.messages.create(to=TO, from_=FROM, body="next").status == "queued"


def test_accept_then_drop_records_the_message_but_the_caller_never_learns_it(fake: FakeTwilio, client: Any) -> None:
    fake.fail_next("accept_then_drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.messages.create(to=TO, from_=FROM, body="did it go?")

    [recorded] = fake.messages
    assert recorded["Body"] == "did it go?"
    # The recovery the app must do: look the message up instead of sending again.
    [found] = client.messages.list(to=TO)
    assert found.sid == recorded["sid"]
    assert fake.requests[0]["status"] is None


def test_latency_is_added_to_api_calls(fake: FakeTwilio, client: Any) -> None:
    fake.latency_ms = 200
    started = time.monotonic()
    client.messages.create(to=TO, from_=FROM, body="slow")
    assert time.monotonic() - started >= 0.2


def test_concurrent_sends_are_all_recorded(fake: FakeTwilio) -> None:
    sids: list[str] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        local = make_client(fake)
        for i in range(10):
            sid = local.messages.create(to=TO, from_=FROM, body=f"{worker}-{i}").sid
            with lock:
                sids.append(sid)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(sids) == len(set(sids)) == 80
    assert len(fake.wait_for_messages(80, timeout=10)) == 80
    assert {m["sid"] for m in fake.messages} == set(sids)


def test_reset_clears_records_and_failures(fake: FakeTwilio, client: Any) -> None:
    client.messages.create(to=TO, from_=FROM, body="hi")
    fake.fail_next("500", times=3)
    fake.fail_for_number(TO, "21610")
    fake.reset()
    assert fake.messages == [] and fake.requests == [] and fake.calls == []
    assert client.messages.create(to=TO, from_=FROM, body="hi").status == "queued"


# -- callbacks and signatures --------------------------------------------------------------------------


def test_twilio_published_signature_vector() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert sign(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign(url, list(params.items()), "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_status_callback_is_signed_over_the_public_url(fake: FakeTwilio, client: Any) -> None:
    public_url = "https://outreach.example.org/webhooks/twilio/status?attempt=7"
    message = client.messages.create(to=TO, from_=FROM, body="hi", status_callback=public_url)

    with Receiver() as receiver:
        assert fake.status_callback(message.sid, "delivered", base_url_override=receiver.base_url) == 204
        assert fake.status_callback(message.sid, "undelivered", 30003, receiver.base_url) == 204

    validator = RequestValidator(fake.auth_token)
    (path, delivered, headers), (_, undelivered, headers2) = receiver.received
    assert path == "/webhooks/twilio/status?attempt=7"
    assert validator.validate(public_url, delivered, headers["X-Twilio-Signature"])
    assert validator.validate(public_url, undelivered, headers2["X-Twilio-Signature"])
    assert not RequestValidator("other").validate(public_url, delivered, headers["X-Twilio-Signature"])
    assert delivered == {
        "MessageSid": message.sid,
        "MessageStatus": "delivered",
        "SmsSid": message.sid,
        "SmsStatus": "delivered",
        "AccountSid": fake.account_sid,
        "To": TO,
        "From": FROM,
        "ApiVersion": "2010-04-01",
    }
    assert undelivered["ErrorCode"] == "30003" and undelivered["MessageStatus"] == "undelivered"
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


def test_status_callback_without_url_is_an_error(fake: FakeTwilio, client: Any) -> None:
    sid = client.messages.create(to=TO, from_=FROM, body="hi").sid
    with pytest.raises(ValueError):
        fake.status_callback(sid, "delivered")
    with pytest.raises(KeyError):
        fake.status_callback("SM" + "0" * 32, "delivered")


# -- as a separate process -----------------------------------------------------------------------------


def test_cli_serves_and_is_scriptable_over_http() -> None:
    command = [sys.executable, "-m", "tests.support.fake_twilio", "--port", "0", "--auth-token", "cli-token"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            exercise_cli_server(process)
        finally:
            process.terminate()
            _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors


def exercise_cli_server(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", line)
    assert match, line
    base = match.group(1)
    client = Client(
        FakeTwilio().account_sid,
        "cli-token",
        http_client=RedirectingHttpClient(base),
        environment={},
    )
    sid = client.messages.create(to=TO, from_=FROM, body="across processes").sid
    assert [m["sid"] for m in requests.get(f"{base}/_fake/messages", timeout=5).json()] == [sid]

    assert requests.post(f"{base}/_fake/fail", data={"kind": "429", "times": "1"}, timeout=5).ok
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, from_=FROM, body="limited")
    assert caught.value.status == 429
    assert requests.post(f"{base}/_fake/fail", data={"kind": "bogus"}, timeout=5).status_code == 400

    assert requests.post(f"{base}/_fake/latency", data={"ms": "150"}, timeout=5).ok
    started = time.monotonic()
    client.messages.create(to=TO, from_=FROM, body="slow")
    assert time.monotonic() - started >= 0.15

    assert requests.post(f"{base}/_fake/reset", timeout=5).ok
    assert requests.get(f"{base}/_fake/messages", timeout=5).json() == []
