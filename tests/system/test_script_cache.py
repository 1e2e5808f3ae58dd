"""A store without the service's functions (a new or restarted server, FUNCTION FLUSH) or
scripts (SCRIPT FLUSH) never reaches a client."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from tests.conftest import seed


async def flush(redis: Redis) -> None:
    await redis.function_flush()
    await redis.script_flush()


async def test_every_endpoint_works_after_the_functions_are_flushed(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 10, ("sku-2", "dc"): 10})
    await flush(redis)
    hold = await client.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 2}]})
    assert hold.status_code == 201, hold.text
    await flush(redis)
    query = await client.post("/v1/availability/query", json={"skus": ["sku-1", "sku-2"]})
    assert query.status_code == 200, query.text
    assert [r["available"] for r in query.json()["results"]] == [8, 10]
    await flush(redis)
    commit = await client.post(f"/v1/holds/{hold.json()['id']}/commit")
    assert commit.status_code == 200, commit.text
    await flush(redis)
    put = await client.put(
        "/v1/stock/sku-2/dc", json={"on_hand": 4}, headers={"Idempotency-Key": "k1"}
    )
    assert put.status_code == 200, put.text
    await flush(redis)
    events = await client.post(
        "/v1/stock/events",
        json={
            "events": [
                {"id": "e1", "type": "sale", "sku": "sku-2", "location": "dc", "quantity": 1}
            ]
        },
    )
    assert events.json()["results"][0]["status"] == "applied"
    await flush(redis)
    ready = await client.get("/readyz")
    assert ready.status_code == 200
