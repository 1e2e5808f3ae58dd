"""Races of backorder holds on one supply line: never promise a unit twice."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import seed
from tests.supply.helpers import days, ok_supply, supply_lines

pytestmark = pytest.mark.slow


async def test_200_backorder_holds_against_two_workers_promise_exactly_the_supply(
    store_url: str, start_service: Any
) -> None:
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_WORKERS="2")
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=30) as client:
        await seed(client, {("pre", "dc"): 10})
        await ok_supply(client, "pre", "dc", "po", 40, days(7))
        body = {"channel": "web", "allow_backorder": True, "lines": [{"sku": "pre", "quantity": 1}]}
        responses = await asyncio.gather(*(client.post("/v1/holds", json=body) for _ in range(200)))
        statuses = [r.status_code for r in responses]
        assert statuses.count(201) == 50, statuses
        assert statuses.count(409) == 150
        made = [r.json() for r in responses if r.status_code == 201]
        promised = sum(1 for h in made for x in h["lines"] if x.get("supply_id"))
        assert promised == 40
        (line,) = await supply_lines(client, "pre")
        assert (line["promised"], line["incoming"]) == (40, 0)
        position = (await client.get("/v1/stock/pre")).json()["positions"][0]
        assert (position["held"], position["available"]) == (10, 0)
