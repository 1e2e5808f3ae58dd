"""Multi-line holds are all-or-nothing, whether their skus share a partition (one atomic
script) or not (reserved in parts)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.domain.clock import ManualClock
from app.keys import partition_of
from tests.api.helpers import (
    LAYOUTS,
    act,
    assert_problem,
    hold,
    lines_by_sku,
    position,
    skus_laid_out,
    snapshot,
)
from tests.conftest import seed


@pytest.fixture(params=LAYOUTS)
def skus(request: pytest.FixtureRequest) -> list[str]:
    """Three skus, in one partition or each in its own: every test runs on both."""
    layout: str = request.param
    skus = skus_laid_out(layout, 3, "cart")
    distinct = len({partition_of(s) for s in skus})
    assert distinct == (1 if layout == "one_partition" else 3)
    return skus


def lines(skus: list[str], quantities: list[int], location: str | None = None) -> list[Any]:
    out: list[dict[str, Any]] = []
    for sku, q in zip(skus, quantities, strict=True):
        line: dict[str, Any] = {"sku": sku, "quantity": q}
        if location:
            line["location"] = location
        out.append(line)
    return out


async def test_multi_line_hold_reserves_every_line(
    client: httpx.AsyncClient, skus: list[str]
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus})
    h = await hold(client, lines(skus, [1, 2, 3]))
    assert lines_by_sku(h) == {skus[0]: [("dc", 1)], skus[1]: [("dc", 2)], skus[2]: [("dc", 3)]}
    for sku, q in zip(skus, [1, 2, 3], strict=True):
        p = await position(client, sku, "dc")
        assert (p["held"], p["available"]) == (q, 5 - q)


@pytest.mark.parametrize("short_index", [0, 1, 2])
@pytest.mark.parametrize("pinned", [False, True], ids=["sourced", "pinned"])
async def test_one_short_line_is_409_insufficient_stock_and_reserves_no_line(
    client: httpx.AsyncClient, skus: list[str], short_index: int, pinned: bool
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus}, channels={"web": ["dc"]})
    quantities = [2, 2, 2]
    quantities[short_index] = 6
    before = await snapshot(client, skus)
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "lines": lines(skus, quantities, "dc" if pinned else None)},
    )
    body = assert_problem(r, 409, "insufficient_stock")
    assert [(x["sku"], x["requested"], x["available"]) for x in body["lines"]] == [
        (skus[short_index], 6, 5)
    ]
    assert await snapshot(client, skus) == before


async def test_every_short_line_is_listed_with_what_is_available(
    client: httpx.AsyncClient, skus: list[str]
) -> None:
    await seed(
        client,
        {(skus[0], "dc"): 5, (skus[1], "dc"): 1, (skus[2], "dc"): 0},
        {"dc": 1},
        {"web": ["dc"]},
    )
    before = await snapshot(client, skus)
    r = await client.post(
        "/v1/holds", json={"channel": "web", "lines": lines(skus, [1, 2, 3], "dc")}
    )
    body = assert_problem(r, 409, "insufficient_stock")
    short = sorted((x["sku"], x["requested"], x["available"]) for x in body["lines"])
    assert short == sorted([(skus[1], 2, 1), (skus[2], 3, 0)])
    assert await snapshot(client, skus) == before


async def test_after_a_refused_hold_the_same_units_can_still_be_held(
    client: httpx.AsyncClient, skus: list[str]
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus}, channels={"web": ["dc"]})
    r = await client.post("/v1/holds", json={"channel": "web", "lines": lines(skus, [5, 5, 6])})
    assert_problem(r, 409, "insufficient_stock")
    await hold(client, lines(skus, [5, 5, 5]))


async def test_a_line_short_because_of_another_hold_refuses_the_whole_hold(
    client: httpx.AsyncClient, skus: list[str]
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus}, channels={"web": ["dc"]})
    await hold(client, [{"sku": skus[2], "quantity": 4}])
    before = await snapshot(client, skus)
    r = await client.post("/v1/holds", json={"channel": "web", "lines": lines(skus, [1, 1, 2])})
    body = assert_problem(r, 409, "insufficient_stock")
    assert [(x["sku"], x["available"]) for x in body["lines"]] == [(skus[2], 1)]
    assert await snapshot(client, skus) == before


async def test_two_lines_of_one_sku_are_summed_against_its_stock(
    client: httpx.AsyncClient, skus: list[str]
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus}, channels={"web": ["dc"]})
    before = await snapshot(client, skus)
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "lines": lines([skus[0], skus[1], skus[0]], [3, 1, 3])},
    )
    assert_problem(r, 409, "insufficient_stock")
    assert await snapshot(client, skus) == before


@pytest.mark.parametrize(
    ("steps", "on_hand", "held", "committed"),
    [
        (["commit"], 5, 0, 2),
        (["commit", "fulfil"], 3, 0, 0),
        (["release"], 5, 0, 0),
        (["commit", "release"], 5, 0, 0),
    ],
)
async def test_transitions_of_a_multi_line_hold_apply_to_every_line(
    client: httpx.AsyncClient,
    skus: list[str],
    steps: list[str],
    on_hand: int,
    held: int,
    committed: int,
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus})
    h = await hold(client, lines(skus, [2, 2, 2]))
    for step in steps:
        r = await act(client, h["id"], step)
        assert r.status_code == 200, r.text
        assert lines_by_sku(r.json()) == lines_by_sku(h)
    for sku in skus:
        p = await position(client, sku, "dc")
        assert (p["on_hand"], p["held"], p["committed"]) == (on_hand, held, committed), sku


async def test_get_of_a_multi_line_hold_shows_every_line(
    client: httpx.AsyncClient, skus: list[str]
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus})
    h = await hold(client, lines(skus, [1, 2, 3]))
    got = (await client.get(f"/v1/holds/{h['id']}")).json()
    assert got["status"] == "active"
    assert lines_by_sku(got) == lines_by_sku(h)


async def test_hold_of_100_lines_across_many_partitions_reserves_every_line(
    client: httpx.AsyncClient,
) -> None:
    skus = [f"big-{i}" for i in range(100)]
    assert len({partition_of(s) for s in skus}) > 50
    await seed(client, {(s, "dc"): 3 for s in skus})
    h = await hold(client, [{"sku": s, "quantity": 2} for s in skus])
    assert lines_by_sku(h) == {s: [("dc", 2)] for s in skus}
    r = await client.post("/v1/availability/query", json={"skus": skus, "channel": "web"})
    assert {x["available"] for x in r.json()["results"]} == {1}


async def test_hold_of_100_lines_with_the_last_one_short_reserves_nothing(
    client: httpx.AsyncClient,
) -> None:
    skus = [f"big-{i}" for i in range(100)]
    await seed(client, {(s, "dc"): 3 for s in skus})
    lines = [{"sku": s, "quantity": 2} for s in skus]
    lines[-1]["quantity"] = 4
    r = await client.post("/v1/holds", json={"channel": "web", "lines": lines})
    body = assert_problem(r, 409, "insufficient_stock")
    assert [(x["sku"], x["available"]) for x in body["lines"]] == [("big-99", 3)]
    r = await client.post("/v1/availability/query", json={"skus": skus, "channel": "web"})
    assert {x["available"] for x in r.json()["results"]} == {3}
    for s in skus[:5]:
        assert (await position(client, s, "dc"))["held"] == 0


async def test_extend_of_a_multi_line_hold_keeps_every_line_counting(
    client: httpx.AsyncClient, clock: ManualClock, skus: list[str]
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus})
    h = await hold(client, lines(skus, [1, 2, 3]), ttl_seconds=60)
    r = await act(client, h["id"], "extend", json={"ttl_seconds": 600})
    assert r.status_code == 200, r.text
    clock.advance(120)
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "active"
    for sku, q in zip(skus, [1, 2, 3], strict=True):
        assert (await position(client, sku, "dc"))["held"] == q, sku
    assert (await act(client, h["id"], "commit")).status_code == 200
    for sku, q in zip(skus, [1, 2, 3], strict=True):
        assert (await position(client, sku, "dc"))["committed"] == q, sku


async def test_multi_line_hold_retried_with_its_idempotency_key_reserves_once(
    client: httpx.AsyncClient, skus: list[str]
) -> None:
    await seed(client, {(s, "dc"): 5 for s in skus})
    body = {"channel": "web", "lines": lines(skus, [1, 2, 3])}
    first = await client.post("/v1/holds", json=body, headers={"Idempotency-Key": "cart-1"})
    assert first.status_code == 201, first.text
    retry = await client.post("/v1/holds", json=body, headers={"Idempotency-Key": "cart-1"})
    assert (retry.status_code, retry.json()) == (201, first.json())
    for sku, q in zip(skus, [1, 2, 3], strict=True):
        assert (await position(client, sku, "dc"))["held"] == q, sku
