"""Each reply listed in the headers of audit_snapshot.lua and audit_repair.lua."""

from __future__ import annotations

import httpx
import orjson
from redis.asyncio import Redis

from app import keys
from app.store import calls
from app.store.scripts import Scripts
from tests.api.helpers import hold
from tests.conftest import seed

SKU = "lua-audit"
P = keys.partition_of(SKU)


def snapshot(hold_ids: list[str], skus: list[str]) -> calls.Call:
    return calls.audit_snapshot(P, hold_ids, skus, 100)


def repair(hold_ids: list[str], skus: list[str]) -> calls.Call:
    return calls.audit_repair(P, hold_ids, skus, retention_ms=0, channels=b"{}", offset_ms=1)


async def test_snapshot_replies_ok_with_the_partition_as_it_is(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    kind, raw = await Scripts.register(redis).run(snapshot([h["id"]], [SKU]))
    snap = orjson.loads(raw)
    assert kind == "ok"
    assert snap["holds"][h["id"]]["status"] == "active"
    assert snap["positions"][SKU] == ["dc", "5:2:0:0"]
    assert snap["expiry"][0] == h["id"]
    assert snap["hx"][SKU][0].endswith(f"|{h['id']}|dc|2")
    assert snap["events"][f"{SKU}|dc"][1:3] == ["type", "hold.reserved"]  # after its id


async def test_snapshot_replies_stale_naming_holds_and_skus_the_caller_did_not_pass(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    kind, raw = await Scripts.register(redis).run(snapshot([], []))
    assert kind == "stale"
    assert orjson.loads(raw) == {"holds": [h["id"]], "skus": [SKU]}


async def test_repair_replies_ok_with_every_change_it_made(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    await redis.hset(keys.position(P, SKU), "dc", "5:4:0:0")
    kind, raw = await Scripts.register(redis).run(repair([h["id"]], [SKU]))
    assert kind == "ok"
    assert orjson.loads(raw) == [
        {"kind": "counters", "sku": SKU, "location": "dc", "before": "5:4:0:0", "after": "5:2:0:0"}
    ]


async def test_repair_replies_ok_with_no_changes_as_an_empty_table(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    kind, raw = await Scripts.register(redis).run(repair([], [SKU]))
    assert (kind, orjson.loads(raw)) == ("ok", {})


async def test_repair_replies_stale_and_changes_nothing_when_its_view_is_incomplete(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    h = await hold(client, [{"sku": SKU, "quantity": 2}])
    await redis.hset(keys.position(P, SKU), "dc", "5:4:0:0")
    # the hold appeared after the caller looked
    kind, raw = await Scripts.register(redis).run(repair([], [SKU]))
    assert kind == "stale"
    assert orjson.loads(raw) == {"holds": [h["id"]], "skus": {}}
    assert await redis.hget(keys.position(P, SKU), "dc") == "5:4:0:0"
