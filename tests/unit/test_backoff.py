"""Retry backoff for outbound sends: exponential, jittered in [ceiling/2, ceiling], capped."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from app.messaging.outbound import backoff


class _Highest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


class _Lowest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


CEILINGS: list[tuple[int, float]] = [
    (1, 30),
    (2, 60),
    (3, 120),
    (4, 240),
    (5, 480),
    (6, 960),
    (7, 1920),
    (8, 3600),  # 3840 capped
    (9, 3600),
    (30, 3600),
]


@pytest.mark.parametrize(("attempt", "ceiling"), CEILINGS)
def test_ceiling_grows_exponentially_then_caps(attempt: int, ceiling: float) -> None:
    assert backoff(attempt, rng=_Highest()) == dt.timedelta(seconds=ceiling)
    assert backoff(attempt, rng=_Lowest()) == dt.timedelta(seconds=ceiling / 2)


@pytest.mark.parametrize(("attempt", "ceiling"), CEILINGS)
def test_jitter_stays_within_half_to_full_ceiling(attempt: int, ceiling: float) -> None:
    rng = random.Random(1234)
    delays = [backoff(attempt, rng=rng).total_seconds() for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 100  # actually randomised


def test_large_attempt_is_capped() -> None:
    assert backoff(1000, rng=_Highest()) == dt.timedelta(seconds=3600)


def test_very_large_attempt_is_capped_without_overflow() -> None:
    assert backoff(10_000, rng=_Highest()) == dt.timedelta(seconds=3600)


def test_custom_base_and_cap() -> None:
    assert backoff(3, base=10, cap=25, rng=_Highest()) == dt.timedelta(seconds=25)
    assert backoff(2, base=10, cap=25, rng=_Highest()) == dt.timedelta(seconds=20)


def test_deterministic_with_a_seeded_random() -> None:
    first = [backoff(n, rng=random.Random(42)) for n in range(1, 10)]
    second = [backoff(n, rng=random.Random(42)) for n in range(1, 10)]
    assert first == second
    other = [backoff(n, rng=random.Random(43)) for n in range(1, 10)]
    assert first != other


def test_delays_grow_from_one_attempt_to_the_next() -> None:
    # With the same draw, each attempt waits twice as long as the one before, until the cap.
    delays = [backoff(n, rng=random.Random(7)).total_seconds() for n in range(1, 8)]
    for earlier, later in itertools.pairwise(delays):
        assert later == pytest.approx(2 * earlier)
