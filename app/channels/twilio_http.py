"""A Twilio HTTP client that sends the real client's requests to another base URL.

Why: the ``twilio`` library has no base-URL setting. Tests, benchmarks and account-free demos point
``TWILIO_API_BASE_URL`` at the local server in ``tests/support`` and keep the library's real
serialization, authentication and error parsing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(base_url)
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        if self.session is not None:
            from requests.adapters import HTTPAdapter

            self.session.mount("http://", HTTPAdapter(pool_maxsize=32))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        if parts.netloc.endswith("twilio.com"):
            url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)
