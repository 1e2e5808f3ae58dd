"""Holds past their expires_at stop counting at once; the reaper tidies up after them."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.domain.clock import ManualClock
from tests.api.helpers import (
    act,
    assert_problem,
    available,
    hold,
    position,
    skus_in_distinct_partitions,
    skus_in_one_partition,
)
from tests.conftest import seed


async def test_hold_still_counts_until_just_before_it_expires(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(59.5)  # the store's clock moves on meanwhile: leave it room
    assert await available(client, "sku-1") == 3


async def test_expired_hold_no_longer_counts_before_any_reaper_pass(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(60)
    assert await available(client, "sku-1") == 5
    p = await position(client, "sku-1", "dc")
    assert (p["held"], p["available"]) == (0, 5)


async def test_expired_units_can_be_held_again_before_any_reaper_pass(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    await hold(client, [{"sku": "sku-1", "quantity": 5}], ttl_seconds=60)
    clock.advance(61)
    await hold(client, [{"sku": "sku-1", "quantity": 5}])
    assert await available(client, "sku-1") == 0
    assert (await position(client, "sku-1", "dc"))["held"] == 5


async def test_expired_hold_is_not_counted_by_the_batch_query(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    skus = skus_in_distinct_partitions(3, "exp")
    await seed(client, {(s, "dc"): 4 for s in skus})
    await hold(client, [{"sku": s, "quantity": 1} for s in skus], ttl_seconds=30)
    clock.advance(31)
    r = await client.post("/v1/availability/query", json={"skus": skus, "channel": "web"})
    assert [x["available"] for x in r.json()["results"]] == [4, 4, 4]


async def test_get_of_an_expired_hold_shows_status_expired(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(61)
    r = await client.get(f"/v1/holds/{h['id']}")
    assert r.status_code == 200
    assert r.json()["status"] == "expired"
    assert r.json()["lines"] == h["lines"]


@pytest.mark.parametrize("action", ["commit", "fulfil", "release", "extend"])
async def test_transition_of_an_expired_hold_is_409_invalid_transition(
    client: httpx.AsyncClient, clock: ManualClock, action: str
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(61)
    assert_problem(await act(client, h["id"], action), 409, "invalid_transition")
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "expired"
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (5, 0, 0, 5)


async def test_commit_of_an_expired_hold_then_reaper_pass_returns_units_once(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(61)
    assert_problem(await act(client, h["id"], "commit"), 409, "invalid_transition")
    await app.state.services.reaper.run_once()
    p = await position(client, "sku-1", "dc")
    assert (p["held"], p["available"]) == (0, 5)
    assert await available(client, "sku-1") == 5


async def test_reaper_pass_marks_an_expired_hold_expired_and_returns_its_units(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(61)
    assert await app.state.services.reaper.run_once() == 1
    got = (await client.get(f"/v1/holds/{h['id']}")).json()
    assert got["status"] == "expired"
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (5, 0, 0, 5)


async def test_reaper_counters_match_the_read_view_after_the_pass(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    keep = await hold(client, [{"sku": "sku-1", "quantity": 3}], ttl_seconds=600)
    clock.advance(61)
    before = await position(client, "sku-1", "dc")
    await app.state.services.reaper.run_once()
    assert await position(client, "sku-1", "dc") == before
    assert before["held"] == 3
    assert (await client.get(f"/v1/holds/{keep['id']}")).json()["status"] == "active"


async def test_reaper_run_twice_expires_once(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(61)
    assert await app.state.services.reaper.run_once() == 1
    assert await app.state.services.reaper.run_once() == 0
    p = await position(client, "sku-1", "dc")
    assert (p["held"], p["available"]) == (0, 5)


async def test_reaper_leaves_holds_that_have_not_expired(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(30)
    assert await app.state.services.reaper.run_once() == 0
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "active"
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_reaper_leaves_committed_holds(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    await act(client, h["id"], "commit")
    clock.advance(3600)
    assert await app.state.services.reaper.run_once() == 0
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "committed"
    assert (await position(client, "sku-1", "dc"))["committed"] == 2


async def test_reaper_after_a_release_finds_nothing_to_expire(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    await act(client, h["id"], "release")
    clock.advance(61)
    assert await app.state.services.reaper.run_once() == 0
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "released"
    assert (await position(client, "sku-1", "dc"))["held"] == 0


@pytest.mark.parametrize("layout", ["one_partition", "distinct_partitions"])
async def test_multi_line_hold_expires_on_every_line(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, layout: str
) -> None:
    skus = (
        skus_in_one_partition(3, "exp")
        if layout == "one_partition"
        else skus_in_distinct_partitions(3, "exp")
    )
    await seed(client, {(s, "dc"): 5 for s in skus})
    h = await hold(client, [{"sku": s, "quantity": 2} for s in skus], ttl_seconds=60)
    clock.advance(61)
    for s in skus:
        assert await available(client, s) == 5
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "expired"
    await app.state.services.reaper.run_once()
    for s in skus:
        p = await position(client, s, "dc")
        assert (p["held"], p["available"]) == (0, 5), s
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "expired"
    assert await app.state.services.reaper.run_once() == 0


async def test_extend_of_an_expired_hold_does_not_bring_it_back(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    clock.advance(61)
    r = await act(client, h["id"], "extend", json={"ttl_seconds": 600})
    assert_problem(r, 409, "invalid_transition")
    assert await available(client, "sku-1") == 5
