"""The holds listing, partial changes and metadata updates keep holds private: a caller lists
only its own holds (admin: every hold), and another caller's hold is 404 `hold_not_found` for
PATCH and partial release, as for every other request."""

from __future__ import annotations

import httpx

from tests.api.helpers import assert_problem, skus_in_distinct_partitions
from tests.conftest import seed
from tests.security.conftest import bearer
from tests.security.test_hold_ownership import keys_file

__all__ = ["keys_file"]  # the module's two shops, admin and read-only key


async def ids(client: httpx.AsyncClient, key: str, **params: str) -> list[str]:
    r = await client.get("/v1/holds", params=params, headers=bearer(key))
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["data"]]


async def test_a_caller_lists_only_its_own_holds_and_admin_lists_all(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    skus = skus_in_distinct_partitions(2)
    await seed(admin, {(s, "dc"): 10 for s in skus})
    made: dict[str, list[str]] = {"a": [], "b": []}
    for shop in ("a", "b"):
        for sku in skus:
            body = {"channel": "web", "lines": [{"sku": sku, "quantity": 1}]}
            r = await client.post("/v1/holds", json=body, headers=bearer(api_keys[shop]))
            made[shop].append(r.json()["id"])
    assert sorted(await ids(client, api_keys["a"])) == sorted(made["a"])
    assert sorted(await ids(client, api_keys["b"], sku=skus[0])) == [made["b"][0]]
    assert await ids(client, api_keys["read"]) == []
    assert sorted(await ids(admin, api_keys["admin"])) == sorted(made["a"] + made["b"])


async def test_another_callers_cursor_is_refused(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 10})
    body = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}
    for _ in range(2):
        await client.post("/v1/holds", json=body, headers=bearer(api_keys["a"]))
    page = await client.get("/v1/holds", params={"limit": 1}, headers=bearer(api_keys["a"]))
    cursor = page.json()["next"]
    r = await client.get("/v1/holds", params={"after": cursor}, headers=bearer(api_keys["b"]))
    assert_problem(r, 422, "invalid_request")


async def test_patch_and_partial_release_of_another_callers_hold_are_not_found(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 10})
    body = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 2}]}
    h = (await client.post("/v1/holds", json=body, headers=bearer(api_keys["a"]))).json()
    b = bearer(api_keys["b"])
    part = {"lines": [{"sku": "sku-1", "location": "dc", "quantity": 1}]}
    r = await client.post(f"/v1/holds/{h['id']}/release", json=part, headers=b)
    assert_problem(r, 404, "hold_not_found")
    r = await client.patch(f"/v1/holds/{h['id']}", json={"metadata": {"x": "1"}}, headers=b)
    assert_problem(r, 404, "hold_not_found")
    assert (await admin.get(f"/v1/holds/{h['id']}")).json() == h
