"""Helpers of the event tests: skus by partition, reading the whole log, an SSE client."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import orjson
from redis.asyncio import Redis

from app import keys
from app.events.ids import EventId


def unique_skus(n: int, distinct_partitions: bool = True) -> list[str]:
    """`n` fresh skus, each in a partition of its own when asked."""
    tag = uuid.uuid4().hex[:8]
    seen: set[int] = set()
    out: list[str] = []
    i = 0
    while len(out) < n:
        sku = f"ev-{tag}-{i}"
        i += 1
        if distinct_partitions and keys.partition_of(sku) in seen:
            continue
        seen.add(keys.partition_of(sku))
        out.append(sku)
    return out


def event_key(event_id: str) -> EventId:
    ms, seq, p = event_id.split("-")
    return EventId(int(ms), int(seq), int(p))


async def stream_ids(redis: Redis, skus: list[str] | None = None) -> list[str]:
    """Every event id in the store (of these skus), in global order: the brute-force truth."""
    out: list[EventId] = []
    for p in range(keys.PARTITIONS):
        entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(keys.events(p)))
        for sid, fields in entries:
            if skus is None or fields.get("sku") in skus:
                out.append(EventId.of(sid, p))
    return [str(k) for k in sorted(out)]


async def read_log(
    client: httpx.AsyncClient, limit: int = 100, **params: str
) -> tuple[list[dict[str, Any]], str]:
    """Every page of the log from `after` (or the start) until an empty page."""
    events: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit, **params}
    while True:
        r = await client.get("/v1/events/log", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        events += body["events"]
        if not body["events"]:
            return events, body["next"]
        # The last event examined: the last one sent, or a later one the filter skipped.
        assert event_key(body["next"]) >= event_key(body["events"][-1]["id"])
        query["after"] = body["next"]


@dataclass
class SSE:
    id: str | None
    event: str
    data: str

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.data)
        return value


@dataclass
class SSEStream:
    """Parses a text/event-stream response in a background task into a queue. With
    `paused`, nothing is read from the socket until `resume()` (a client that stalls)."""

    response: httpx.Response
    paused: bool = False
    events: asyncio.Queue[SSE] = field(default_factory=asyncio.Queue)
    comments: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _go: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if not self.paused:
            self._go.set()
        self._task = asyncio.create_task(self._read())

    def resume(self) -> None:
        self._go.set()

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for chunk in self.response.aiter_text():
                for line in chunk.splitlines(keepends=True):
                    self._line(line, fields)
                if not self._go.is_set():
                    await self._go.wait()
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            self.ended.set()

    _partial: str = ""

    def _line(self, piece: str, fields: dict[str, str]) -> None:
        self._partial += piece
        if not self._partial.endswith("\n"):
            return
        line, self._partial = self._partial.rstrip("\n"), ""
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        else:
            if "retry" in fields:
                self.ready.set()
            if "data" in fields:
                self.events.put_nowait(
                    SSE(fields.get("id"), fields.get("event", "message"), fields["data"])
                )
            fields.clear()

    async def next(self, within: float = 5.0) -> SSE:
        async with asyncio.timeout(within):
            return await self.events.get()

    async def take(self, n: int, within: float = 10.0) -> list[SSE]:
        async with asyncio.timeout(within):
            return [await self.events.get() for _ in range(n)]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.response.aclose()


@contextlib.asynccontextmanager
async def open_sse(
    client: httpx.AsyncClient,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    paused: bool = False,
) -> AsyncIterator[SSEStream]:
    request = client.build_request("GET", "/v1/events", params=params, headers=headers)
    response = await client.send(request, stream=True)
    try:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = SSEStream(response, paused=paused)
        if not paused:
            await asyncio.wait_for(stream.ready.wait(), 10)
        yield stream
        await stream.close()
    finally:
        await response.aclose()
