"""Races: kit holds and component holds on the same units, against two worker processes,
never oversell (the kit's components live in two partitions: the two-phase path)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from tests.api.helpers import skus_in_distinct_partitions
from tests.conftest import direct_client, seed
from tests.domain.test_races import open_hold_units, stored_counters

pytestmark = pytest.mark.slow


async def test_concurrent_kit_and_component_holds_on_two_workers_never_oversell(
    store_url: str, start_service: Any
) -> None:
    frame, wheel = skus_in_distinct_partitions(2, "race")
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_WORKERS="2")
    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=30) as client:
        await seed(client, {(frame, "dc"): 20, (wheel, "dc"): 40})
        body = {"components": [{"sku": frame, "quantity": 1}, {"sku": wheel, "quantity": 2}]}
        assert (await client.put("/v1/kits/bike", json=body)).status_code == 200
        # Both workers' configuration caches see the kit (within the refresh interval).
        for _ in range(100):
            seen = await asyncio.gather(
                *(client.get("/v1/availability/bike", params={"channel": "web"}) for _ in range(8))
            )
            if all(r.json()["available"] == 20 for r in seen):
                break
            await asyncio.sleep(0.1)
        requests = [("bike", 1)] * 40 + [(wheel, 1)] * 40 + [(frame, 1)] * 20
        random.Random(14).shuffle(requests)
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/holds",
                    json={"channel": "web", "lines": [{"sku": sku, "quantity": q}]},
                )
                for sku, q in requests
            )
        )
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    granted = [sku for (sku, _), r in zip(requests, responses, strict=True) if r.status_code == 201]
    kits = granted.count("bike")
    frames, wheels = kits + granted.count(frame), 2 * kits + granted.count(wheel)
    assert frames <= 20 and wheels <= 40
    assert kits > 0  # the race really included kit holds that won
    redis = direct_client(store_url, decode_responses=True)
    try:
        units = await open_hold_units(redis)
        for sku, want in ((frame, frames), (wheel, wheels)):
            assert units[(sku, "dc")]["held"] == want
            assert (await stored_counters(redis, sku))["dc"]["held"] == want
    finally:
        await redis.aclose()
