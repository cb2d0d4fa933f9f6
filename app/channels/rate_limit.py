"""Per-sender SMS throughput: segments per second, shared by every worker through Redis.

Why GCRA with reservations: each send reserves its slot in the sender's schedule, so a burst of 10,000
due texts drains at exactly the carrier's rate in due order, nothing is dropped, and no worker needs to
know about the others. A send whose slot is further out than ``max_wait`` does not reserve it: the
message is put back with that delay (its row stays in SQL), so a worker never sleeps for minutes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from app.config import Settings

TOLL_FREE_PREFIXES = ("+1800", "+1833", "+1844", "+1855", "+1866", "+1877", "+1888")

# KEYS[1] = the sender's key; ARGV = cost in ms, max wait in ms. Returns the wait in ms (>= 0) when the
# slot was reserved, or -(wait + 1) when it was not.
_GCRA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now_ms then tat = now_ms end
local wait = tat - now_ms
if wait > tonumber(ARGV[2]) then return -(wait + 1) end
local new_tat = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now_ms + 1000)
return wait
"""


@dataclass(frozen=True)
class Slot:
    reserved: bool
    wait_seconds: float


class RateLimiter(Protocol):
    def reserve(self, sender: str, segments: int) -> Slot: ...


def segments_per_second(settings: Settings) -> float | None:
    """The configured rate, or the sender type's default: long code 1, toll-free 3, Messaging Service none."""
    if settings.sms_segments_per_second is not None:
        return settings.sms_segments_per_second if settings.sms_segments_per_second > 0 else None
    if settings.twilio_messaging_service_sid:
        return None
    if settings.twilio_from_number.startswith(TOLL_FREE_PREFIXES):
        return 3.0
    return 1.0


class Unlimited:
    def reserve(self, sender: str, segments: int) -> Slot:
        return Slot(True, 0.0)


class RedisRateLimiter:
    def __init__(self, redis_url: str, rate: float, *, max_wait: float = 5.0):
        from redis import Redis

        self.redis = Redis.from_url(redis_url)
        self.cost_ms = 1000.0 / rate
        self.max_wait_ms = int(max_wait * 1000)
        self.script = self.redis.register_script(_GCRA)

    def reserve(self, sender: str, segments: int) -> Slot:
        cost = round(self.cost_ms * max(1, segments))
        result = int(self.script(keys=[f"outreach:rate:{sender}"], args=[cost, self.max_wait_ms]))
        if result >= 0:
            return Slot(True, result / 1000)
        return Slot(False, (-result - 1) / 1000)


class LocalRateLimiter:
    """The same algorithm in one process, for the embedded demo (no Redis)."""

    def __init__(self, rate: float, *, max_wait: float = 5.0):
        self.cost = 1.0 / rate
        self.max_wait = max_wait
        self.lock = threading.Lock()
        self.tat: dict[str, float] = {}

    def reserve(self, sender: str, segments: int) -> Slot:
        with self.lock:
            now = time.monotonic()
            tat = max(self.tat.get(sender, now), now)
            wait = tat - now
            if wait > self.max_wait:
                return Slot(False, wait)
            self.tat[sender] = tat + self.cost * max(1, segments)
            return Slot(True, wait)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    rate = segments_per_second(settings)
    if rate is None or settings.channel != "twilio":
        return Unlimited()
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, rate)
    return LocalRateLimiter(rate)


def build_call_limiter(settings: Settings) -> RateLimiter:
    """Outbound calls per second per account (TWILIO.md "Throughput": 1 by default), shared through Redis.

    Calls wait for their slot (at most a minute ahead) rather than being put back: Twilio queues excess
    calls anyway, and a call's job holds nothing but its own row."""
    rate = settings.calls_per_second
    if rate <= 0 or settings.channel != "twilio":
        return Unlimited()
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, rate, max_wait=60.0)
    return LocalRateLimiter(rate, max_wait=60.0)


def call_key(settings: Settings) -> str:
    return f"calls:{settings.twilio_account_sid or 'console'}"


def sender_key(settings: Settings) -> str:
    return settings.twilio_messaging_service_sid or settings.twilio_from_number or "console"
