"""Hold and cart traffic against a real `omnistock serve` for the failover tests: concurrent
clients, every request keyed and retried with the same key while the answer is a 503 or no
answer at all, and a record of every attempt, so a test can tell what was acknowledged, what
survived a failover and how long a primary's slots took to serve again."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRYABLE = (httpx.TransportError,)  # connect errors, timeouts, a connection dropped


@dataclass
class Attempt:
    sent: float  # time.monotonic()
    status: int  # 0: no answer (connection error or timeout)
    answered: float = 0.0
    hold_id: str | None = None
    code: str | None = None  # a problem answer's `code`


@dataclass
class Request:
    """One logical hold create: the same key and body on every attempt."""

    key: str
    lines: list[dict[str, Any]]
    attempts: list[Attempt] = field(default_factory=list)
    body: dict[str, Any] | None = None  # the 201 answer

    @property
    def final(self) -> int:
        return self.attempts[-1].status if self.attempts else 0

    @property
    def unanswered(self) -> bool:
        """No final answer yet: nothing, a 503, or 409 `idempotency_key_in_use` (an earlier
        attempt is still running on the server: ask again)."""
        last = self.attempts[-1] if self.attempts else None
        return last is None or last.status in (0, 503) or last.code == "idempotency_key_in_use"

    @property
    def acked(self) -> bool:
        return self.final == 201

    @property
    def is_cart(self) -> bool:
        return len(self.lines) > 1

    def skus(self) -> set[str]:
        return {line["sku"] for line in self.lines}


@dataclass
class Traffic:
    """`clients` concurrent loops, each making 1-line holds and 3-line carts (one sku of each
    primary) until stop(); a request keeps being retried after stop() until it has an answer
    other than 503 / no answer, or `give_up` seconds have passed since stop()."""

    api: httpx.AsyncClient
    by_primary: list[list[str]]  # skus of each primary, distinct partitions
    clients: int = 8
    cart_share: float = 0.4
    give_up: float = 30.0
    requests: list[Request] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _stopped_at: float = 0.0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]

    async def stop(self) -> None:
        self._stopped_at = time.monotonic()
        self._stopping.set()
        await asyncio.gather(*self._tasks)

    def _next_lines(self, rnd: random.Random) -> list[dict[str, Any]]:
        if rnd.random() < self.cart_share:  # in a random order: the home part on any primary
            cart = [{"sku": rnd.choice(skus), "quantity": 1} for skus in self.by_primary]
            rnd.shuffle(cart)
            return cart
        return [{"sku": rnd.choice(rnd.choice(self.by_primary)), "quantity": 1}]

    async def _client(self, n: int) -> None:
        rnd = random.Random(n)
        run = uuid.uuid4().hex[:8]
        while not self._stopping.is_set():
            request = Request(f"fo-{run}-{n}-{next(self._ids)}", self._next_lines(rnd))
            self.requests.append(request)
            await self._until_answered(request)

    async def _until_answered(self, request: Request) -> None:
        while True:
            await self.send(request)
            if not request.unanswered:
                return
            if self._stopping.is_set() and time.monotonic() - self._stopped_at > self.give_up:
                return
            await asyncio.sleep(0.1)

    async def send(self, request: Request) -> httpx.Response | None:
        attempt = Attempt(time.monotonic(), 0)
        request.attempts.append(attempt)
        try:
            r = await self.api.post(
                "/v1/holds",
                json={"ttl_seconds": 3600, "lines": request.lines},
                headers={"Idempotency-Key": request.key},
            )
        except RETRYABLE:
            attempt.answered = time.monotonic()
            return None
        attempt.answered = time.monotonic()
        attempt.status = r.status_code
        if r.status_code == 201:
            attempt.hold_id = r.json()["id"]
            request.body = r.json()
        elif r.headers.get("content-type", "").startswith("application/problem+json"):
            attempt.code = r.json().get("code")
        return r

    # -- what happened -----------------------------------------------------------------------

    def answers(self) -> Counter[str]:
        """Every attempt's status and problem code, e.g. "503 store_unavailable"."""
        return Counter(
            f"{a.status} {a.code}" if a.code else str(a.status)
            for r in self.requests
            for a in r.attempts
        )

    def statuses(self) -> Counter[int]:
        return Counter(a.status for r in self.requests for a in r.attempts)

    def acked(self) -> list[Request]:
        return [r for r in self.requests if r.acked]

    def first_201_after(self, t: float, skus: set[str]) -> float | None:
        """When the first attempt sent after `t` that touches `skus` was answered 201, or
        None."""
        times = [
            a.answered
            for r in self.requests
            if r.skus() & skus
            for a in r.attempts
            if a.status == 201 and a.sent >= t
        ]
        return min(times) if times else None

    def ids_differ(self) -> list[str]:
        """Keys that were answered 201 twice with different hold ids."""
        return [
            r.key for r in self.requests if len({a.hold_id for a in r.attempts if a.hold_id}) > 1
        ]
