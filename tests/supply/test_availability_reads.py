"""What an availability answer costs the store, and its `incoming` and `next_available_at`
against the supply listing, over generated supply lines and promises: the positions and the
supply lines are read by one availability.lua call (a batch: one MULTI/EXEC; when a sku has
supply lines, a second one and a script call for the skus that have some, one per
partition)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.domain import stock
from tests.api.helpers import skus_in_distinct_partitions, skus_in_one_partition
from tests.conftest import script_calls, seed
from tests.supply.helpers import backorder, days, ok_supply, supply_lines

LOCATIONS = ["dc", "store-a", "store-b"]
CHANNELS = {"web": ["dc", "store-a"], "pos-b": ["store-b"], "all": LOCATIONS}


async def store_calls(redis: Redis) -> tuple[int, int]:
    """Script calls (FCALL, EVALSHA) and MULTI/EXEC transactions since CONFIG RESETSTAT."""
    stats: dict[str, Any] = await redis.info("commandstats")
    return await script_calls(redis), int(stats.get("cmdstat_exec", {}).get("calls", 0))


async def test_a_product_page_with_supply_lines_is_one_script_call(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 0}, channels=CHANNELS)
    await ok_supply(client, "sku-1", "dc", "po-1", 5, days(3))
    await redis.config_resetstat()
    body = (await client.get("/v1/availability/sku-1", params={"channel": "web"})).json()
    assert (body["available"], body["incoming"]) == (0, 5)
    assert await store_calls(redis) == (1, 0)


async def test_a_batch_without_supply_is_one_transaction_with_no_script_call(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    skus = skus_in_distinct_partitions(4, "batch-bare")
    await seed(client, {(s, "dc"): 3 for s in skus}, channels=CHANNELS)
    await redis.config_resetstat()
    r = await client.post("/v1/availability/query", json={"skus": skus, "channel": "web"})
    assert [x["incoming"] for x in r.json()["results"]] == [0, 0, 0, 0]
    assert await store_calls(redis) == (0, 1)


async def test_a_batch_with_supply_is_read_again_with_a_script_call_where_there_is_supply(
    client: httpx.AsyncClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction's one EXISTS of every sku's supply lines counts some: a second
    transaction finds whose, and the script reads that sku. The next batches skip the first
    transaction for a while (app/domain/stock.py, _SUPPLY_BACKOFF_SECONDS; long here, so a
    slow machine cannot make it lapse between the two requests)."""
    monkeypatch.setattr(stock, "_SUPPLY_BACKOFF_SECONDS", 3600.0)
    skus = skus_in_distinct_partitions(4, "batch-supply")
    await seed(client, {(s, "dc"): 3 for s in skus}, channels=CHANNELS)
    await ok_supply(client, skus[1], "dc", "po-1", 5, days(3))
    for transactions in (2, 1):
        await redis.config_resetstat()
        r = await client.post("/v1/availability/query", json={"skus": skus, "channel": "web"})
        assert [x["incoming"] for x in r.json()["results"]] == [0, 5, 0, 0]
        assert await store_calls(redis) == (1, transactions)


async def test_a_batch_shows_the_supply_lines_one_of_its_skus_gains(
    client: httpx.AsyncClient,
) -> None:
    skus = skus_in_distinct_partitions(6, "batch-gains")
    await seed(client, {(s, "dc"): 0 for s in skus}, channels=CHANNELS)
    body = {"skus": skus, "channel": "web"}
    before = (await client.post("/v1/availability/query", json=body)).json()["results"]
    assert [(x["incoming"], x["next_available_at"]) for x in before] == [(0, None)] * 6

    eta = days(2)
    await ok_supply(client, skus[4], "dc", "po-1", 7, eta)
    after = (await client.post("/v1/availability/query", json=body)).json()["results"]

    assert [x["incoming"] for x in after] == [0, 0, 0, 0, 7, 0]
    assert after[4]["next_available_at"] is not None
    assert (
        after[4]
        == (await client.get(f"/v1/availability/{skus[4]}", params={"channel": "web"})).json()
    )
    assert [x for i, x in enumerate(after) if i != 4] == [x for i, x in enumerate(before) if i != 4]


def expected(
    lines: list[dict[str, Any]], scope: list[str] | None, available: int
) -> tuple[int, str | None]:
    """`incoming` and `next_available_at` from the supply listing (GET /v1/supply/{sku}):
    the unpromised units of the lines in scope, and, when nothing is available now, the
    earliest eta of such a line with units left."""
    open_lines = [x for x in lines if scope is None or x["location"] in scope]
    incoming = sum(x["incoming"] for x in open_lines)
    etas = sorted(x["eta"] for x in open_lines if x["incoming"] > 0)
    return incoming, etas[0] if etas and available == 0 else None


@pytest.mark.parametrize("seed_value", [1, 2])
async def test_incoming_and_next_available_at_follow_the_supply_listing(
    client: httpx.AsyncClient, seed_value: int
) -> None:
    rnd = random.Random(seed_value)
    skus = [*skus_in_distinct_partitions(5, f"gen{seed_value}"), *skus_in_one_partition(3)]
    stock = {(s, loc): rnd.choice([0, 0, 1, 4]) for s in skus for loc in LOCATIONS}
    await seed(client, stock, channels=CHANNELS)
    buffered = {"locations": LOCATIONS, "low_stock_threshold": 1, "buffer": {"percent": 50}}
    assert (await client.put("/v1/channels/market", json=buffered)).status_code == 200
    for sku in skus[:-1]:  # the last sku has no supply line
        for n in range(rnd.randint(1, 4)):
            loc = rnd.choice(LOCATIONS)
            await ok_supply(client, sku, loc, f"po-{n}", rnd.randint(1, 6), days(n + rnd.random()))
    for _ in range(8):  # promises take some of the lines, earliest first
        sku = rnd.choice(skus)
        await backorder(client, [{"sku": sku, "quantity": rnd.randint(1, 8)}])
    listing = {sku: await supply_lines(client, sku) for sku in skus}

    scopes: list[tuple[dict[str, Any], list[str] | None]] = [
        ({}, None),
        ({"channel": "web"}, CHANNELS["web"]),
        ({"channel": "pos-b"}, CHANNELS["pos-b"]),
        ({"channel": "market"}, LOCATIONS),  # a buffer: incoming is not buffered
        ({"location": "store-a"}, ["store-a"]),
    ]
    seen: Counter[str] = Counter()
    for params, scope in scopes:
        batch_body: dict[str, Any] = {"skus": skus}
        if "channel" in params:
            batch_body["channel"] = params["channel"]
        if "location" in params:
            batch_body["locations"] = [params["location"]]
        r = await client.post("/v1/availability/query", json=batch_body)
        assert r.status_code == 200, r.text
        batch = r.json()["results"]
        for sku, in_batch in zip(skus, batch, strict=True):
            single = (await client.get(f"/v1/availability/{sku}", params=params)).json()
            assert single == in_batch
            want = expected(listing[sku], scope, single["available"])
            assert (single["incoming"], single["next_available_at"]) == want, (sku, params)
            seen["incoming"] += want[0] > 0
            seen["next"] += want[1] is not None
            seen["available and incoming"] += single["available"] > 0 and want[0] > 0
    assert min(seen.values()) >= 3, seen  # the data reaches every branch of the rule
