"""The reaper: bounded passes, safe when every worker runs it at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app import keys
from app.api.main import create_app
from app.domain.clock import ManualClock
from app.settings import Settings
from tests.conftest import seed


async def _lapsed_holds(client: httpx.AsyncClient, clock: ManualClock, n: int) -> list[str]:
    await seed(client, {(f"r-{i}", "dc"): 5 for i in range(n)})
    ids = []
    for i in range(n):
        r = await client.post(
            "/v1/holds", json={"ttl_seconds": 1, "lines": [{"sku": f"r-{i}", "quantity": 2}]}
        )
        assert r.status_code == 201
        ids.append(r.json()["id"])
    clock.advance(2)
    return ids


async def _expired_events(redis: Redis) -> int:
    total = 0
    for p in range(keys.PARTITIONS):
        for _, fields in await redis.xrange(keys.events(p)):
            total += fields["type"] == "hold.expired"
    return total


async def test_two_workers_reaping_at_once_expire_each_hold_exactly_once(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, clock: ManualClock, redis: Redis
) -> None:
    ids = await _lapsed_holds(client, clock, 30)
    other = create_app(settings, clock)
    async with other.router.lifespan_context(other):
        counts = await asyncio.gather(
            app.state.services.reaper.run_once(), other.state.services.reaper.run_once()
        )
    assert sum(counts) == 30
    assert await _expired_events(redis) == 30
    for i, hold_id in enumerate(ids):
        assert (await client.get(f"/v1/holds/{hold_id}")).json()["status"] == "expired"
        assert (
            await redis.hget(keys.position(keys.partition_of(f"r-{i}"), f"r-{i}"), "dc")
            == "5:0:0:0"
        )


async def test_a_reaper_pass_does_bounded_work(
    client: httpx.AsyncClient, settings: Settings, clock: ManualClock
) -> None:
    await _lapsed_holds(client, clock, 12)
    small = create_app(settings.model_copy(update={"reaper_batch": 5}), clock)
    async with small.router.lifespan_context(small):
        reaper = small.state.services.reaper
        assert [await reaper.run_once() for _ in range(4)] == [5, 5, 2, 0]


async def test_the_background_reaper_expires_lapsed_holds_by_itself(
    settings: Settings, store_url: str
) -> None:
    live = create_app(
        settings.model_copy(update={"reaper_enabled": True, "reaper_interval_seconds": 0.05})
    )
    async with live.router.lifespan_context(live):
        transport = httpx.ASGITransport(app=live)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await seed(client, {("bg", "dc"): 3})
            r = await client.post(
                "/v1/holds", json={"ttl_seconds": 1, "lines": [{"sku": "bg", "quantity": 3}]}
            )
            hold_id = r.json()["id"]
            redis = live.state.services.redis
            record = keys.hold(keys.partition_of("bg"), hold_id)
            for _ in range(60):
                if await redis.hget(record, "status") == "expired":
                    break
                await asyncio.sleep(0.05)
            assert await redis.hget(record, "status") == "expired"


@pytest.mark.parametrize("n_parts", [2])
async def test_a_multi_partition_hold_expires_in_every_partition(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, n_parts: int
) -> None:
    skus = [
        "mp-0",
        *[
            s
            for s in (f"mp-{i}" for i in range(1, 50))
            if keys.partition_of(s) != keys.partition_of("mp-0")
        ][: n_parts - 1],
    ]
    await seed(client, {(s, "dc"): 4 for s in skus})
    r = await client.post(
        "/v1/holds", json={"ttl_seconds": 1, "lines": [{"sku": s, "quantity": 1} for s in skus]}
    )
    assert r.status_code == 201
    clock.advance(2)
    assert await app.state.services.reaper.run_once() == n_parts
    for s in skus:
        assert await redis.hget(keys.position(keys.partition_of(s), s), "dc") == "4:0:0:0"
