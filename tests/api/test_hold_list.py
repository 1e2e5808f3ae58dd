"""GET /v1/holds: filters, stable cursor pages, limits, and status by the store's clock."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from app import keys
from app.domain.clock import ManualClock
from app.domain.hold_list import DEFAULT_LIMIT, MAX_LIMIT
from tests.api.helpers import act, assert_problem, hold, skus_in_distinct_partitions
from tests.conftest import seed


async def listed(client: httpx.AsyncClient, **params: str | int) -> list[str]:
    """The ids of every hold the query lists, following `next` to the end."""
    ids: list[str] = []
    after = None
    while True:
        query: dict[str, str | int] = {**params, **({"after": after} if after else {})}
        r = await client.get("/v1/holds", params=query)
        assert r.status_code == 200, r.text
        ids += [h["id"] for h in r.json()["data"]]
        after = r.json()["next"]
        if after is None:
            return ids


async def test_list_shows_every_hold_oldest_first_as_get_shows_it(
    client: httpx.AsyncClient,
) -> None:
    skus = skus_in_distinct_partitions(3)
    await seed(client, {(s, "dc"): 10 for s in skus})
    made = [await hold(client, [{"sku": s, "quantity": 1}], reference="r") for s in skus]
    r = await client.get("/v1/holds")
    assert r.status_code == 200, r.text
    # Holds made in the same millisecond list by id (the index's member order, app/keys.py).
    oldest_first = sorted(made, key=lambda h: (h["created_at"], h["id"]))
    assert r.json() == {"data": oldest_first, "next": None}


async def test_pages_cover_every_hold_once_in_a_stable_order(client: httpx.AsyncClient) -> None:
    skus = skus_in_distinct_partitions(5)
    await seed(client, {(s, "dc"): 10 for s in skus})
    made = [await hold(client, [{"sku": s, "quantity": 1}]) for s in skus * 2]
    whole = (await client.get("/v1/holds", params={"limit": MAX_LIMIT})).json()["data"]
    # Oldest first (holds made in the same millisecond: by id).
    assert whole == sorted(made, key=lambda h: (h["created_at"], h["id"]))
    ids = [h["id"] for h in whole]
    assert await listed(client, limit=3) == ids
    assert await listed(client, limit=1) == ids


async def test_filter_by_reference_and_by_status(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    a = await hold(client, [{"sku": "sku-1", "quantity": 1}], reference="cart-a")
    b = await hold(client, [{"sku": "sku-1", "quantity": 1}], reference="cart-b")
    assert (await act(client, b["id"], "commit")).status_code == 200
    assert await listed(client, reference="cart-a") == [a["id"]]
    assert await listed(client, status="committed") == [b["id"]]
    assert await listed(client, status="released") == []


async def test_filter_by_sku_finds_a_multi_partition_hold_once(client: httpx.AsyncClient) -> None:
    x, y = skus_in_distinct_partitions(2)
    await seed(client, {(x, "dc"): 10, (y, "dc"): 10})
    both = await hold(client, [{"sku": x, "quantity": 1}, {"sku": y, "quantity": 2}])
    only_x = await hold(client, [{"sku": x, "quantity": 1}])
    assert await listed(client, sku=y) == [both["id"]]
    assert await listed(client, sku=x) == [both["id"], only_x["id"]]
    r = await client.get("/v1/holds", params={"sku": y})
    assert r.json()["data"] == [both]  # every part's lines, as GET shows it
    assert await listed(client) == [both["id"], only_x["id"]]


async def test_an_expired_hold_lists_as_expired_before_the_reaper_runs(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}], ttl_seconds=60)
    clock.advance(61)
    assert await listed(client, status="expired") == [h["id"]]
    assert await listed(client, status="active") == []


async def test_the_default_and_the_largest_page(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 1000})
    for _ in range(DEFAULT_LIMIT + 1):
        await hold(client, [{"sku": "sku-1", "quantity": 1}])
    r = await client.get("/v1/holds")
    assert len(r.json()["data"]) == DEFAULT_LIMIT and r.json()["next"]
    r = await client.get("/v1/holds", params={"limit": MAX_LIMIT})
    assert len(r.json()["data"]) == DEFAULT_LIMIT + 1 and r.json()["next"] is None


async def test_bad_parameters_are_422(client: httpx.AsyncClient) -> None:
    for params in (
        {"limit": 0},
        {"limit": MAX_LIMIT + 1},
        {"limit": "ten"},
        {"status": "lost"},
        {"sku": "a b"},
        {"after": "not-a-cursor"},
        {"reference": "r" * 257},
    ):
        assert_problem(await client.get("/v1/holds", params=params), 422, "invalid_request")


async def test_a_hold_whose_record_is_gone_leaves_the_index_when_listed(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    p = keys.partition_of("sku-1")
    await redis.delete(keys.hold(p, h["id"]))  # as the finished-hold retention does
    assert await listed(client) == []
    assert await redis.zcard(keys.holds_index(p)) == 0
