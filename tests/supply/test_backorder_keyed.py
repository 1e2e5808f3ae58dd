"""A keyed one-partition backorder create is one store round trip: hold_backorder.lua checks
the Idempotency-Key, makes the hold and stores the claim with its response (idem_finish, the
deferred form that app/domain/hold_render.py renders), so a replay is the first response byte
for byte (the twin of tests/api/test_idempotency.py's on-hand case); a refusal takes the claim
and its answer is replayed too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.domain.clock import ManualClock
from app.store.mux import Multiplexer
from tests.api.helpers import assert_problem, position, replay_after_dying
from tests.conftest import script_calls, seed
from tests.supply.helpers import days, ok_supply, supply_lines

BODY = {
    "channel": "web",
    "allow_backorder": True,
    "reference": "cart-9",
    "metadata": {"cart": "c-9", "note": 'é " x'},
    "lines": [{"sku": "sku-1", "quantity": 5}],
}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


@pytest.fixture(autouse=True)
async def _seeded(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 2})
    await ok_supply(client, "sku-1", "dc", "po", 10, days(4))


async def test_a_created_backorder_hold_is_replayed_byte_for_byte(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/v1/holds", json=BODY, headers=key("bo-bytes"))
    retry = await client.post("/v1/holds", json=BODY, headers=key("bo-bytes"))
    assert first.status_code == retry.status_code == 201, first.text
    assert [x.get("supply_id") for x in first.json()["lines"]] == [None, "po"]
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"


async def test_a_backorder_create_whose_service_died_before_answering_is_replayed(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await replay_after_dying(client, monkeypatch, BODY, "bo-dies")
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 3
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_a_keyed_backorder_create_takes_one_store_round_trip(
    client: httpx.AsyncClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.post("/v1/holds", json=BODY, headers=key("warm-up"))  # reads the id secret
    sent: list[str] = []
    mux_execute = Multiplexer.execute

    async def via_mux(self: Multiplexer, *args: Any) -> Any:
        sent.append(str(args[0]))
        return await mux_execute(self, *args)

    monkeypatch.setattr(Multiplexer, "execute", via_mux)
    before = await script_calls(redis)
    r = await client.post("/v1/holds", json=BODY, headers=key("counted"))
    after = await script_calls(redis)
    assert r.status_code == 201, r.text
    # hold_backorder.lua: claim, change and stored response in one call (was 2: the response
    # stored by idempotency_complete.lua after it)
    assert (after - before, sent) == (1, ["FCALL"])


async def test_a_keyed_backorder_create_the_store_finds_past_needed_by_replays_its_422(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    clock.advance(2 * 86400)  # the store's now is 2 days ahead of the request's
    body = {**BODY, "needed_by": days(1)}
    first = await client.post("/v1/holds", json=body, headers=key("bo-past"))
    assert_problem(first, 422, "invalid_request")
    clock.advance(-2 * 86400)
    retry = await client.post("/v1/holds", json=body, headers=key("bo-past"))
    assert (retry.status_code, retry.content) == (422, first.content)
    assert retry.headers["idempotent-replayed"] == "true"
    assert (await supply_lines(client, "sku-1"))[0]["promised"] == 0


async def test_a_keyed_backorder_create_short_of_supply_replays_its_409(
    client: httpx.AsyncClient,
) -> None:
    body = {**BODY, "lines": [{"sku": "sku-1", "quantity": 20}]}
    first = await client.post("/v1/holds", json=body, headers=key("bo-short"))
    assert_problem(first, 409, "insufficient_stock")
    await ok_supply(client, "sku-1", "dc", "po-2", 10, days(5))
    retry = await client.post("/v1/holds", json=body, headers=key("bo-short"))
    assert (retry.status_code, retry.content) == (409, first.content)
    assert retry.headers["idempotent-replayed"] == "true"
    assert (await position(client, "sku-1", "dc"))["held"] == 0
