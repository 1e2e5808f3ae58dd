"""The reaper sweeps the holds listing index: a member whose hold record has gone (a finished
hold past its retention) is dropped even if nobody lists, and live holds' members stay."""

from __future__ import annotations

import asyncio
from typing import cast

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from app import keys
from app.api.main import create_app
from app.domain.hold_list import SWEEP_PARTITIONS
from app.settings import Settings
from tests.api.helpers import hold, skus_in_distinct_partitions
from tests.conftest import make_settings, seed


async def test_a_sweep_drops_the_members_of_gone_records_only(
    client: httpx.AsyncClient, app: FastAPI, redis: Redis
) -> None:
    skus = skus_in_distinct_partitions(3)
    await seed(client, {(s, "dc"): 5 for s in skus})
    made = [await hold(client, [{"sku": s, "quantity": 1}]) for s in skus]
    gone = made[0]
    await redis.delete(keys.hold(keys.partition_of(skus[0]), gone["id"]))
    lister = app.state.services.hold_list
    removed = 0
    for _ in range(keys.PARTITIONS // SWEEP_PARTITIONS):  # one round over every partition
        removed += await lister.sweep()
    assert removed == 1
    for h, sku in zip(made, skus, strict=True):
        members = cast(
            list[str], await redis.zrange(keys.holds_index(keys.partition_of(sku)), 0, -1)
        )
        assert [m.rsplit(" ", 1)[1] for m in members] == ([] if h is gone else [h["id"]])


async def test_the_running_reaper_sweeps(store_url: str, redis: Redis) -> None:
    settings: Settings = make_settings(store_url, reaper_enabled=True, reaper_interval_seconds=0.01)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            await seed(c, {("sku-1", "dc"): 5})
            h = await hold(c, [{"sku": "sku-1", "quantity": 1}])
            p = keys.partition_of("sku-1")
            await redis.delete(keys.hold(p, h["id"]))
            for _ in range(500):  # a full round is 16 passes: well under a second
                if await redis.zcard(keys.holds_index(p)) == 0:
                    break
                await asyncio.sleep(0.01)
            assert await redis.zcard(keys.holds_index(p)) == 0
