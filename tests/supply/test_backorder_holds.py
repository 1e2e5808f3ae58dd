"""Holds against future supply: `allow_backorder`, `needed_by`, and what commit, release,
expiry and fulfil do with promised units (../shared/api-contract.md, "Future supply")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app import keys
from app.domain.clock import ManualClock
from tests.api.helpers import assert_problem
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply, supply_lines


@pytest.fixture(autouse=True)
async def _seeded(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 3})


def promised(hold: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [
        (x["location"], x["supply_id"], x["quantity"]) for x in hold["lines"] if x.get("supply_id")
    ]


def on_hand_lines(hold: dict[str, Any]) -> list[tuple[str, int]]:
    return [(x["location"], x["quantity"]) for x in hold["lines"] if not x.get("supply_id")]


async def test_a_backorder_hold_takes_on_hand_first_then_the_earliest_supply(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "late", 10, days(20))
    early = days(5)
    await ok_supply(client, "sku-1", "dc", "early", 2, early)
    r = await backorder(client, [{"sku": "sku-1", "quantity": 8}])
    assert r.status_code == 201, r.text
    hold = r.json()
    assert on_hand_lines(hold) == [("dc", 3)]
    assert promised(hold) == [("dc", "early", 2), ("dc", "late", 3)]
    first = next(x for x in hold["lines"] if x.get("supply_id") == "early")
    assert first["available_from"][:16] == early[:16]
    lines = {x["supply_id"]: x for x in await supply_lines(client, "sku-1")}
    assert (lines["early"]["promised"], lines["early"]["incoming"]) == (2, 0)
    assert (lines["late"]["promised"], lines["late"]["incoming"]) == (3, 7)


async def test_needed_by_excludes_supply_that_arrives_later(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "late", 10, days(20))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 5}], needed_by=days(10))
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"][0]["available"] == 3
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0


async def test_needed_by_before_now_is_422(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 5}], needed_by=days(-1))
    assert_problem(r, 422, "invalid_request")
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0


async def test_needed_by_without_allow_backorder_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/holds", json={"needed_by": days(3), "lines": [{"sku": "sku-1", "quantity": 1}]}
    )
    assert_problem(r, 422, "invalid_request")


async def test_without_allow_backorder_a_hold_uses_on_hand_only(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    r = await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 5}]}
    )
    assert_problem(r, 409, "insufficient_stock")
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0


async def test_a_backorder_hold_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 2, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 6}])
    assert_problem(r, 409, "insufficient_stock")
    avail = (await client.get("/v1/availability/sku-1", params={"channel": "web"})).json()
    assert avail["available"] == 3
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0


async def test_a_pinned_backorder_line_uses_its_location_only(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "store-a", "po-a", 10, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 4, "location": "dc"}])
    assert_problem(r, 409, "insufficient_stock")
    r = await backorder(client, [{"sku": "sku-1", "quantity": 4, "location": "store-a"}])
    assert r.status_code == 201, r.text
    assert promised(r.json()) == [("store-a", "po-a", 4)]


async def test_a_channel_hold_takes_on_hand_everywhere_before_supply_anywhere(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/v1/stock/sku-1/store-b", json={"on_hand": 2})
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 7}])
    assert r.status_code == 201, r.text
    hold = r.json()
    assert sorted(on_hand_lines(hold)) == [("dc", 3), ("store-b", 2)]
    assert promised(hold) == [("dc", "po", 2)]


async def test_a_unit_is_never_promised_twice(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 4, days(2))
    first = await backorder(client, [{"sku": "sku-1", "quantity": 7}])
    assert first.status_code == 201, first.text
    second = await backorder(client, [{"sku": "sku-1", "quantity": 1}])
    body = assert_problem(second, 409, "insufficient_stock")
    assert body["lines"][0]["available"] == 0


async def test_release_returns_promised_units_to_the_supply_line(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = (await backorder(client, [{"sku": "sku-1", "quantity": 8}])).json()
    r = await client.post(f"/v1/holds/{hold['id']}/release")
    assert r.status_code == 200, r.text
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0


async def test_an_expired_backorder_hold_stops_counting_at_once(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 8}], ttl_seconds=60)
    assert r.status_code == 201, r.text
    clock.advance(61)
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0
    hold = (await client.get(f"/v1/holds/{r.json()['id']}")).json()
    assert hold["status"] == "expired"


async def test_a_committed_backorder_hold_keeps_its_promise_past_its_ttl(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = (await backorder(client, [{"sku": "sku-1", "quantity": 8}], ttl_seconds=60)).json()
    assert (await client.post(f"/v1/holds/{hold['id']}/commit")).status_code == 200
    clock.advance(120)
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 5


async def test_extend_keeps_the_promise_counting(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = (await backorder(client, [{"sku": "sku-1", "quantity": 8}], ttl_seconds=60)).json()
    r = await client.post(f"/v1/holds/{hold['id']}/extend", json={"ttl_seconds": 600})
    assert r.status_code == 200, r.text
    clock.advance(120)
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 5


async def test_fulfilling_a_hold_before_its_supply_arrived_is_409(
    client: httpx.AsyncClient,
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = (await backorder(client, [{"sku": "sku-1", "quantity": 8}])).json()
    assert (await client.post(f"/v1/holds/{hold['id']}/commit")).status_code == 200
    r = await client.post(f"/v1/holds/{hold['id']}/fulfil")
    assert_problem(r, 409, "promise_not_received")
    assert (await client.get(f"/v1/holds/{hold['id']}")).json()["status"] == "committed"


@pytest.mark.parametrize("committed", [False, True], ids=["active", "committed"])
async def test_fulfilling_a_released_hold_that_had_promises_is_409_invalid_transition(
    client: httpx.AsyncClient, committed: bool
) -> None:
    """Released is final (the contract: only active|committed -> released, committed ->
    fulfilled): its record still lists the promises it had, which does not make its fulfil
    a promise_not_received."""
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = (await backorder(client, [{"sku": "sku-1", "quantity": 8}])).json()
    if committed:
        assert (await client.post(f"/v1/holds/{hold['id']}/commit")).status_code == 200
    assert (await client.post(f"/v1/holds/{hold['id']}/release")).status_code == 200
    r = await client.post(f"/v1/holds/{hold['id']}/fulfil")
    assert_problem(r, 409, "invalid_transition")
    assert (await client.get(f"/v1/holds/{hold['id']}")).json()["status"] == "released"


async def test_fulfilling_a_lapsed_backorder_hold_is_409_invalid_transition(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Its TTL ran out and no reaper has been: by the store's clock it is expired, and its
    fulfil answers what any lapsed hold's does (tests/api/test_expiry.py), not
    promise_not_received for promises it no longer has."""
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    hold = (await backorder(client, [{"sku": "sku-1", "quantity": 8}], ttl_seconds=60)).json()
    clock.advance(61)
    r = await client.post(f"/v1/holds/{hold['id']}/fulfil")
    assert_problem(r, 409, "invalid_transition")
    assert (await client.get(f"/v1/holds/{hold['id']}")).json()["status"] == "expired"


async def test_a_keyed_backorder_create_replays_the_same_hold(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    headers = {"Idempotency-Key": "bo-1"}
    body = {"channel": "web", "allow_backorder": True, "lines": [{"sku": "sku-1", "quantity": 8}]}
    first = await client.post("/v1/holds", json=body, headers=headers)
    again = await client.post("/v1/holds", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 5


async def test_the_reaper_removes_an_expired_holds_promises(
    client: httpx.AsyncClient, clock: ManualClock, app: FastAPI, redis: Redis
) -> None:
    await ok_supply(client, "sku-1", "dc", "po", 10, days(2))
    r = await backorder(client, [{"sku": "sku-1", "quantity": 8}], ttl_seconds=60)
    assert r.status_code == 201, r.text
    p = keys.partition_of("sku-1")
    assert await redis.hlen(keys.promises(p, "sku-1")) == 1
    clock.advance(61)
    assert await app.state.services.reaper.run_once() == 1
    assert await redis.hlen(keys.promises(p, "sku-1")) == 0
    (pos,) = (await client.get("/v1/stock/sku-1")).json()["positions"]
    assert (pos["held"], pos["available"]) == (0, 3)
