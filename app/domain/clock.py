"""One clock: the store's.

Every decision by time (expiry, TTLs, pending deadlines, idempotency leases, event `at`, MINID
trimming, the reaper's due scan, the audit) is made by the store's clock: each script reads
`TIME` itself (`lua/includes/clock.lua`), so service processes on hosts whose clocks differ
make exactly the decisions one process would. The service's own clock only stamps what decides
nothing (logs, metrics).

What Python passes to every script is a clock *offset* in ms: "now" = store TIME + offset.
The service always passes 0 (`StoreClock`, built by `create_app`; no environment variable or
HTTP input reaches it). The offset exists only for in-process tests, whose `ManualClock` plays
time forward with `advance()` without waiting.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis


class Clock(Protocol):
    def offset_ms(self) -> int: ...


class StoreClock:
    """Production: the store's clock, unshifted."""

    def offset_ms(self) -> int:
        return 0


class ManualClock:
    """Tests only: the store's clock moved forward by hand."""

    def __init__(self) -> None:
        self.offset = 0

    def offset_ms(self) -> int:
        return self.offset

    def advance(self, seconds: float) -> None:
        self.offset += round(seconds * 1000)


def store_ms(time_reply: tuple[int, int] | list[int] | list[bytes]) -> int:
    """A TIME reply (seconds, microseconds) in ms, as clock.lua computes it."""
    seconds, micros = (int(x) for x in time_reply)
    return seconds * 1000 + micros // 1000


async def store_now_ms(redis: Redis, clock: Clock) -> int:
    """The store's now (plus the test offset), for a scan whose every hit a script re-checks."""
    return store_ms(await redis.time()) + clock.offset_ms()


def iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=64)  # a hold renders two instants; most requests share seconds
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_ms(text: str) -> int | None:
    """An RFC 3339 timestamp with its offset (`Z` or `±hh:mm`) in ms since the epoch; None if
    it is not one (a naive time says nothing about when)."""
    if len(text) > 64 or "T" not in text.upper():
        return None
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
        if when.tzinfo is None:
            return None
        return round(when.timestamp() * 1000)
    except (ValueError, OverflowError):  # not a date; or out of range once in UTC
        return None
