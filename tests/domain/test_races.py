"""Concurrency: never oversell, and counters always equal the sum over live hold records."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from tests.conftest import seed

pytestmark = pytest.mark.slow


async def _hold(client: httpx.AsyncClient, sku: str, quantity: int = 1) -> httpx.Response:
    return await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": sku, "quantity": quantity}]}
    )


async def open_hold_units(redis: Redis) -> dict[tuple[str, str], dict[str, int]]:
    """held and committed per (sku, location), summed over the hold records themselves."""
    totals: dict[tuple[str, str], dict[str, int]] = {}
    async for key in redis.scan_iter(match="os:{*}:hold:*", count=1000):
        record: Any = await redis.hgetall(key)
        field = {"active": "held", "pending": "held", "committed": "committed"}.get(
            record.get("status", "")
        )
        if field is None:
            continue
        for line in orjson.loads(record["lines"]):
            slot = totals.setdefault((line["sku"], line["location"]), {"held": 0, "committed": 0})
            slot[field] += line["quantity"]
    return totals


async def stored_counters(redis: Redis, sku: str) -> dict[str, dict[str, int]]:
    raw: Any = await redis.hgetall(keys.position(keys.partition_of(sku), sku))
    out = {}
    for loc, value in raw.items():
        on_hand, held, committed, _safety = (int(x) for x in value.split(":"))
        out[loc] = {"on_hand": on_hand, "held": held, "committed": committed}
    return out


async def test_300_concurrent_single_unit_holds_on_50_units_grant_exactly_50(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("flash", "dc"): 50})
    responses = await asyncio.gather(*(_hold(client, "flash") for _ in range(300)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 50
    assert statuses.count(409) == 250
    position = (await client.get("/v1/stock/flash")).json()["positions"][0]
    assert position["held"] == 50
    assert position["available"] == 0


async def test_300_concurrent_holds_against_two_worker_processes_grant_exactly_50(
    store_url: str, start_service: Any
) -> None:
    # The race, not the machine: 300 requests at once on a contended machine can outlast the
    # production 1.25 s request deadline and answer 503 (tests/faults checks the deadlines);
    # the in-process tests' bounds (make_settings).
    service = start_service(
        OMNISTOCK_REDIS_URL=store_url,
        OMNISTOCK_WORKERS="2",
        OMNISTOCK_REDIS_TIMEOUT_SECONDS="5",
        OMNISTOCK_REQUEST_DEADLINE_SECONDS="10",
    )
    # No keep-alive: a loaded run once lost one POST to httpx.ReadError, most likely a pooled
    # connection the server closed as idle just as the request went out (not verified); a
    # fresh connection per request keeps the 300-way race and drops that client-side race.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=30) as client:
        await seed(client, {("flash", "dc"): 50})
        responses = await asyncio.gather(*(_hold(client, "flash") for _ in range(300)))
        statuses = [r.status_code for r in responses]
        assert statuses.count(201) == 50, statuses
        assert statuses.count(409) == 250
        position = (await client.get("/v1/stock/flash")).json()["positions"][0]
    assert position["held"] == 50
    assert position["available"] == 0


async def test_concurrent_multi_partition_carts_are_all_or_nothing_and_never_oversell(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    # Two skus in different partitions: each cart takes one of each.
    a, b = (
        "cart-a",
        next(
            f"cart-b{i}"
            for i in range(100)
            if keys.partition_of(f"cart-b{i}") != keys.partition_of("cart-a")
        ),
    )
    await seed(client, {(a, "dc"): 20, (b, "dc"): 10})
    body = {"channel": "web", "lines": [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}]}
    responses = await asyncio.gather(*(client.post("/v1/holds", json=body) for _ in range(60)))
    created = [r.json() for r in responses if r.status_code == 201]
    assert len(created) == 10
    assert all(len(h["lines"]) == 2 for h in created)
    assert {r.status_code for r in responses} <= {201, 409}
    stock_a = (await client.get("/v1/stock/" + a)).json()["positions"][0]
    stock_b = (await client.get("/v1/stock/" + b)).json()["positions"][0]
    assert (stock_a["held"], stock_b["held"]) == (10, 10)
    assert await stored_counters(redis, a) == {"dc": {"on_hand": 20, "held": 10, "committed": 0}}


async def test_concurrent_holds_commits_and_releases_keep_counters_equal_to_live_holds(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    skus = [f"mix-{i}" for i in range(4)]
    await seed(client, {(sku, loc): 30 for sku in skus for loc in ("dc", "store-a")})
    rng = random.Random(7)

    async def shopper() -> None:
        for _ in range(6):
            lines = [
                {"sku": sku, "quantity": rng.randint(1, 3)}
                for sku in rng.sample(skus, rng.randint(1, 3))
            ]
            r = await client.post(
                "/v1/holds", json={"channel": "web", "allow_split": True, "lines": lines}
            )
            if r.status_code != 201:
                assert r.status_code == 409, r.text
                continue
            hold_id = r.json()["id"]
            action = rng.choice(["commit", "release", "keep", "commit-release", "commit-fulfil"])
            for step in action.split("-"):
                if step != "keep":
                    t = await client.post(f"/v1/holds/{hold_id}/{step}")
                    assert t.status_code == 200, t.text

    await asyncio.gather(*(shopper() for _ in range(40)))
    live = await open_hold_units(redis)
    for sku in skus:
        for loc, counters in (await stored_counters(redis, sku)).items():
            expected = live.get((sku, loc), {"held": 0, "committed": 0})
            assert counters["held"] == expected["held"], (sku, loc)
            assert counters["committed"] == expected["committed"], (sku, loc)
            assert counters["held"] + counters["committed"] <= 30
