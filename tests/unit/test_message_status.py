"""Message status callbacks arrive late, twice and out of order; a status only moves forward."""

from __future__ import annotations

import functools

import pytest

from app.messaging.status import advance

FORWARD: list[tuple[str, str, str]] = [
    ("queued", "sending", "sending"),
    ("queued", "sent", "sent"),
    ("sending", "sent", "sent"),
    ("sent", "delivered", "delivered"),
    ("queued", "delivered", "delivered"),
    ("delivered", "read", "read"),
    ("sent", "failed", "failed"),
    ("sent", "undelivered", "undelivered"),
    ("accepted", "queued", "accepted"),
]

BACKWARD: list[tuple[str, str, str]] = [
    ("delivered", "sent", "delivered"),
    ("delivered", "sending", "delivered"),
    ("delivered", "queued", "delivered"),
    ("sent", "queued", "sent"),
    ("sent", "sending", "sent"),
    ("sending", "queued", "sending"),
    ("read", "delivered", "read"),
    ("read", "sent", "read"),
]

TERMINAL_STAYS: list[tuple[str, str, str]] = [
    ("failed", "sent", "failed"),
    ("failed", "delivered", "failed"),
    ("failed", "queued", "failed"),
    ("undelivered", "delivered", "undelivered"),
    ("undelivered", "failed", "undelivered"),
    ("delivered", "failed", "delivered"),
    ("delivered", "undelivered", "delivered"),
    ("canceled", "sent", "canceled"),
]

UNKNOWN: list[tuple[str, str, str]] = [
    ("sent", "bogus", "sent"),
    ("delivered", "", "delivered"),
    ("queued", "DELIVERED", "queued"),  # Twilio sends lower case; anything else is not a status
]


@pytest.mark.parametrize(("current", "reported", "expected"), FORWARD)
def test_moves_forward(current: str, reported: str, expected: str) -> None:
    assert advance(current, reported) == expected


@pytest.mark.parametrize(("current", "reported", "expected"), BACKWARD)
def test_never_moves_backwards(current: str, reported: str, expected: str) -> None:
    assert advance(current, reported) == expected


@pytest.mark.parametrize(("current", "reported", "expected"), TERMINAL_STAYS)
def test_terminal_status_stays(current: str, reported: str, expected: str) -> None:
    assert advance(current, reported) == expected


@pytest.mark.parametrize(("current", "reported", "expected"), UNKNOWN)
def test_unknown_status_is_ignored(current: str, reported: str, expected: str) -> None:
    assert advance(current, reported) == expected


@pytest.mark.parametrize("terminal", ["failed", "undelivered", "canceled"])
def test_failed_message_is_never_read(terminal: str) -> None:
    assert advance(terminal, "read") == terminal


@pytest.mark.parametrize(
    ("callbacks", "final"),
    [
        (["queued", "sent", "delivered"], "delivered"),
        (["delivered", "sent", "queued"], "delivered"),
        (["sent", "delivered", "sent", "delivered"], "delivered"),
        (["sending", "queued", "sent"], "sent"),
        (["sent", "failed", "delivered", "sent"], "failed"),
        (["delivered", "read", "sent"], "read"),
        (["bogus", "sent", "bogus"], "sent"),
    ],
)
def test_callbacks_in_any_order(callbacks: list[str], final: str) -> None:
    assert functools.reduce(advance, callbacks, "queued") == final
