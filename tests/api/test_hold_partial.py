"""Partial release and fulfil: POST /v1/holds/{id}/release and /fulfil with
{"lines": [{"sku", "location", "quantity"}]} change those units only, all or none, one event
per changed position; the hold stays open until no unit is left."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from redis.asyncio import Redis

from app import keys
from app.domain.clock import ManualClock
from app.domain.hold_ids import home_partition
from app.store.calls import Transition
from tests.api.helpers import act, assert_problem, hold, position, skus_in_distinct_partitions
from tests.conftest import seed


def some(sku: str, quantity: int, location: str = "dc") -> dict[str, Any]:
    return {"lines": [{"sku": sku, "location": location, "quantity": quantity}]}


async def events_of(redis: Redis, sku: str, hold_id: str) -> list[str]:
    """The types of the sku partition's events caused by the hold, oldest first."""
    entries = await redis.xrange(keys.events(keys.partition_of(sku)))
    return [str(e["type"]) for _, e in entries if e.get("hold") == hold_id and e.get("sku") == sku]


async def test_partial_release_returns_those_units_and_the_hold_stays_active(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 3}])
    r = await act(client, h["id"], "release", json=some("sku-1", 2))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.json()["lines"] == [{"sku": "sku-1", "location": "dc", "quantity": 3, "released": 2}]
    p = await position(client, "sku-1", "dc")
    assert (p["held"], p["available"]) == (1, 9)
    assert await events_of(redis, "sku-1", h["id"]) == ["hold.reserved", "hold.released"]


async def test_partial_fulfil_of_a_committed_hold_ships_those_units(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 3}])
    await act(client, h["id"], "commit")
    r = await act(client, h["id"], "fulfil", json=some("sku-1", 1))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "committed"
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["committed"], p["available"]) == (9, 2, 7)


async def test_the_last_open_unit_closes_the_hold_with_its_operation(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 3}])
    await act(client, h["id"], "commit")
    await act(client, h["id"], "release", json=some("sku-1", 1))
    r = await act(client, h["id"], "fulfil", json=some("sku-1", 2))
    assert r.json()["status"] == "fulfilled"
    line = {"sku": "sku-1", "location": "dc", "quantity": 3, "released": 1, "fulfilled": 2}
    assert r.json()["lines"] == [line]
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (8, 0, 0, 8)


async def test_more_units_than_open_is_409_and_nothing_changes(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10, ("sku-2", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    body = {"lines": [{"sku": "sku-1", "location": "dc", "quantity": 3}]}
    problem = assert_problem(
        await act(client, h["id"], "release", json=body), 409, "line_quantity_exceeded"
    )
    assert problem["open"] == 2
    assert (await client.get(f"/v1/holds/{h['id']}")).json() == h
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_a_line_the_hold_does_not_have_is_422_and_nothing_changes(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10, ("sku-1", "store-a"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    for body in (some("sku-1", 1, "store-a"), some("sku-9", 1)):
        r = await act(client, h["id"], "release", json=body)
        assert_problem(r, 422, "unknown_hold_line")
    both = {"lines": [some("sku-1", 1)["lines"][0], some("sku-1", 1, "store-a")["lines"][0]]}
    assert_problem(await act(client, h["id"], "release", json=both), 422, "unknown_hold_line")
    assert (await client.get(f"/v1/holds/{h['id']}")).json() == h


async def test_malformed_line_bodies_are_422(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    twice = {"lines": some("sku-1", 1)["lines"] * 2}
    bodies: list[dict[str, Any]] = [
        {"lines": []},
        some("sku-1", 0),
        twice,
        {"lines": [{"sku": "sku-1"}]},
    ]
    for body in bodies:
        assert_problem(await act(client, h["id"], "release", json=body), 422, "invalid_request")


async def test_partial_fulfil_of_an_active_hold_is_an_invalid_transition(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    assert_problem(
        await act(client, h["id"], "fulfil", json=some("sku-1", 1)), 409, "invalid_transition"
    )
    clock.advance(61)
    r = await act(client, h["id"], "release", json=some("sku-1", 1))
    assert assert_problem(r, 409, "invalid_transition")["hold_status"] == "expired"


async def test_a_keyed_partial_release_happens_once(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, [{"sku": "sku-1", "quantity": 3}])
    headers = {"Idempotency-Key": "part-1"}
    first = await act(client, h["id"], "release", json=some("sku-1", 1), headers=headers)
    again = await act(client, h["id"], "release", json=some("sku-1", 1), headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_a_multi_partition_hold_changes_per_part_and_closes_when_all_are_done(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    x, y = skus_in_distinct_partitions(2)
    await seed(client, {(x, "dc"): 10, (y, "dc"): 10})
    h = await hold(client, [{"sku": x, "quantity": 2}, {"sku": y, "quantity": 1}])
    r = await act(client, h["id"], "release", json=some(y, 1))
    assert r.json()["status"] == "active"
    assert (await position(client, y, "dc"))["held"] == 0
    assert_problem(
        await act(client, h["id"], "release", json=some(y, 1)), 409, "line_quantity_exceeded"
    )
    r = await act(client, h["id"], "release", json=some(x, 2))
    assert r.json()["status"] == "released"
    assert [line.get("released") for line in r.json()["lines"]] == [2, 1]
    assert (await position(client, x, "dc"))["held"] == 0
    assert await events_of(redis, y, h["id"]) == ["hold.reserved", "hold.released"]


async def test_a_request_over_several_parts_changes_none_if_one_line_is_short(
    client: httpx.AsyncClient,
) -> None:
    x, y = skus_in_distinct_partitions(2)
    await seed(client, {(x, "dc"): 10, (y, "dc"): 10})
    h = await hold(client, [{"sku": x, "quantity": 2}, {"sku": y, "quantity": 1}])
    body = {"lines": [some(x, 1)["lines"][0], some(y, 2)["lines"][0]]}
    assert_problem(await act(client, h["id"], "release", json=body), 409, "line_quantity_exceeded")
    assert (await client.get(f"/v1/holds/{h['id']}")).json() == h


async def test_a_keyed_retry_finishes_a_multi_partition_change_its_first_attempt_left_half_done(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    x, y = skus_in_distinct_partitions(2)
    await seed(client, {(x, "dc"): 10, (y, "dc"): 10})
    h = await hold(client, [{"sku": x, "quantity": 2}, {"sku": y, "quantity": 2}])
    body = {"lines": [some(x, 2)["lines"][0], some(y, 2)["lines"][0]]}
    key = "half-done"
    # The first attempt changed the home part, then its service stopped.
    home = home_partition(h["id"])
    assert home is not None
    digest = hashlib.sha256(f"\0{key}".encode()).hexdigest()  # the anonymous caller's
    home_lines = [line for line in body["lines"] if keys.partition_of(line["sku"]) == home]
    holds = app.state.services.holds
    reply = await holds.transition_part(
        h["id"], home, Transition.LINES, digest, lines_op=("release", orjson.dumps(home_lines))
    )
    assert reply[0] == "ok"
    r = await act(client, h["id"], "release", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released"  # every unit went: the hold is closed
    assert [line.get("released") for line in r.json()["lines"]] == [2, 2]
    assert [(await position(client, s, "dc"))["held"] for s in (x, y)] == [0, 0]
