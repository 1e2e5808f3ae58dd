"""Each reply listed in the headers of audit_snapshot.lua and audit_repair.lua."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from app import keys
from app.store.scripts import Scripts
from tests.api.helpers import hold
from tests.conftest import seed

SKU = "lua-audit"
P = keys.partition_of(SKU)


def layout(hold_ids: list[str], skus: list[str]) -> tuple[list[str], list[Any]]:
    ks = [keys.expiry_index(P), keys.skus(P), keys.events(P)]
    ks += [keys.hold(P, h) for h in hold_ids]
    for sku in skus:
        ks += keys.sku_keys(P, sku)
    return ks, [orjson.dumps(hold_ids), orjson.dumps(skus)]


async def test_snapshot_replies_ok_with_the_partition_as_it_is(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    ks, args = layout([h["id"]], [SKU])
    kind, raw = await Scripts.register(redis).audit_snapshot(keys=ks, args=[*args, 100])
    snap = orjson.loads(raw)
    assert kind == "ok"
    assert snap["holds"][h["id"]]["status"] == "active"
    assert snap["positions"][SKU] == ["dc", "5:2:0:0"]
    assert snap["expiry"][0] == h["id"]
    assert snap["hx"][SKU][0] == f"{h['id']}|dc|2"
    assert snap["events"][f"{SKU}|dc"][1:3] == ["type", "hold.reserved"]  # after its id


async def test_snapshot_replies_stale_naming_holds_and_skus_the_caller_did_not_pass(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    ks, args = layout([], [])
    kind, raw = await Scripts.register(redis).audit_snapshot(keys=ks, args=[*args, 100])
    assert kind == "stale"
    assert orjson.loads(raw) == {"holds": [h["id"]], "skus": [SKU]}


async def test_repair_replies_ok_with_every_change_it_made(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    await redis.hset(keys.position(P, SKU), "dc", "5:4:0:0")
    ks, args = layout([h["id"]], [SKU])
    kind, raw = await Scripts.register(redis).audit_repair(keys=ks, args=[*args, 1, 0, b"{}"])
    assert kind == "ok"
    assert orjson.loads(raw) == [
        {"kind": "counters", "sku": SKU, "location": "dc", "before": "5:4:0:0", "after": "5:2:0:0"}
    ]


async def test_repair_replies_ok_with_no_changes_as_an_empty_table(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    ks, args = layout([], [SKU])
    kind, raw = await Scripts.register(redis).audit_repair(keys=ks, args=[*args, 1, 0, b"{}"])
    assert (kind, orjson.loads(raw)) == ("ok", {})


async def test_repair_replies_stale_and_changes_nothing_when_its_view_is_incomplete(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    await redis.hset(keys.position(P, SKU), "dc", "5:4:0:0")
    ks, args = layout([], [SKU])  # the hold appeared after the caller looked
    kind, raw = await Scripts.register(redis).audit_repair(keys=ks, args=[*args, 1, 0, b"{}"])
    assert kind == "stale"
    assert orjson.loads(raw) == {"holds": [h["id"]], "skus": {}}
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:4:0:0"
