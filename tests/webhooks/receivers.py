"""Real local HTTP receivers for the webhook tests: a tiny ASGI app served by uvicorn on a free
port, on the test's event loop. Each records what it got and answers as told."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

from app.store.embedded import free_port
from app.webhooks.verify import verify

Answer = Callable[[int], float | int]  # request number (1-based) -> status, or a delay (s)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = orjson.loads(self.body)
        return doc


@dataclass
class Receiver:
    answer: Answer = lambda n: 200
    requests: int = 0
    acked: list[Received] = field(default_factory=list)  # 2xx answered, in arrival order
    first_ids: dict[str, None] = field(default_factory=dict)  # first acknowledgements
    url: str = ""
    # Set: every request waits for it before being answered (a delivery held in flight).
    gate: asyncio.Event | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender went away mid-request (a worker killed mid-delivery)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests += 1
        if self.gate is not None:
            await self.gate.wait()
        status = self.answer(self.requests)
        if isinstance(status, float):  # a delay: answer (too) late
            await asyncio.sleep(status)
            status = 200
        if 200 <= status < 300:
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.acked.append(Received(headers, body))
            self.first_ids.setdefault(self.acked[-1].doc["id"], None)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def ids(self) -> list[str]:
        """Acknowledged event ids, first acknowledgement of each, in arrival order."""
        return list(self.first_ids)

    def all_signed(self, secret: str) -> bool:
        return all(verify(secret, r.body, r.headers["omnistock-signature"]) for r in self.acked)


@contextlib.asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[Receiver]:
    port = free_port()
    config = uvicorn.Config(
        receiver, host="127.0.0.1", port=port, log_level="error", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # up to 10 s
        if server.started:
            break
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


def fails_half(seed: int = 7, longest_streak: int = 3) -> Answer:
    """500 for about half the requests, at random, but never more than `longest_streak` in a
    row (fewer than the attempts before a subscription is disabled)."""
    rng = random.Random(seed)
    streak = 0

    def answer(n: int) -> int:
        nonlocal streak
        streak = streak + 1 if streak < longest_streak and rng.random() < 0.5 else 0
        return 500 if streak else 200

    return answer


def down_url() -> str:
    """A port nothing listens on: connection refused."""
    return f"http://127.0.0.1:{free_port()}/hook"
