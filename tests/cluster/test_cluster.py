"""The same service on the session's Valkey cluster (3 primaries + replicas, AOF; the central
`client` fixture runs on it in this package): every script stays in one slot."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from app.domain.clock import ManualClock
from tests.cluster.conftest import skus_on_different_nodes
from tests.cluster.support import serving
from tests.conftest import seed

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


async def test_a_cart_spanning_three_cluster_nodes_is_reserved_all_or_nothing(
    client: httpx.AsyncClient,
) -> None:
    skus = skus_on_different_nodes()
    await seed(client, {(s, "dc"): 2 for s in skus})
    lines = [{"sku": s, "quantity": 2} for s in skus]
    ok = await client.post("/v1/holds", json={"channel": "web", "lines": lines})
    assert ok.status_code == 201, ok.text
    assert len(ok.json()["lines"]) == 3
    again = await client.post("/v1/holds", json={"channel": "web", "lines": lines[:2]})
    assert again.status_code == 409
    query = await client.post("/v1/availability/query", json={"skus": skus, "channel": "web"})
    assert [r["available"] for r in query.json()["results"]] == [0, 0, 0]


async def test_transitions_events_and_expiry_work_on_a_cluster(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    skus = skus_on_different_nodes()
    await seed(client, {(s, "dc"): 5 for s in skus})
    lines = [{"sku": s, "quantity": 1} for s in skus]
    committed = (await client.post("/v1/holds", json={"lines": lines})).json()
    r = await client.post(f"/v1/holds/{committed['id']}/commit", headers={"Idempotency-Key": "c1"})
    assert r.status_code == 200 and r.json()["status"] == "committed"
    lapsing = (await client.post("/v1/holds", json={"ttl_seconds": 1, "lines": lines})).json()
    clock.advance(2)
    assert await app.state.services.reaper.run_once() == 3  # one part per node
    assert (await client.get(f"/v1/holds/{lapsing['id']}")).json()["status"] == "expired"
    sale = {"id": "pos-1", "type": "sale", "sku": skus[0], "location": "dc", "quantity": 5}
    result = (await client.post("/v1/stock/events", json={"events": [sale]})).json()
    assert result["results"][0]["position"]["on_hand"] == 0
    positions = (await client.get(f"/v1/stock/{skus[1]}")).json()["positions"]
    assert positions[0]["committed"] == 1 and positions[0]["held"] == 0


async def test_a_burst_beyond_the_connection_limit_queues_instead_of_answering_503(
    store_url: str,
) -> None:
    # redis-py's cluster pool fails a call at once past max_connections; one server's pool
    # makes it wait. 40 concurrent holds on one sku (one node) through 4 connections. The
    # request deadline is long enough for the queue on a loaded machine: what is asserted is
    # that waiting for a connection is not an error, not how fast the queue drains.
    async with serving(store_url, redis_max_connections=4, request_deadline_seconds=20) as client:
        await seed(client, {("burst", "dc"): 10})
        body = {"channel": "web", "lines": [{"sku": "burst", "quantity": 1}]}
        replies = await asyncio.gather(*(client.post("/v1/holds", json=body) for _ in range(40)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [201] * 10 + [409] * 30
