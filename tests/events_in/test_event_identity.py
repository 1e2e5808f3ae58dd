"""An incoming event is identified by (location, id): the same id from two locations is two
events, the same (location, id) again is `duplicate` when it is the same event (type, sku,
quantity) and `rejected` with reason `id_reused` when it is not, whichever partitions the skus
live in, across batches and within one."""

from __future__ import annotations

import asyncio
from itertools import count
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app import keys
from app.domain.stock_events import fingerprint
from tests.conftest import seed
from tests.events_in.test_stock_events import ev, on_hand, send
from tests.security.test_auth_matrix import store_state

SKU = "pos-1"


def sku_in_partition(same: bool) -> str:
    """Another sku, in SKU's partition (same=True) or in another one."""
    home = keys.partition_of(SKU)
    return next(
        sku for n in count() if (sku := f"other-{n}") and (keys.partition_of(sku) == home) == same
    )


SAME_PARTITION, OTHER_PARTITION = sku_in_partition(True), sku_in_partition(False)
STOCK = {
    (s, loc): 10 for s in (SKU, SAME_PARTITION, OTHER_PARTITION) for loc in ("store-a", "store-b")
}


async def test_the_same_id_at_two_locations_is_two_events_and_both_apply(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, STOCK)
    (a,) = await send(client, ev("till-1:0001", "sale", 1, location="store-a"))
    (b,) = await send(client, ev("till-1:0001", "sale", 2, location="store-b"))
    assert (a["status"], b["status"]) == ("applied", "applied")
    assert (await on_hand(client, SKU, "store-a"), await on_hand(client, SKU, "store-b")) == (9, 8)


async def test_the_same_id_at_two_locations_in_one_batch_both_apply(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, STOCK)
    results = await send(
        client,
        ev("x-1", "sale", 1, location="store-a"),
        ev("x-1", "receipt", 5, location="store-b"),
        ev("x-2", "sale", 1, location="store-a"),
        ev("x-2", "sale", 1, sku=OTHER_PARTITION, location="store-b"),
    )
    assert [r["status"] for r in results] == ["applied"] * 4
    assert (await on_hand(client, SKU, "store-a"), await on_hand(client, SKU, "store-b")) == (8, 15)
    assert await on_hand(client, OTHER_PARTITION, "store-b") == 9


async def test_the_same_location_and_id_with_the_same_content_is_duplicate_and_changes_nothing(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, STOCK)
    event = ev("x-1", "sale", 2)
    assert [r["status"] for r in await send(client, event)] == ["applied"]
    other_store = ev("x-1", "sale", 2, location="store-b")  # its own event, in between
    assert [r["status"] for r in await send(client, other_store)] == ["applied"]
    before = await store_state(redis)
    again = {**event, "occurred_at": "2025-11-24T10:14:58Z"}  # when is not what
    (result,) = await send(client, again)
    assert result["status"] == "duplicate"
    assert result["position"]["on_hand"] == 8
    assert await store_state(redis) == before


@pytest.mark.parametrize(
    "changed",
    [
        {"quantity": 3},
        {"type": "damage"},
        {"sku": SAME_PARTITION},
        {"sku": OTHER_PARTITION},
    ],
    ids=["quantity", "type", "sku-same-partition", "sku-other-partition"],
)
async def test_the_same_location_and_id_with_other_content_is_rejected_id_reused(
    client: httpx.AsyncClient, redis: Redis, changed: dict[str, Any]
) -> None:
    await seed(client, STOCK)
    event = ev("x-1", "sale", 2)
    assert [r["status"] for r in await send(client, event)] == ["applied"]
    before = await store_state(redis)
    (result,) = await send(client, {**event, **changed})
    assert (result["id"], result["status"], result["reason"]) == ("x-1", "rejected", "id_reused")
    assert "position" not in result
    assert await store_state(redis) == before


@pytest.mark.parametrize("sku", [SKU, SAME_PARTITION, OTHER_PARTITION])
async def test_within_one_batch_a_reused_id_is_rejected_and_a_repeat_is_duplicate(
    client: httpx.AsyncClient, sku: str
) -> None:
    await seed(client, STOCK)
    first = ev("x-1", "sale", 1)
    results = await send(client, first, ev("x-1", "sale", 4, sku=sku), first)
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("applied", None),
        ("rejected", "id_reused"),
        ("duplicate", None),
    ]
    assert await on_hand(client, SKU) == 9
    assert await on_hand(client, sku) == (9 if sku == SKU else 10)


async def test_a_batch_matching_an_earlier_event_applies_only_that_one(
    client: httpx.AsyncClient,
) -> None:
    """The identity's first content decides, not the batch's first: the repeat in the batch
    that matches the stored event is `duplicate`, the one that does not is `id_reused`."""
    await seed(client, STOCK)
    stored = ev("x-1", "sale", 1, sku=OTHER_PARTITION)
    await send(client, stored)
    results = await send(client, ev("x-1", "sale", 1), stored)
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("rejected", "id_reused"),
        ("duplicate", None),
    ]
    assert (await on_hand(client, SKU), await on_hand(client, OTHER_PARTITION)) == (10, 9)


async def test_concurrent_deliveries_of_one_identity_with_different_skus_apply_one(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, STOCK)
    skus = [SKU, OTHER_PARTITION, SAME_PARTITION] * 4
    results = await asyncio.gather(*(send(client, ev("x-1", "sale", 1, sku=s)) for s in skus))
    statuses = sorted(r[0]["status"] for r in results)
    winners = [s for s, (r,) in zip(skus, results, strict=True) if r["status"] != "rejected"]
    assert statuses.count("applied") == 1
    assert set(winners) == {winners[0]}  # the others of its content are duplicates
    assert statuses.count("rejected") == len(skus) - len(winners)
    units = [await on_hand(client, s) for s in (SKU, OTHER_PARTITION, SAME_PARTITION)]
    assert sorted(units) == [9, 10, 10]


async def test_a_claim_without_its_change_is_completed_by_a_retry_exactly_once(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    """A service that died between claiming the identity and applying the change: the retry of
    the same event applies it once; other content is still refused."""
    await seed(client, STOCK)
    event = ev("x-1", "sale", 2, sku=OTHER_PARTITION)
    await redis.set(keys.event_claim("store-a", "x-1"), fingerprint("sale", OTHER_PARTITION, 2))
    assert [r["status"] for r in await send(client, event)] == ["applied"]
    assert [r["status"] for r in await send(client, event)] == ["duplicate"]
    assert [r["reason"] for r in await send(client, {**event, "sku": SKU})] == ["id_reused"]
    assert await on_hand(client, OTHER_PARTITION) == 8


async def test_a_lost_claim_still_leaves_the_partition_record_deciding(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    """The partition's own record checks identity and content in the change's atomic step,
    even if the claim is gone (evicted, lost in a failover)."""
    await seed(client, STOCK)
    event = ev("x-1", "sale", 2)
    await send(client, event)
    await redis.delete(keys.event_claim("store-a", "x-1"))
    (result,) = await send(client, {**event, "sku": SAME_PARTITION})
    assert (result["status"], result["reason"]) == ("rejected", "id_reused")
    assert await on_hand(client, SAME_PARTITION) == 10


async def test_both_records_are_kept_for_the_dedupe_retention(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, STOCK)
    await send(client, ev("x-1", "sale", 2))
    seen = keys.event_seen(keys.partition_of(SKU), "store-a", "x-1")
    for key in (keys.event_claim("store-a", "x-1"), seen):
        assert 604_700 < await redis.ttl(key) <= 604_800
    assert await redis.get(seen) == fingerprint("sale", SKU, 2)


async def test_an_id_recorded_before_per_location_identity_stays_duplicate(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    """A record written by the previous release (`seen:<id>`, no location) still answers
    `duplicate` for its retention: an upgrade never applies a replayed till batch twice."""
    await seed(client, STOCK)
    await redis.set(keys.event_seen_before_locations(keys.partition_of(SKU), "x-1"), "1")
    (result,) = await send(client, ev("x-1", "sale", 2))
    assert result["status"] == "duplicate"
    assert await on_hand(client) == 10
