"""Signing staff in through the real form (CSRF token read from the page), for the UI's integration tests."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    found = TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: FlaskClient, email: str, password: str, *, ip: str = "10.0.0.1", next_: str = "") -> TestResponse:
    page = client.get("/login", environ_base={"REMOTE_ADDR": ip})
    token = csrf_from(page.get_data(as_text=True))
    url = "/login" + (f"?next={next_}" if next_ else "")
    return client.post(
        url, data={"email": email, "password": password, "csrf_token": token}, environ_base={"REMOTE_ADDR": ip}
    )


def token_on(client: FlaskClient, path: str = "/queue") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))
