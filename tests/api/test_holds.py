"""Holds: create, read, commit, fulfil, release, extend, and every invalid transition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.domain.clock import ManualClock, store_now_ms
from tests.api.helpers import (
    act,
    assert_problem,
    available,
    hold,
    parse_ts,
    position,
    snapshot,
)
from tests.conftest import seed

HOLD_FIELDS = {"id", "status", "channel", "reference", "created_at", "expires_at", "lines"}


async def test_create_hold_is_201_with_id_status_expires_at_and_lines(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "reference": "cart-42", "lines": [{"sku": "sku-1", "quantity": 2}]},
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) >= HOLD_FIELDS
    assert isinstance(body["id"], str) and body["id"]
    assert body["status"] == "active"
    assert body["channel"] == "web"
    assert body["reference"] == "cart-42"
    assert parse_ts(body["expires_at"]) > parse_ts(body["created_at"])
    assert body["lines"] == [{"sku": "sku-1", "location": "dc", "quantity": 2}]


async def test_create_hold_moves_units_from_available_to_held(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    await hold(client, [{"sku": "sku-1", "quantity": 2}])
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (5, 2, 0, 3)
    assert await available(client, "sku-1") == 3


async def test_hold_ids_are_unique(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    a = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    b = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    assert a["id"] != b["id"]


async def test_hold_of_every_available_unit_succeeds(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    await hold(client, [{"sku": "sku-1", "quantity": 5}])
    assert await available(client, "sku-1") == 0


async def test_hold_without_channel_is_sourced_from_any_location(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "store-b"): 5}, channels={"web": ["dc"]})
    r = await client.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 2}]})
    assert r.status_code == 201, r.text
    assert r.json()["channel"] is None
    assert r.json()["lines"] == [{"sku": "sku-1", "location": "store-b", "quantity": 2}]


async def test_get_hold_returns_the_hold_as_created(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    created = await hold(client, [{"sku": "sku-1", "quantity": 2}], reference="r-1")
    r = await client.get(f"/v1/holds/{created['id']}")
    assert r.status_code == 200
    assert r.json() == created


async def test_hold_default_ttl_is_15_minutes(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    assert parse_ts(h["expires_at"]) - parse_ts(h["created_at"]) == timedelta(minutes=15)


async def test_hold_ttl_seconds_sets_expires_at(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}], ttl_seconds=90)
    assert parse_ts(h["expires_at"]) - parse_ts(h["created_at"]) == timedelta(seconds=90)


async def test_hold_created_at_is_the_stores_clock(
    client: httpx.AsyncClient, clock: ManualClock, redis: Redis
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    clock.advance(3600)  # the test offset moves the store's clock, as every script sees it
    before = await store_now_ms(redis, clock)
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    after = await store_now_ms(redis, clock)
    assert before <= int(parse_ts(h["created_at"]).timestamp() * 1000) <= after


@pytest.mark.parametrize("ttl", [1, 7 * 86400])
async def test_hold_ttl_at_the_bounds_is_accepted(client: httpx.AsyncClient, ttl: int) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}], ttl_seconds=ttl)
    assert parse_ts(h["expires_at"]) - parse_ts(h["created_at"]) == timedelta(seconds=ttl)


@pytest.mark.parametrize("ttl", [0, -1, 7 * 86400 + 1])
async def test_hold_ttl_outside_1s_to_7_days_is_422_and_reserves_nothing(
    client: httpx.AsyncClient, ttl: int
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "ttl_seconds": ttl, "lines": [{"sku": "sku-1", "quantity": 1}]},
    )
    assert_problem(r, 422, "invalid_request")
    assert await available(client, "sku-1") == 5


async def test_hold_over_available_units_is_409_insufficient_stock_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 3, ("sku-1", "store-a"): 2})
    before = await snapshot(client, ["sku-1"])
    r = await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 6}]}
    )
    body = assert_problem(r, 409, "insufficient_stock")
    (line,) = body["lines"]
    assert line["sku"] == "sku-1"
    assert line["requested"] == 6
    assert isinstance(line["available"], int) and line["available"] < 6
    assert await snapshot(client, ["sku-1"]) == before


async def test_hold_of_a_sku_never_stocked_is_409_with_zero_available(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    r = await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "ghost", "quantity": 1}]}
    )
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"] == [{"sku": "ghost", "requested": 1, "available": 0}]


async def test_hold_respects_safety_stock(client: httpx.AsyncClient) -> None:
    await seed(client, channels={"web": ["dc"]})
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 5, "safety_stock": 2})
    r = await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 4}]}
    )
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"][0]["available"] == 3


async def test_hold_with_unknown_channel_is_404_channel_not_found(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    r = await client.post(
        "/v1/holds", json={"channel": "nope", "lines": [{"sku": "sku-1", "quantity": 1}]}
    )
    assert_problem(r, 404, "channel_not_found")
    assert await available(client, "sku-1") == 5


async def test_hold_pinned_to_unknown_location_is_404_location_not_found(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1, "location": "nope"}]},
    )
    assert_problem(r, 404, "location_not_found")
    assert await available(client, "sku-1") == 5


# -- transitions ---------------------------------------------------------------------------


async def test_commit_moves_units_from_held_to_committed(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    r = await act(client, h["id"], "commit")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "committed"
    assert r.json()["id"] == h["id"]
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (5, 0, 2, 3)
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "committed"


async def test_committed_hold_no_longer_expires(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    await act(client, h["id"], "commit")
    clock.advance(3600)
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "committed"
    assert await available(client, "sku-1") == 3


async def test_fulfil_lowers_on_hand_and_clears_committed(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    await act(client, h["id"], "commit")
    r = await act(client, h["id"], "fulfil")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "fulfilled"
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (3, 0, 0, 3)
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "fulfilled"


async def test_release_of_an_active_hold_returns_its_units(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    r = await act(client, h["id"], "release")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released"
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (5, 0, 0, 5)


async def test_release_of_a_committed_hold_returns_its_units(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    await act(client, h["id"], "commit")
    r = await act(client, h["id"], "release")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released"
    p = await position(client, "sku-1", "dc")
    assert (p["on_hand"], p["held"], p["committed"], p["available"]) == (5, 0, 0, 5)


async def test_released_units_can_be_held_again(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 2})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    await act(client, h["id"], "release")
    await hold(client, [{"sku": "sku-1", "quantity": 2}])


async def test_extend_moves_expires_at_to_now_plus_ttl(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}], ttl_seconds=60)
    clock.advance(30)
    r = await act(client, h["id"], "extend", json={"ttl_seconds": 600})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    new_expiry = parse_ts(r.json()["expires_at"])
    # now (the store's clock, 30 s on) + 600 s; real time moved on a little meanwhile
    since = new_expiry - parse_ts(h["created_at"])
    assert timedelta(seconds=630) <= since < timedelta(seconds=632)
    assert parse_ts((await client.get(f"/v1/holds/{h['id']}")).json()["expires_at"]) == new_expiry


async def test_extended_hold_still_counts_after_its_original_expiry(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    await act(client, h["id"], "extend", json={"ttl_seconds": 600})
    clock.advance(120)
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "active"
    assert await available(client, "sku-1") == 3
    assert (await act(client, h["id"], "commit")).status_code == 200


@pytest.mark.parametrize("ttl", [0, 7 * 86400 + 1])
async def test_extend_with_ttl_outside_bounds_is_422(client: httpx.AsyncClient, ttl: int) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    r = await act(client, h["id"], "extend", json={"ttl_seconds": ttl})
    assert_problem(r, 422, "invalid_request")
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["expires_at"] == h["expires_at"]


async def test_extend_without_body_is_422(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    assert_problem(await client.post(f"/v1/holds/{h['id']}/extend"), 422, "invalid_request")


async def _hold_in(client: httpx.AsyncClient, state: str) -> dict[str, Any]:
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    path = {
        "active": [],
        "committed": ["commit"],
        "fulfilled": ["commit", "fulfil"],
        "released": ["release"],
    }[state]
    for step in path:
        assert (await act(client, h["id"], step)).status_code == 200
    return h


INVALID_TRANSITIONS = [
    ("active", "fulfil"),
    ("committed", "commit"),
    ("committed", "extend"),
    ("fulfilled", "commit"),
    ("fulfilled", "fulfil"),
    ("fulfilled", "release"),
    ("fulfilled", "extend"),
    ("released", "commit"),
    ("released", "fulfil"),
    ("released", "release"),
    ("released", "extend"),
]


@pytest.mark.parametrize(("state", "action"), INVALID_TRANSITIONS)
async def test_invalid_transition_is_409_invalid_transition_and_changes_nothing(
    client: httpx.AsyncClient, state: str, action: str
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await _hold_in(client, state)
    before = await snapshot(client, ["sku-1"])
    hold_before = (await client.get(f"/v1/holds/{h['id']}")).json()
    r = await act(client, h["id"], action)
    assert_problem(r, 409, "invalid_transition")
    assert await snapshot(client, ["sku-1"]) == before
    assert (await client.get(f"/v1/holds/{h['id']}")).json() == hold_before
    assert hold_before["status"] == state


@pytest.mark.parametrize("action", ["commit", "fulfil", "release", "extend"])
async def test_unknown_hold_id_is_404_hold_not_found(
    client: httpx.AsyncClient, action: str
) -> None:
    # Shaped like a real id (the service's own format) but never created.
    assert_problem(await act(client, "haaaaaaaaaaaaaaaaaaaa-00", action), 404, "hold_not_found")


@pytest.mark.parametrize(
    "hold_id", ["haaaaaaaaaaaaaaaaaaaa-00", "nope", "h-zz", "12345", "x" * 128, "hold:1.2_3"]
)
async def test_get_of_unknown_or_garbage_hold_id_is_404_hold_not_found(
    client: httpx.AsyncClient, hold_id: str
) -> None:
    assert_problem(await client.get(f"/v1/holds/{hold_id}"), 404, "hold_not_found")


@pytest.mark.parametrize("action", ["commit", "fulfil", "release", "extend"])
async def test_transition_of_garbage_hold_id_is_404_hold_not_found(
    client: httpx.AsyncClient, action: str
) -> None:
    assert_problem(await act(client, "garbage", action), 404, "hold_not_found")


async def test_real_hold_id_with_another_partition_suffix_is_404_hold_not_found(
    client: httpx.AsyncClient,
) -> None:
    """A real id with its partition suffix changed is a different, unknown hold."""
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    prefix, suffix = h["id"].rsplit("-", 1)
    other = f"{prefix}-{(int(suffix, 16) + 1) % 256:02x}"
    assert_problem(await client.get(f"/v1/holds/{other}"), 404, "hold_not_found")
    assert_problem(await act(client, other, "release"), 404, "hold_not_found")
    assert await available(client, "sku-1") == 4
