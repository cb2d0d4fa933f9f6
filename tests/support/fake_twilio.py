"""A local HTTP server that answers the parts of Twilio's REST API that Outreach uses.

Why: tests, benchmarks and account-free demos must exercise the real ``twilio`` client (its
serialization, Basic auth and error parsing) without an account or a network. The app points the
client here through ``app.channels.twilio_http.RedirectingHttpClient``; this server records what it
was sent, can be told to fail in the ways Twilio fails, and can post signed status callbacks back.

Errors use Twilio's classic JSON shape (``code``/``message``/``more_info``/``status``), so the client
raises ``TwilioRestException`` rather than the RFC-9457 ``TwilioServiceException``.

Run it as its own process with ``python -m tests.support.fake_twilio --port 8099``; the ``/_fake/*``
endpoints then give the scripting API to other processes.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import email.utils
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import FrameType, TracebackType
from typing import Any, Final, Literal, cast, get_args
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_VERSION: Final = "2010-04-01"
DEFAULT_ACCOUNT_SID: Final = "AC" + "feed" * 8
DEFAULT_AUTH_TOKEN: Final = "test-token"
#: ``From`` reported in callbacks for messages sent through a Messaging Service, which picks the sender.
DEFAULT_SERVICE_FROM: Final = "+15005550006"
MAX_BODY_CHARS: Final = 1600

#: ``accept_then_hang`` records the message like a success, then holds the 201 answer for ``hang_seconds``:
#: the provider has the text while the caller still waits (kill the caller then to test crash recovery).
FailureKind = Literal["429", "500", "21610", "21211", "21614", "hang", "accept_then_drop", "accept_then_hang"]
FAILURE_KINDS: Final[frozenset[str]] = frozenset(get_args(FailureKind))

#: Twilio's test-credential magic numbers, honoured so that demos can trigger errors by number alone.
MAGIC_NUMBERS: Final[Mapping[str, FailureKind]] = {
    "+15005550001": "21211",
    "+15005550004": "21610",
    "+15005550009": "21614",
}

# GSM 03.38 default alphabet (ESC excluded) and the characters reached through ESC, which cost two septets.
_GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

_E164: Final = re.compile(r"^(?:whatsapp:)?\+[1-9]\d{1,14}$")


def sms_encoding(body: str) -> Literal["GSM-7", "UCS-2"]:
    """Decide the encoding the way carriers do: one character outside GSM-7 makes the whole text UCS-2."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in body):
        return "GSM-7"
    return "UCS-2"


def count_segments(body: str) -> int:
    """Count billable segments, since Twilio's rate limits and prices are per segment, not per message.

    A two-unit character (a GSM-7 escape pair or a UTF-16 surrogate pair) is never split across parts,
    so a long text can need one part more than ``ceil(units / per_part)``.
    """
    if sms_encoding(body) == "GSM-7":
        units = [2 if ch in _GSM7_EXTENSION else 1 for ch in body]
        single, per_part = 160, 153
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, per_part = 70, 67
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for unit in units:
        if used + unit > per_part:
            parts, used = parts + 1, 0
        used += unit
    return parts


def sign(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], auth_token: str) -> str:
    """Compute ``X-Twilio-Signature`` with the library's own validator, so tests can't drift from it."""
    validator = RequestValidator(auth_token)
    pairs = params.items() if isinstance(params, Mapping) else params
    multi: MultiDict[str, str] = MultiDict(list(pairs))
    return cast(str, validator.compute_signature(url, multi))


def _replace_origin(url: str, base_url_override: str | None) -> str:
    if not base_url_override:
        return url
    target, base = urlsplit(url), urlsplit(base_url_override)
    return urlunsplit((base.scheme, base.netloc, target.path, target.query, target.fragment))


def post_signed(
    url: str,
    params: Mapping[str, str],
    auth_token: str,
    *,
    base_url_override: str | None = None,
    timeout: float = 10.0,
) -> requests.Response:
    """Post a webhook the way Twilio does: form-encoded and signed over the URL Twilio was given.

    ``base_url_override`` changes where the request really goes (the app listening on 127.0.0.1) while
    the signature still covers the public URL, which is what the app must rebuild to validate it.
    """
    signature = sign(url, params, auth_token)
    return requests.post(
        _replace_origin(url, base_url_override),
        data=dict(params),
        headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
        timeout=timeout,
        allow_redirects=False,
    )


def _rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment)


def _error(status: int, code: int, message: str) -> Response:
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _failure_response(kind: str, to: str) -> Response:
    if kind == "429":
        return _error(429, 20429, "Too Many Requests")
    if kind == "500":
        return _error(500, 20500, "Internal Server Error")
    if kind == "21610":
        return _error(400, 21610, "Attempt to send to unsubscribed recipient")
    if kind == "21211":
        return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if kind == "21614":
        return _error(400, 21614, f"'To' number {to} is not a valid mobile number")
    raise ValueError(f"no canned response for {kind!r}")


def _flatten(form: MultiDict[str, str]) -> dict[str, Any]:
    """Keep repeated parameters (``MediaUrl``) as lists and single ones as plain strings."""
    flat: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        flat[key] = values[0] if len(values) == 1 else values
    return flat


def _parse_filter_moment(raw: str, *, end_of_day: bool) -> datetime | None:
    """Accept both the ``YYYY-MM-DD`` Twilio documents and the ISO datetimes the Python client sends."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else moment
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        return None


class _QuietHandler(WSGIRequestHandler):
    """Keeps werkzeug's per-request log lines out of test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


_ACCOUNT: Final = f"/{API_VERSION}/Accounts/<account>"
_ROUTES: Final = Map(
    [
        Rule(f"{_ACCOUNT}/Messages.json", endpoint="messages", methods=["GET", "POST"]),
        Rule(f"{_ACCOUNT}/Messages/<sid>.json", endpoint="message", methods=["GET"]),
        Rule(f"{_ACCOUNT}/Calls.json", endpoint="calls", methods=["GET", "POST"]),
        Rule(f"{_ACCOUNT}/Calls/<sid>.json", endpoint="call", methods=["GET"]),
        Rule("/_fake/messages", endpoint="fake_messages", methods=["GET"]),
        Rule("/_fake/calls", endpoint="fake_calls", methods=["GET"]),
        Rule("/_fake/requests", endpoint="fake_requests", methods=["GET"]),
        Rule("/_fake/reset", endpoint="fake_reset", methods=["POST"]),
        Rule("/_fake/fail", endpoint="fake_fail", methods=["POST"]),
        Rule("/_fake/latency", endpoint="fake_latency", methods=["POST"]),
        Rule("/_fake/status_callback", endpoint="fake_status_callback", methods=["POST"]),
    ]
)


class FakeTwilio:
    """An in-process stand-in for ``api.twilio.com`` that tests can script and inspect.

    Recorded entries (``messages``, ``calls``, ``requests``) are returned as copies, so a test can read
    them while the app's worker threads keep sending. A message entry holds every posted parameter
    under Twilio's name (``To``, ``Body`` …; repeated ones as lists) plus ``sid``, ``time`` (epoch
    seconds), ``num_segments`` and the current ``status``.
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        latency_ms: float = 0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 30.0,
        service_from: str = DEFAULT_SERVICE_FROM,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.latency_ms = latency_ms
        self.hang_seconds = hang_seconds
        self.service_from = service_from
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._messages: list[dict[str, Any]] = []
        self._calls: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._resources: dict[str, dict[str, Any]] = {}
        self._failures: collections.deque[str] = collections.deque()
        self._number_failures: dict[str, str] = {}
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server(
            self.host, self._requested_port, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        # A short poll interval keeps stop() (one per test) from costing the default half second.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-twilio:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeTwilio is not started")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- inspection --------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._entry_view(entry) for entry in self._messages]

    @property
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._entry_view(entry) for entry in self._calls]

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._requests]

    def resource(self, sid: str) -> dict[str, Any]:
        """The JSON Twilio would answer for ``sid`` now (status callbacks change it)."""
        with self._lock:
            return cast(dict[str, Any], json.loads(json.dumps(self._resources[sid])))

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until ``count`` messages were accepted, for tests whose sends happen in a worker."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._messages)} of {count} messages after {timeout} s")
                self._changed.wait(remaining)
            return [self._entry_view(entry) for entry in self._messages]

    def _entry_view(self, entry: dict[str, Any]) -> dict[str, Any]:
        view = dict(entry)
        resource = self._resources.get(entry["sid"])
        if resource is not None:
            view["status"] = resource["status"]
        return view

    # -- scripting ---------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._calls.clear()
            self._requests.clear()
            self._resources.clear()
            self._failures.clear()
            self._number_failures.clear()

    def fail_next(self, kind: str, times: int = 1) -> None:
        """Queue failures for the next create calls (messages or calls), first in, first out."""
        self._check_kind(kind)
        if times < 0:
            raise ValueError("times must be >= 0")
        with self._lock:
            self._failures.extend([kind] * times)

    def fail_for_number(self, to: str, kind: str | None) -> None:
        """Fail every create call to ``to``; ``kind=None`` lifts it."""
        with self._lock:
            if kind is None:
                self._number_failures.pop(to, None)
                return
            self._check_kind(kind)
            self._number_failures[to] = kind

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {sorted(FAILURE_KINDS)}")

    def status_callback(
        self,
        sid: str,
        status: str,
        error_code: int | str | None = None,
        base_url_override: str | None = None,
    ) -> int:
        """Deliver a signed status callback for a message or call, and return the app's HTTP status.

        The resource's status changes first, so a fetch made by the app while handling the callback
        already sees it, as with Twilio.
        """
        with self._lock:
            resource = self._resources.get(sid)
            if resource is None:
                raise KeyError(f"unknown sid {sid}")
            entry = next(e for e in (*self._messages, *self._calls) if e["sid"] == sid)
            callback_url = entry.get("StatusCallback")
            now = datetime.now(UTC)
            resource["status"] = status
            resource["date_updated"] = _rfc2822(now)
            if error_code is not None:
                resource["error_code"] = int(error_code)
            params = self._callback_params(sid, status, entry, resource)
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        if not callback_url:
            raise ValueError(f"{sid} was created without a StatusCallback")
        response = post_signed(str(callback_url), params, self.auth_token, base_url_override=base_url_override)
        return int(response.status_code)

    def _callback_params(
        self, sid: str, status: str, entry: Mapping[str, Any], resource: dict[str, Any]
    ) -> dict[str, str]:
        sender = str(entry.get("From") or self.service_from)
        if sid.startswith("CA"):
            return {
                "CallSid": sid,
                "CallStatus": status,
                "AccountSid": self.account_sid,
                "To": str(entry.get("To", "")),
                "From": sender,
                "Direction": "outbound-api",
                "ApiVersion": API_VERSION,
            }
        if status in {"sent", "delivered"} and resource.get("date_sent") is None:
            resource["date_sent"] = resource["date_updated"]
        params = {
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "AccountSid": self.account_sid,
            "To": str(entry.get("To", "")),
            "From": sender,
            "ApiVersion": API_VERSION,
        }
        if entry.get("MessagingServiceSid"):
            params["MessagingServiceSid"] = str(entry["MessagingServiceSid"])
        return params

    def phone_call(self, sid: str | None = None, transport: Transport | None = None) -> PhoneCall:
        """Drive a call the app placed (the last one by default) through its signed webhooks."""
        with self._lock:
            if not self._calls:
                raise KeyError("no call was placed")
            chosen = sid or self._calls[-1]["sid"]
        return PhoneCall(self, chosen, transport or http_transport())

    def _set_call_status(self, sid: str, status: str, answered_by: str | None = None) -> None:
        with self._lock:
            resource = self._resources[sid]
            resource["status"] = status
            resource["date_updated"] = _rfc2822(datetime.now(UTC))
            if answered_by:
                resource["answered_by"] = answered_by

    # -- HTTP --------------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._dispatch(request)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except NotFound:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        except MethodNotAllowed:
            return _error(405, 20004, "Method not allowed")
        except HTTPException as exc:  # pragma: no cover - routing raises only the two above
            return _error(exc.code or 500, 20500, str(exc))
        if str(endpoint).startswith("fake_"):
            return self._control(str(endpoint), request)

        params = request.form if request.method == "POST" else request.args
        record: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "params": _flatten(params),
            "status": None,
            "time": time.time(),
        }
        with self._lock:
            self._requests.append(record)
        try:
            response = self._api(str(endpoint), args, request)
        except ConnectionError:
            raise  # a scripted drop: the request stays recorded with no status
        except Exception as exc:  # a bug here must reach the test as an answer, not a hang
            response = _error(500, 20500, f"fake server error: {exc!r}")
        with self._lock:
            record["status"] = response.status_code
        return response

    def _api(self, endpoint: str, args: Mapping[str, str], request: Request) -> Response:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or auth.username != self.account_sid
            or auth.password != self.auth_token
        ):
            return _error(401, 20003, "Authenticate")
        if args["account"] != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if endpoint in {"message", "call"}:
            return self._fetch(args["sid"], "SM" if endpoint == "message" else "CA", request.path)
        if request.method == "GET":
            return self._list(endpoint, request)
        form: MultiDict[str, str] = request.form
        failure = self._take_failure(form.get("To", ""))
        if endpoint == "calls" and failure == "21614":
            failure = None  # "not a mobile number" refuses texts only: a landline takes calls
        if failure in {"429", "500", "21610", "21211", "21614"}:
            return _failure_response(failure, form.get("To", ""))
        if failure == "hang":
            if self._stopping.wait(self.hang_seconds):
                self._drop(request)
            return _error(500, 20500, "Internal Server Error")
        response = self._create_message(form) if endpoint == "messages" else self._create_call(form)
        if failure == "accept_then_drop" and response.status_code == 201:
            self._drop(request)
        if failure == "accept_then_hang" and response.status_code == 201 and self._stopping.wait(self.hang_seconds):
            self._drop(request)
        return response

    def _take_failure(self, to: str) -> str | None:
        with self._lock:
            kind = self._number_failures.get(to) or MAGIC_NUMBERS.get(to)
            if kind is None and self._failures:
                kind = self._failures.popleft()
            return kind

    @staticmethod
    def _drop(request: Request) -> None:
        """Close the socket with no answer, then let werkzeug treat it as a client disconnect."""
        sock = request.environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("scripted accept_then_drop")

    def _create_message(self, form: MultiDict[str, str]) -> Response:
        to = form.get("To", "")
        sender = form.get("From") or None
        service = form.get("MessagingServiceSid") or None
        body = form.get("Body")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if sender is None and service is None:
            return _error(400, 21603, "A 'From' phone number is required.")
        if body is None or (body == "" and not form.get("MediaUrl")):
            return _error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        sid = "SM" + uuid.uuid4().hex
        now = datetime.now(UTC)
        segments = count_segments(body)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None,
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": str(len(form.getlist("MediaUrl"))),
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        entry = {**_flatten(form), "sid": sid, "time": now.timestamp(), "num_segments": segments}
        with self._changed:
            self._resources[sid] = resource
            self._messages.append(entry)
            self._changed.notify_all()
        return _json(resource, 201)

    def _create_call(self, form: MultiDict[str, str]) -> Response:
        to, sender = form.get("To", ""), form.get("From", "")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not sender:
            return _error(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            return _error(400, 21205, "Url parameter is required.")
        sid = "CA" + uuid.uuid4().hex
        now = datetime.now(UTC)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json"
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": sender,
            "from_formatted": sender,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {},
            "to": to,
            "to_formatted": to,
            "trunk_sid": None,
            "uri": uri,
        }
        entry = {**_flatten(form), "sid": sid, "time": now.timestamp()}
        with self._changed:
            self._resources[sid] = resource
            self._calls.append(entry)
            self._changed.notify_all()
        return _json(resource, 201)

    def _fetch(self, sid: str, prefix: str, path: str) -> Response:
        with self._lock:
            resource = self._resources.get(sid) if sid.startswith(prefix) else None
            if resource is None:
                return _error(404, 20404, f"The requested resource {path} was not found")
            return _json(resource)

    def _list(self, endpoint: str, request: Request) -> Response:
        key = "messages" if endpoint == "messages" else "calls"
        query = request.args
        try:
            page_size = max(1, min(1000, int(query.get("PageSize", "50"))))
            page = max(0, int(query.get("Page", "0")))
        except ValueError:
            return _error(400, 20001, "Invalid paging parameter")
        with self._lock:
            source = self._messages if key == "messages" else self._calls
            items = [self._resources[e["sid"]] for e in reversed(source)]  # newest first, as Twilio
            items = [r for r in items if self._matches(r, query)]
            chosen = json.loads(json.dumps(items[page * page_size : (page + 1) * page_size]))
        collection = "Messages" if key == "messages" else "Calls"
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/{collection}.json"
        filters = [(k, v) for k, v in query.items(multi=True) if k not in {"Page", "PageSize", "PageToken"}]

        def page_uri(number: int) -> str:
            return base + "?" + urlencode([*filters, ("PageSize", str(page_size)), ("Page", str(number))])

        has_next = (page + 1) * page_size < len(items)
        start = page * page_size
        payload = {
            key: chosen,
            "end": start + max(len(chosen) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) + f"&PageToken=PA{page + 1}" if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }
        return _json(payload)

    @staticmethod
    def _matches(resource: Mapping[str, Any], query: MultiDict[str, str]) -> bool:
        if "To" in query and resource.get("to") != query["To"]:
            return False
        if "From" in query and resource.get("from") != query["From"]:
            return False
        if "Status" in query and resource.get("status") != query["Status"]:
            return False
        stamp = resource.get("date_sent") or resource.get("date_created")
        sent = email.utils.parsedate_to_datetime(stamp) if stamp else None
        for name, end_of_day in (("DateSent", False), ("DateSent<", True), ("DateSent>", False)):
            raw = query.get(name)
            if not raw:
                continue
            bound = _parse_filter_moment(raw, end_of_day=end_of_day)
            if bound is None or sent is None:
                return False
            if name == "DateSent" and sent.date() != bound.date():
                return False
            if name == "DateSent<" and sent > bound:
                return False
            if name == "DateSent>" and sent < bound:
                return False
        return True

    def _control(self, endpoint: str, request: Request) -> Response:
        """The scripting API over HTTP, for a fake running in another process."""
        try:
            if endpoint == "fake_messages":
                return _json(self.messages)
            if endpoint == "fake_calls":
                return _json(self.calls)
            if endpoint == "fake_requests":
                return _json(self.requests)
            if endpoint == "fake_reset":
                self.reset()
            elif endpoint == "fake_fail":
                kind, to = request.form.get("kind", ""), request.form.get("to")
                if to:
                    self.fail_for_number(to, kind or None)
                else:
                    self.fail_next(kind, int(request.form.get("times", "1")))
            elif endpoint == "fake_latency":
                self.latency_ms = float(request.form.get("ms", "0"))
            elif endpoint == "fake_status_callback":
                form = request.form
                code = self.status_callback(
                    form["sid"],
                    form["status"],
                    form.get("error_code") or None,
                    form.get("base_url_override") or None,
                )
                return _json({"ok": True, "callback_status": code})
        except (KeyError, ValueError) as exc:
            return _json({"ok": False, "error": str(exc)}, 400)
        return _json({"ok": True})


#: How a driven call reaches the app: (url Twilio was given, form params, signature) -> (HTTP status, body).
Transport = Callable[[str, Mapping[str, str], str], tuple[int, str]]


def http_transport(base_url_override: str | None = None, timeout: float = 10.0) -> Transport:
    """Post over HTTP, as Twilio does (to ``base_url_override`` when the app listens elsewhere)."""

    def post(url: str, params: Mapping[str, str], signature: str) -> tuple[int, str]:
        response = requests.post(
            _replace_origin(url, base_url_override),
            data=dict(params),
            headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
            timeout=timeout,
            allow_redirects=False,
        )
        return response.status_code, response.text

    return post


class PhoneCall:
    """One call the app placed, driven the way Twilio and a person on the phone would drive it.

    ``answer`` fetches the answer URL (with ``AnsweredBy``); ``press`` / ``say`` / ``silence`` post to the
    current ``<Gather>``'s action (``Digits``, or ``SpeechResult`` + ``Confidence``, or nothing, as with
    ``actionOnEmptyResult``); ``redirect`` follows the ``<Redirect>`` after it; ``hang_up`` and ``end`` post
    signed status callbacks. Every request is signed over the URL the app gave, with the fake's token.
    ``twiml`` is the last document the app answered; ``heard()`` its ``<Say>`` texts in order.
    """

    def __init__(self, fake: FakeTwilio, sid: str, transport: Transport):
        self.fake, self.sid, self.transport = fake, sid, transport
        entry = next(e for e in fake.calls if e["sid"] == sid)
        self.entry = entry
        self.twiml = ""
        self.last_status = 0
        self.answered_by: str | None = None

    # -- what the caller hears ---------------------------------------------------------------------
    @property
    def document(self) -> ElementTree.Element:
        return ElementTree.fromstring(self.twiml)

    def heard(self) -> list[str]:
        return [el.text or "" for el in self.document.iter("Say")]

    def gather(self) -> ElementTree.Element | None:
        return self.document.find("Gather")

    def dial(self) -> str | None:
        found = self.document.find("Dial")
        return (found.text or "").strip() if found is not None else None

    @property
    def ended(self) -> bool:
        return self.document.find("Hangup") is not None

    # -- the webhooks ------------------------------------------------------------------------------
    def _params(self, status: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        params = {
            "CallSid": self.sid,
            "AccountSid": self.fake.account_sid,
            "From": str(self.entry.get("From", "")),
            "To": str(self.entry.get("To", "")),
            "CallStatus": status,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
        }
        if self.answered_by:
            params["AnsweredBy"] = self.answered_by
        params.update(extra or {})
        return params

    def _post(self, url: str, params: Mapping[str, str]) -> str:
        status, body = self.transport(url, params, sign(url, params, self.fake.auth_token))
        self.last_status = status
        if status != 200:
            raise AssertionError(f"{url} answered {status}: {body[:200]}")
        self.twiml = body
        return body

    def answer(self, answered_by: str = "human") -> str:
        self.answered_by = answered_by
        self.fake._set_call_status(self.sid, "in-progress", answered_by)
        return self._post(str(self.entry["Url"]), self._params("in-progress"))

    def _action(self) -> str:
        gathered = self.gather()
        if gathered is None:
            raise AssertionError(f"no <Gather> in {self.twiml}")
        return str(gathered.get("action"))

    def press(self, digits: str) -> str:
        return self._post(self._action(), self._params("in-progress", {"Digits": digits}))

    def say(self, speech: str, confidence: float = 0.92) -> str:
        extra = {"SpeechResult": speech, "Confidence": f"{confidence:.6f}"}
        return self._post(self._action(), self._params("in-progress", extra))

    def silence(self) -> str:
        return self._post(self._action(), self._params("in-progress"))

    def redirect(self) -> str:
        found = self.document.find("Redirect")
        if found is None or not found.text:
            raise AssertionError(f"no <Redirect> in {self.twiml}")
        return self._post(found.text.strip(), self._params("in-progress"))

    def dial_ended(self, dial_status: str) -> str:
        """The ``<Dial>`` ended (``DialCallStatus``: completed, busy, no-answer, failed, canceled): Twilio
        posts its ``action`` and plays what the app answers."""
        found = self.document.find("Dial")
        if found is None or not found.get("action"):
            raise AssertionError(f"no <Dial action=…> in {self.twiml}")
        return self._post(str(found.get("action")), self._params("in-progress", {"DialCallStatus": dial_status}))

    def replay(self, url: str, params: Mapping[str, str]) -> tuple[int, str]:
        """Post the same request again (Twilio retrying): the answer, without changing ``twiml``."""
        return self.transport(url, params, sign(url, params, self.fake.auth_token))

    def status(self, status: str) -> int:
        self.fake._set_call_status(self.sid, status, self.answered_by)
        url = str(self.entry["StatusCallback"])
        params = self._params(status)
        code, _body = self.transport(url, params, sign(url, params, self.fake.auth_token))
        return code

    def hang_up(self) -> int:
        return self.status("completed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_twilio", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    options = parser.parse_args(argv)

    fake = FakeTwilio(
        options.account_sid,
        options.auth_token,
        options.latency_ms,
        host=options.host,
        port=options.port,
        hang_seconds=options.hang_seconds,
    )
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    fake.start()
    print(f"listening on {fake.base_url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


__all__ = [
    "API_VERSION",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "FAILURE_KINDS",
    "MAGIC_NUMBERS",
    "FailureKind",
    "FakeTwilio",
    "PhoneCall",
    "Transport",
    "count_segments",
    "http_transport",
    "main",
    "post_signed",
    "sign",
    "sms_encoding",
]

if __name__ == "__main__":
    sys.exit(main())
