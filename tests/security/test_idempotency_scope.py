"""Idempotency-Key records are per client (the API key's name): two clients that happen to
send the same Idempotency-Key never see each other's response or share a hold."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from app.api.main import create_app
from app.credentials import append
from tests.api.helpers import available
from tests.conftest import make_settings, seed
from tests.security.conftest import bearer

HOLD = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}


async def test_same_idempotency_key_from_two_api_keys_makes_two_holds(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 5})
    a = await client.post(
        "/v1/holds", json=HOLD, headers={**bearer(api_keys["reserve"]), "Idempotency-Key": "k1"}
    )
    b = await client.post(
        "/v1/holds", json=HOLD, headers={**bearer(api_keys["admin"]), "Idempotency-Key": "k1"}
    )
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers
    assert await available(admin, "sku-1") == 3


async def test_same_idempotency_key_with_another_body_from_another_client_is_not_reused(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 5})
    headers = {"Idempotency-Key": "order-1"}
    first = await client.post(
        "/v1/holds", json=HOLD, headers={**headers, **bearer(api_keys["reserve"])}
    )
    other = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 2}]}
    second = await admin.post("/v1/holds", json=other, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert await available(admin, "sku-1") == 2


async def test_a_client_retrying_with_its_key_gets_its_own_replay(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 5})
    headers = {**bearer(api_keys["reserve"]), "Idempotency-Key": "k1"}
    first = await client.post("/v1/holds", json=HOLD, headers=headers)
    await admin.post("/v1/holds", json=HOLD, headers={"Idempotency-Key": "k1"})
    again = await client.post("/v1/holds", json=HOLD, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await available(admin, "sku-1") == 3


async def test_a_rotated_key_with_the_same_name_keeps_the_clients_idempotency_records(
    store_url: str, tmp_path: Path
) -> None:
    """Two entries with one name are one client rotating its key: a retry sent with the new
    key finds the response to the request sent with the old one."""
    path = tmp_path / "keys.json"
    admin_key = append(path, "ops", ["admin"])
    old = append(path, "checkout", ["reserve"])
    new = append(path, "checkout", ["reserve"])
    app: FastAPI = create_app(make_settings(store_url, api_keys_file=path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            c.headers.update(bearer(admin_key))
            await seed(c, {("sku-1", "dc"): 5})
            first = await c.post(
                "/v1/holds", json=HOLD, headers={**bearer(old), "Idempotency-Key": "k1"}
            )
            retry = await c.post(
                "/v1/holds", json=HOLD, headers={**bearer(new), "Idempotency-Key": "k1"}
            )
            assert (first.status_code, retry.status_code) == (201, 201)
            assert retry.json()["id"] == first.json()["id"]
            assert retry.headers["idempotent-replayed"] == "true"
            assert await available(c, "sku-1") == 4
