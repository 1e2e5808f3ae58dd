"""A script that changes several positions of one sku in one call reads the sku once and moves
its channel totals by each change (includes/state.lua): each event's figures must start where
the previous event's ended, and the last must end at the store's actual total."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.store import calls
from app.store.calls import StockEvent
from app.store.scripts import Scripts
from tests.lua.helpers import reserve_call

SKU = "chain-sku"
P = keys.partition_of(SKU)
NOW = 0  # the clock offset: scripts read the store's TIME
RETENTION_MS = 86_400_000
CHANNELS = {"web": [2, ["dc", "store-a"]], "pickup": [1, ["store-a"]]}


@pytest.fixture
async def scripts(redis: Redis) -> AsyncIterator[Scripts]:
    yield Scripts.register(redis)


async def stock(redis: Redis, positions: dict[str, str]) -> None:
    for location, value in positions.items():
        await redis.hset(keys.position(P, SKU), location, value)


async def channel_events(redis: Redis) -> list[dict[str, Any]]:
    entries: Any = await redis.xrange(keys.events(P))
    return [
        {c["channel"]: c for c in orjson.loads(fields.get("channels", "[]"))}
        for _, fields in entries
    ]


def assert_chained(events: list[dict[str, Any]], channel: str, start: int, end: int) -> None:
    figures = [e[channel] for e in events if channel in e]
    assert figures[0]["available_before"] == start
    for earlier, later in itertools.pairwise(figures):
        assert later["available_before"] == earlier["available_after"]
    assert figures[-1]["available_after"] == end


async def test_a_split_hold_chains_the_channel_figures_of_its_events(
    scripts: Scripts, redis: Redis
) -> None:
    await stock(redis, {"dc": "3:0:0:0", "store-a": "4:0:0:1"})
    hold_id = "hchain"
    call = reserve_call(
        partition=P,
        hold_id=hold_id,
        skus=[SKU],
        lines=[{"s": 1, "q": 5}],
        channel="web",
        allow_split=True,
        retention_ms=RETENTION_MS,
        candidates=["dc", "store-a"],
        channels=orjson.dumps(CHANNELS),
        owner="client-a",
        offset_ms=NOW,
    )
    reply = await scripts.run(call)

    assert reply[0] == "ok"
    events = await channel_events(redis)
    assert len(events) == 2  # 3 units at dc, 2 at store-a
    assert_chained(events, "web", start=6, end=1)
    assert_chained(events, "pickup", start=3, end=1)


async def test_stock_events_on_one_sku_chain_the_channel_figures_of_their_events(
    scripts: Scripts, redis: Redis
) -> None:
    await stock(redis, {"dc": "3:0:0:0", "store-a": "4:0:0:1"})
    events_in = [
        StockEvent("e-1", "sale", SKU, "store-a", 2, "1"),
        StockEvent("e-2", "receipt", SKU, "dc", 5, "2"),
        StockEvent("e-3", "count", SKU, "store-a", 0, "3"),
    ]
    call = calls.stock_events(
        P,
        events_in,
        retention_ms=RETENTION_MS,
        dedupe_seconds=60,
        channels=orjson.dumps(CHANNELS),
        offset_ms=NOW,
    )
    await scripts.run(call)

    events = await channel_events(redis)
    assert len(events) == 3
    assert_chained(events, "web", start=6, end=8)
    assert_chained(events, "pickup", start=3, end=0)
