"""Races of backorder holds on one supply line: never promise a unit twice."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import httpx
import pytest

from app import keys
from tests.conftest import direct_client, seed
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


async def test_mixed_backorder_holds_against_two_workers_match_the_stored_promises(
    store_url: str, start_service: Any
) -> None:
    """150 holds of 1-3 units through 2 workers, half of them needing the goods before the
    later line's eta, against 5 on hand and two supply lines: no line is promised beyond its
    quantity, no hold that must have the goods early is promised the later line, and the
    promises stored (px) are exactly the promised lines of the holds that were granted, hold
    by hold."""
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_WORKERS="2")
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=30) as client:
        await seed(client, {("mix", "dc"): 5})
        await ok_supply(client, "mix", "dc", "early", 15, days(3))
        await ok_supply(client, "mix", "store-a", "late", 30, days(20))
        needed_by = days(10)

        def body(i: int) -> dict[str, Any]:
            extra = {"needed_by": needed_by} if i % 2 else {}
            lines = [{"sku": "mix", "quantity": 1 + i % 3}]
            return {"channel": "web", "allow_backorder": True, "lines": lines, **extra}

        bodies = [body(i) for i in range(150)]
        responses = await asyncio.gather(*(client.post("/v1/holds", json=b) for b in bodies))
        assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
        granted: dict[str, dict[str, int]] = {}
        on_hand = 0
        for b, r in zip(bodies, responses, strict=True):
            if r.status_code != 201:
                assert r.json()["code"] == "insufficient_stock", r.text
                continue
            hold = r.json()
            promised = {x["supply_id"]: x["quantity"] for x in hold["lines"] if x.get("supply_id")}
            on_hand += sum(x["quantity"] for x in hold["lines"] if not x.get("supply_id"))
            assert sum(x["quantity"] for x in hold["lines"]) == b["lines"][0]["quantity"]
            if "needed_by" in b:
                assert "late" not in promised, hold
            granted[hold["id"]] = promised
        redis = direct_client(store_url, decode_responses=True)
        p = keys.partition_of("mix")
        stored: Any = await redis.hgetall(keys.promises(p, "mix"))
        await redis.aclose()
        by_hold: dict[str, dict[str, int]] = defaultdict(dict)
        for name, value in stored.items():
            hold_id, _, supply_id = name.split("|")
            by_hold[hold_id][supply_id] = int(value.split("|")[0])
        assert dict(by_hold) == {h: x for h, x in granted.items() if x}
        lines = {x["supply_id"]: x for x in await supply_lines(client, "mix")}
        for supply_id, quantity in (("early", 15), ("late", 30)):
            total = sum(x.get(supply_id, 0) for x in granted.values())
            assert lines[supply_id]["promised"] == total <= quantity, (supply_id, total)
        position = (await client.get("/v1/stock/mix")).json()["positions"][0]
        assert (position["held"], position["available"]) == (on_hand, 5 - on_hand)
        assert len(granted) > 10 and 150 - len(granted) > 10  # both outcomes raced
