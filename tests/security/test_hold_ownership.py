"""Holds belong to the API key name that made them (contract v1.1, "Holds belong to their
creator"): any other non-admin key gets 404 `hold_not_found` for them, the very answer a hold
that does not exist gets, on GET and every transition, and nothing changes; `admin` reads and
changes every hold. Hold ids cannot be derived from public data: a keyed create's id is a MAC
under the store's secret, not a hash of the Idempotency-Key."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import fastapi
import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.utils import solve_dependencies
from redis.asyncio import Redis

from app import keys
from app.api.main import create_app
from app.credentials import append
from app.domain.hold_ids import HoldIdSecret, home_partition
from tests.api.helpers import assert_problem, available, skus_in_distinct_partitions
from tests.conftest import direct_client, make_settings, seed
from tests.security.conftest import bearer

HOLD = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 2}]}
UNKNOWN = "haaaaaaaaaaaaaaaaaaaa-00"


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two shops with `reserve` keys of their own, an admin and a read-only key."""
    path = tmp_path_factory.mktemp("owner-keys") / "keys.json"
    made = {
        "a": append(path, "shop-a", ["reserve"]),
        "b": append(path, "shop-b", ["reserve", "read"]),
        "read": append(path, "reporting", ["read"]),
        "admin": append(path, "ops", ["admin"]),
    }
    return path, made


def as_key(key: str, **headers: str) -> dict[str, str]:
    return {**bearer(key), **headers}


def without_id(r: httpx.Response, hold_id: str) -> tuple[int, str, dict[str, Any]]:
    """The answer with the hold id taken out of its detail, to compare with another id's."""
    body = r.json()
    body["detail"] = body["detail"].replace(hold_id, "<id>")
    return r.status_code, r.headers["content-type"], body


async def refusals(client: httpx.AsyncClient, key: str, hold_id: str) -> dict[str, Any]:
    """What `key` gets for GET and every transition of `hold_id`, with the id taken out."""
    calls = {
        "get": client.get(f"/v1/holds/{hold_id}", headers=bearer(key)),
        "commit": client.post(f"/v1/holds/{hold_id}/commit", headers=bearer(key)),
        "fulfil": client.post(f"/v1/holds/{hold_id}/fulfil", headers=bearer(key)),
        "release": client.post(f"/v1/holds/{hold_id}/release", headers=bearer(key)),
        "extend": client.post(
            f"/v1/holds/{hold_id}/extend", json={"ttl_seconds": 600}, headers=bearer(key)
        ),
    }
    return {name: without_id(await call, hold_id) for name, call in calls.items()}


async def test_another_clients_hold_is_not_found_on_read_and_every_transition(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 10})
    a = api_keys["a"]
    active = (await client.post("/v1/holds", json=HOLD, headers=bearer(a))).json()
    committed = (await client.post("/v1/holds", json=HOLD, headers=bearer(a))).json()
    done = await client.post(f"/v1/holds/{committed['id']}/commit", headers=bearer(a))
    assert done.status_code == 200
    before = [
        (await client.get(f"/v1/holds/{h['id']}", headers=bearer(a))).json()
        for h in (active, committed)
    ]
    stock_before = (await admin.get("/v1/stock/sku-1")).json()

    # Exactly what the same caller gets for a hold that does not exist: B 404 everywhere;
    # `read` 404 on GET, 403 on transitions (it lacks the scope, whoever owns the hold).
    for caller in ("b", "read"):
        unknown = await refusals(client, api_keys[caller], UNKNOWN)
        for hold in (active, committed):  # fulfil needs a committed hold, the rest active
            assert await refusals(client, api_keys[caller], hold["id"]) == unknown, caller
        if caller == "b":
            assert {(status, body["code"]) for status, _, body in unknown.values()} == {
                (404, "hold_not_found")
            }

    after = [
        (await client.get(f"/v1/holds/{h['id']}", headers=bearer(a))).json()
        for h in (active, committed)
    ]
    assert after == before
    assert (await admin.get("/v1/stock/sku-1")).json() == stock_before


async def test_admin_reads_and_releases_another_clients_hold(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 10})
    hold = (await client.post("/v1/holds", json=HOLD, headers=bearer(api_keys["a"]))).json()
    assert (await admin.get(f"/v1/holds/{hold['id']}")).json() == hold
    released = await admin.post(f"/v1/holds/{hold['id']}/release")
    assert released.status_code == 200 and released.json()["status"] == "released"
    assert await available(admin, "sku-1") == 10
    mine = await client.get(f"/v1/holds/{hold['id']}", headers=bearer(api_keys["a"]))
    assert mine.json()["status"] == "released"


async def test_the_owner_is_in_every_part_of_a_multi_partition_hold(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str], redis: Redis
) -> None:
    skus = skus_in_distinct_partitions(3)
    await seed(admin, {(sku, "dc"): 5 for sku in skus})
    body = {"channel": "web", "lines": [{"sku": s, "quantity": 1} for s in skus]}
    created = await client.post("/v1/holds", json=body, headers=bearer(api_keys["a"]))
    assert created.status_code == 201, created.text
    hold_id = created.json()["id"]
    owners = [await redis.hget(keys.hold(keys.partition_of(s), hold_id), "owner") for s in skus]
    assert owners == ["shop-a"] * 3
    refused = await client.post(f"/v1/holds/{hold_id}/release", headers=bearer(api_keys["b"]))
    assert_problem(refused, 404, "hold_not_found")
    assert [await available(admin, s) for s in skus] == [4, 4, 4]


async def test_the_same_idempotency_key_from_two_reserve_keys_makes_two_private_holds(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 10})
    a, b = api_keys["a"], api_keys["b"]
    first = await client.post(
        "/v1/holds", json=HOLD, headers=as_key(a, **{"Idempotency-Key": "o1"})
    )
    second = await client.post(
        "/v1/holds", json=HOLD, headers=as_key(b, **{"Idempotency-Key": "o1"})
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert "idempotent-replayed" not in second.headers
    ha, hb = first.json()["id"], second.json()["id"]
    assert ha != hb
    assert await available(admin, "sku-1") == 6
    assert (await client.get(f"/v1/holds/{ha}", headers=bearer(a))).status_code == 200
    assert_problem(await client.get(f"/v1/holds/{ha}", headers=bearer(b)), 404, "hold_not_found")
    assert_problem(await client.get(f"/v1/holds/{hb}", headers=bearer(a)), 404, "hold_not_found")
    # Each client's retry replays its own hold.
    again = await client.post(
        "/v1/holds", json=HOLD, headers=as_key(b, **{"Idempotency-Key": "o1"})
    )
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == hb


def old_keyed_id(owner: str, idempotency_key: str, home: int) -> str:
    """How a keyed hold id was made before: public inputs only."""
    digest = hashlib.sha256(f"key:{owner}\0\0{idempotency_key}".encode()).hexdigest()
    raw = hashlib.sha256(b"hold:" + digest.encode()).digest()
    return f"h{base64.b32encode(raw).decode().lower()[:20]}-{home:02x}"


async def test_a_keyed_hold_id_needs_the_stores_secret(
    store_url: str, keys_file: tuple[Path, dict[str, str]], redis: Redis
) -> None:
    """Not the old derivation from the Idempotency-Key, and another store (another secret)
    derives another id for the same client and key."""
    path, api_keys = keys_file
    ids = []
    for _ in range(2):  # a fresh store each time: its own secret
        await redis.flushall()
        app: FastAPI = create_app(make_settings(store_url, api_keys_file=path))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
                c.headers.update(bearer(api_keys["admin"]))
                await seed(c, {("sku-1", "dc"): 5})
                r = await c.post(
                    "/v1/holds",
                    json=HOLD,
                    headers=as_key(api_keys["a"], **{"Idempotency-Key": "k"}),
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
    home = home_partition(ids[0])
    assert home == keys.partition_of("sku-1")
    assert ids[0] != old_keyed_id("shop-a", "k", home)
    assert ids[0] != ids[1]


async def test_every_process_of_one_store_reads_the_same_secret(
    store_url: str, redis: Redis
) -> None:
    first = await HoldIdSecret(redis).get()
    other = direct_client(store_url)  # another process's connection, bytes replies
    try:
        assert await HoldIdSecret(other).get() == first
    finally:
        await other.aclose()
    assert len(first) == 32


async def test_a_hold_recorded_without_an_owner_is_admin_only(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str], redis: Redis
) -> None:
    """Holds made before owners were recorded belong to the anonymous owner: only admin."""
    await seed(admin, {("sku-1", "dc"): 10})
    hold = (await client.post("/v1/holds", json=HOLD, headers=bearer(api_keys["a"]))).json()
    await redis.hdel(keys.hold(keys.partition_of("sku-1"), hold["id"]), "owner")
    mine = await client.get(f"/v1/holds/{hold['id']}", headers=bearer(api_keys["a"]))
    assert_problem(mine, 404, "hold_not_found")
    assert (await admin.post(f"/v1/holds/{hold['id']}/commit")).status_code == 200


async def test_without_api_keys_there_is_one_anonymous_owner(store_url: str, redis: Redis) -> None:
    """Loopback mode as before: the anonymous caller reads and changes every hold."""
    app: FastAPI = create_app(make_settings(store_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            await seed(c, {("sku-1", "dc"): 5})
            hold = (await c.post("/v1/holds", json=HOLD, headers={"Idempotency-Key": "x"})).json()
            assert (await c.get(f"/v1/holds/{hold['id']}")).status_code == 200
            assert (await c.post(f"/v1/holds/{hold['id']}/commit")).status_code == 200
            assert (await c.post(f"/v1/holds/{hold['id']}/fulfil")).status_code == 200
            assert (
                await redis.hget(keys.hold(keys.partition_of("sku-1"), hold["id"]), "owner") == ""
            )


@pytest.mark.parametrize("path", ["fast", "slow"])
async def test_both_paths_of_a_hold_create_record_its_owner(
    path: str,
    store_url: str,
    keys_file: tuple[Path, dict[str, str]],
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POST /v1/holds has a fast path (app/api/fast_path.py) past FastAPI's dependencies:
    the owner is the same whichever path a request takes. `fast_path=False` builds an app that
    serves every request through FastAPI; the calls of FastAPI's dependency solving are
    counted to show which path answered."""
    solved: list[str] = []
    solve = solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        solved.append("dep")
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    path_, api_keys = keys_file
    app: FastAPI = create_app(
        make_settings(store_url, api_keys_file=path_), fast_path=path == "fast"
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            c.headers.update(bearer(api_keys["admin"]))
            await seed(c, {("sku-1", "dc"): 5})
            solved.clear()
            made = await c.post("/v1/holds", json=HOLD, headers=bearer(api_keys["a"]))
            assert made.status_code == 201, made.text
            assert len(solved) == (1 if path == "slow" else 0)
            hold_id = made.json()["id"]
            record = keys.hold(keys.partition_of("sku-1"), hold_id)
            assert await redis.hget(record, "owner") == "shop-a"
            other = await c.get(f"/v1/holds/{hold_id}", headers=bearer(api_keys["b"]))
            assert_problem(other, 404, "hold_not_found")
