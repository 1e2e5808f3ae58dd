"""`metadata` on a hold, with Stripe's limits: set at create, updated with PATCH (a key set to
"" is removed), returned by every hold response and by the listing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import assert_problem, hold
from tests.conftest import seed

LINE = [{"sku": "sku-1", "quantity": 1}]


async def patch(
    client: httpx.AsyncClient, hold_id: str, metadata: Any, **kw: Any
) -> httpx.Response:
    return await client.patch(f"/v1/holds/{hold_id}", json={"metadata": metadata}, **kw)


async def test_metadata_given_at_create_is_in_every_hold_response(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, LINE, metadata={"order_id": "A-1", "empty": ""})
    assert h["metadata"] == {"order_id": "A-1"}  # "" is no key, as in an update
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["metadata"] == {"order_id": "A-1"}
    assert (await client.get("/v1/holds")).json()["data"][0]["metadata"] == {"order_id": "A-1"}
    committed = await client.post(f"/v1/holds/{h['id']}/commit")
    assert committed.json()["metadata"] == {"order_id": "A-1"}


async def test_a_hold_without_metadata_has_an_empty_object(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    assert (await hold(client, LINE))["metadata"] == {}


async def test_patch_sets_keys_and_an_empty_value_removes_one(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, LINE, metadata={"a": "1", "b": "2"})
    r = await patch(client, h["id"], {"a": "", "c": "3"})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"b": "2", "c": "3"}
    assert r.json()["lines"] == h["lines"] and r.json()["status"] == "active"
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["metadata"] == {"b": "2", "c": "3"}


async def test_stripes_limits_are_422_at_create_and_in_an_update(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, LINE, metadata={"keep": "me"})
    bad: list[Any] = [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 41: "v"},
        {"k": "v" * 501},
        {"k": 1},
        {"": "v"},
        ["k", "v"],
    ]
    for metadata in bad:
        r = await client.post(
            "/v1/holds", json={"channel": "web", "lines": LINE, "metadata": metadata}
        )
        assert_problem(r, 422, "invalid_request")
        assert_problem(await patch(client, h["id"], metadata), 422, "invalid_request")
    limit = {f"k{i}": "v" * 500 for i in range(50)}
    assert (
        await client.post("/v1/holds", json={"lines": LINE, "metadata": limit})
    ).status_code == 201
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["metadata"] == {"keep": "me"}


async def test_an_update_that_would_pass_50_keys_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, LINE, metadata={f"k{i}": "v" for i in range(49)})
    r = await patch(client, h["id"], {"x": "1", "y": "2"})
    assert_problem(r, 422, "invalid_request")
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["metadata"] == h["metadata"]
    r = await patch(client, h["id"], {"k0": "", "x": "1", "y": "2"})  # a removal makes room
    assert r.status_code == 200 and len(r.json()["metadata"]) == 50


async def test_a_keyed_update_is_replayed_and_an_unknown_hold_is_404(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    h = await hold(client, LINE)
    key = {"Idempotency-Key": "meta-1"}
    first = await patch(client, h["id"], {"a": "1"}, headers=key)
    await patch(client, h["id"], {"a": "2"})
    again = await patch(client, h["id"], {"a": "1"}, headers=key)
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["metadata"] == {"a": "2"}
    assert_problem(
        await patch(client, "haaaaaaaaaaaaaaaaaaaa-00", {"a": "1"}), 404, "hold_not_found"
    )
