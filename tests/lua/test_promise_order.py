"""The order of promises (lua/includes/promise.lua promise_order): promises made in the same
millisecond of the store's clock keep the order they were made in, so "the newest promises
break first" (supply_put.lua) and "the oldest are served first" (supply_receive.lua) never
fall to the order of the hold ids. Two scripts in one MULTI/EXEC see the same TIME: that is
how these tests make two holds in one millisecond on any machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.store import calls
from app.store.calls import StockEvent
from app.store.scripts import Scripts
from tests.lua.helpers import new_hold

SKU = "promise-order-sku"
P = keys.partition_of(SKU)
DAY_MS = 86_400_000
# Made first, but sorting after the second by id: a tie broken by id calls it the newer.
FIRST, SECOND = "hz-made-first", "ha-made-second"


@pytest.fixture
async def scripts(redis: Redis) -> AsyncIterator[Scripts]:
    registered = Scripts.register(redis)
    await registered.load(redis)
    yield registered


async def put_supply(scripts: Scripts, redis: Redis, quantity: int) -> Any:
    seconds, _ = await redis.time()
    call = calls.supply_put(
        sku=SKU,
        location="dc",
        supply_id="po",
        type="purchase_order",
        quantity=quantity,
        eta_ms=(seconds + 5 * 86_400) * 1000,
        reference="",
        retention_ms=DAY_MS,
        horizon_ms=365 * DAY_MS,
    )
    return await scripts.run(call)


def backorder(hold_id: str, quantity: int) -> calls.Call:
    lines = [{"s": 1, "q": quantity, "l": "dc"}]
    hold = new_hold(partition=P, hold_id=hold_id, skus=[SKU], lines=lines, ttl_ms=600_000)
    return calls.hold_backorder(hold, needed_by_ms=0)


async def two_holds_in_one_millisecond(scripts: Scripts, redis: Redis) -> None:
    """FIRST (4 units) then SECOND (3 units), both promised from the line, in one MULTI."""
    async with redis.pipeline(transaction=True) as pipe:
        for hold_id, quantity in ((FIRST, 4), (SECOND, 3)):
            call = backorder(hold_id, quantity)
            function = scripts.of(call.script).library.function  # type: ignore[attr-defined]
            pipe.execute_command("FCALL", function, len(call.keys), *call.keys, *call.args)
        replies = await pipe.execute()
    assert [r[0] for r in replies] == ["ok", "ok"], replies
    assert replies[0][2] == replies[1][2]  # created_at: the same store millisecond


async def test_reducing_supply_breaks_the_promise_made_last_in_the_same_millisecond(
    scripts: Scripts, redis: Redis
) -> None:
    await put_supply(scripts, redis, 10)
    await two_holds_in_one_millisecond(scripts, redis)
    reply = await put_supply(scripts, redis, 5)
    assert orjson.loads(reply[3]) == [{"hold": SECOND, "units": 2}]


async def test_a_receipt_serves_the_promise_made_first_in_the_same_millisecond(
    scripts: Scripts, redis: Redis
) -> None:
    await put_supply(scripts, redis, 10)
    await two_holds_in_one_millisecond(scripts, redis)
    receipt = StockEvent("rcv-1", "receipt", SKU, "dc", 4, "receipt|4")
    call = calls.supply_receive(
        receipt, "po", [FIRST, SECOND], retention_ms=DAY_MS, dedupe_seconds=60, channels=b"{}"
    )
    assert (await scripts.run(call))[0] == "applied"
    promised = await redis.hgetall(keys.promises(P, SKU))
    assert set(promised) == {f"{SECOND}|dc|po"}  # FIRST's 4 units arrived, SECOND waits
