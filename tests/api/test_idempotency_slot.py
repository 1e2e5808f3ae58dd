"""A keyed request's idempotency record lives and dies with the change it guards (contract,
"Scale-out on Redis Cluster (v1.1)"): same slot, claimed by the same script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from app import keys
from app.domain.hold_ids import home_partition
from app.store.mux import Multiplexer
from tests.api.helpers import act, hold, position
from tests.conftest import script_calls, seed

HOLD_BODY = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 2}]}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def records(redis: Redis) -> list[str]:
    return [k async for k in redis.scan_iter(match="os:*idem*")]


def slot(name: str) -> int:
    return key_slot(name.encode())


async def test_a_keyed_hold_creates_record_lives_in_the_slot_of_the_hold(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    created = (await client.post("/v1/holds", json=HOLD_BODY, headers=key("c-1"))).json()
    home = home_partition(created["id"])
    assert home == keys.partition_of("sku-1")
    (record,) = await records(redis)
    assert slot(record) == slot(keys.hold(home, created["id"]))


async def test_a_multi_partition_holds_record_lives_in_its_home_partition(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    assert keys.partition_of("sku-1") != keys.partition_of("sku-2")
    await seed(client, {("sku-1", "dc"): 5, ("sku-2", "dc"): 5})
    lines = [{"sku": "sku-2", "quantity": 1}, {"sku": "sku-1", "quantity": 1}]
    r = await client.post("/v1/holds", json={"channel": "web", "lines": lines}, headers=key("m"))
    assert r.status_code == 201, r.text
    (record,) = await records(redis)
    assert slot(record) == slot(keys.hold(keys.partition_of("sku-2"), r.json()["id"]))


async def test_a_keyed_transitions_record_lives_in_the_slot_of_the_hold(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    assert (await act(client, h["id"], "commit", headers=key("t-1"))).status_code == 200
    (record,) = await records(redis)
    assert slot(record) == slot(keys.hold(keys.partition_of("sku-1"), h["id"]))


async def test_a_keyed_stock_puts_record_lives_in_the_slot_of_the_position(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client)
    r = await client.put("/v1/stock/sku-2/dc", json={"on_hand": 4}, headers=key("s-1"))
    assert r.status_code == 200
    (record,) = await records(redis)
    assert slot(record) == slot(keys.position(keys.partition_of("sku-2"), "sku-2"))


async def test_a_keyed_location_puts_record_lives_in_the_configuration_slot(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    r = await client.put("/v1/locations/dc-9", json={}, headers=key("l-1"))
    assert r.status_code == 200
    (record,) = await records(redis)
    assert slot(record) == slot(keys.LOCATIONS)


async def test_a_keyed_hold_create_takes_one_store_round_trip(
    client: httpx.AsyncClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(client, {("sku-1", "dc"): 50})
    await client.post("/v1/holds", json=HOLD_BODY, headers=key("warm-up"))  # reads the id secret
    sent: list[str] = []
    mux_execute, pool_execute = Multiplexer.execute, Redis.execute_command

    async def via_mux(self: Multiplexer, *args: Any) -> Any:
        sent.append(str(args[0]))
        return await mux_execute(self, *args)

    async def via_pool(self: Redis, *args: Any, **kw: Any) -> Any:
        if args[:2] != ("GET", keys.CONFIG_VERSION):  # the config refresh loop, on its own
            sent.append(str(args[0]))
        return await pool_execute(self, *args, **kw)

    monkeypatch.setattr(Multiplexer, "execute", via_mux)
    monkeypatch.setattr(Redis, "execute_command", via_pool)
    before = await script_calls(redis)
    r = await client.post("/v1/holds", json=HOLD_BODY, headers=key("counted"))
    after = await script_calls(redis)
    assert r.status_code == 201
    # hold_reserve.lua: claim, change and stored response in one call (was 2: the response
    # stored by idempotency_complete.lua; 3 before that: the claim first)
    assert after - before == 1
    assert [c for c in sent if c != "INFO"] == ["FCALL"]  # INFO: ours


@pytest.fixture
async def raw(store_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(store_url)  # bytes: DUMP payloads are not text
    yield client
    await client.aclose()


async def _slot_dump(raw: Redis, p: int) -> dict[bytes, Any]:
    return {name: await raw.dump(name) async for name in raw.scan_iter(match=f"{keys.tag(p)}:*")}


async def _lose_the_slot_since(raw: Redis, p: int, saved: dict[bytes, bytes]) -> None:
    """A failover to a replica that had partition p's slot exactly as `saved` (a replica
    lagging by the writes since): every key of the slot goes back to what it was, and the
    keys written since are gone. Keys of other slots are untouched."""
    async for name in raw.scan_iter(match=f"{keys.tag(p)}:*"):
        await raw.delete(name)
    for name, dumped in saved.items():
        await raw.restore(name, 0, dumped)


async def test_a_failover_that_loses_the_hold_loses_its_replayable_201(
    client: httpx.AsyncClient, raw: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    p = keys.partition_of("sku-1")
    saved = await _slot_dump(raw, p)
    first = await client.post("/v1/holds", json=HOLD_BODY, headers=key("fo-1"))
    assert first.status_code == 201
    await _lose_the_slot_since(raw, p, saved)
    assert (await client.get(f"/v1/holds/{first.json()['id']}")).status_code == 404

    retry = await client.post("/v1/holds", json=HOLD_BODY, headers=key("fo-1"))
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers  # applied again, not a replay
    assert retry.json()["id"] == first.json()["id"]
    assert (await client.get(f"/v1/holds/{retry.json()['id']}")).status_code == 200
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_a_failover_that_loses_a_stock_put_loses_its_replayable_200(
    client: httpx.AsyncClient, raw: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    p = keys.partition_of("sku-1")
    saved = await _slot_dump(raw, p)
    first = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 9}, headers=key("fo-2"))
    assert first.status_code == 200
    await _lose_the_slot_since(raw, p, saved)
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 5

    retry = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 9}, headers=key("fo-2"))
    assert "idempotent-replayed" not in retry.headers
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 9
