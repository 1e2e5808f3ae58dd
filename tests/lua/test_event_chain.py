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
from app.store.scripts import Scripts

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
    reply = await scripts.hold_reserve(
        keys=[keys.hold(P, hold_id), keys.expiry_index(P), keys.events(P), *keys.sku_keys(P, SKU)],
        args=[
            NOW,
            hold_id,
            "active",
            60_000,
            0,
            "web",
            "",
            str(P),
            "1",
            RETENTION_MS,
            orjson.dumps([{"s": 1, "q": 5}]),
            orjson.dumps([SKU]),
            orjson.dumps(["dc", "store-a"]),
            "",
            orjson.dumps(CHANNELS),
            "client-a",
        ],
    )

    assert reply[0] == "ok"
    events = await channel_events(redis)
    assert len(events) == 2  # 3 units at dc, 2 at store-a
    assert_chained(events, "web", start=6, end=1)
    assert_chained(events, "pickup", start=3, end=1)


async def test_stock_events_on_one_sku_chain_the_channel_figures_of_their_events(
    scripts: Scripts, redis: Redis
) -> None:
    await stock(redis, {"dc": "3:0:0:0", "store-a": "4:0:0:1"})
    events_in: list[dict[str, Any]] = [
        {"i": "e-1", "t": "sale", "s": 1, "l": "store-a", "q": 2, "f": "1"},
        {"i": "e-2", "t": "receipt", "s": 1, "l": "dc", "q": 5, "f": "2"},
        {"i": "e-3", "t": "count", "s": 1, "l": "store-a", "q": 0, "f": "3"},
    ]
    await scripts.stock_events(
        keys=[
            keys.events(P),
            keys.skus(P),
            *keys.sku_keys(P, SKU),
            *(k for e in events_in for k in keys.event_seen_keys(P, e["l"], e["i"])),
        ],
        args=[
            NOW,
            RETENTION_MS,
            60,
            orjson.dumps(CHANNELS),
            orjson.dumps([SKU]),
            orjson.dumps(events_in),
        ],
    )

    events = await channel_events(redis)
    assert len(events) == 3
    assert_chained(events, "web", start=6, end=8)
    assert_chained(events, "pickup", start=3, end=0)
