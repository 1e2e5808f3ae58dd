"""Request body limit (OMNISTOCK_MAX_BODY_BYTES): 413 `payload_too_large`, whether the body
declares its length or streams in chunks without one, before authentication reads anything."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from app.settings import Settings
from tests.api.helpers import assert_problem
from tests.conftest import make_settings, seed
from tests.security.conftest import bearer

LIMIT = 4096


@pytest.fixture
def settings(store_url: str, keys_file: Any) -> Settings:
    return make_settings(store_url, api_keys_file=keys_file[0], max_body_bytes=LIMIT)


def hold_body(size: int) -> bytes:
    """A valid hold request padded with spaces to exactly `size` bytes."""
    body = orjson.dumps({"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]})
    assert len(body) <= size
    return body + b" " * (size - len(body))


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_body_over_the_limit_with_content_length_is_413(
    client: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    r = await client.post(
        "/v1/holds",
        content=hold_body(LIMIT + 1),
        headers={**bearer(api_keys["reserve"]), "content-type": "application/json"},
    )
    body = assert_problem(r, 413, "payload_too_large")
    assert body["max_body_bytes"] == LIMIT


async def test_chunked_body_over_the_limit_is_413(
    client: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    data = hold_body(LIMIT + 1)
    request = client.build_request(
        "POST",
        "/v1/holds",
        content=chunks(data),
        headers={**bearer(api_keys["reserve"]), "content-type": "application/json"},
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_problem(await client.send(request), 413, "payload_too_large")


async def test_chunked_body_over_the_limit_on_a_route_without_a_body_model_is_413(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    """commit has no body, but with an Idempotency-Key its body is read (fingerprinted)."""
    await seed(admin, {("sku-1", "dc"): 5})
    hold_id = (await admin.post("/v1/holds", json=orjson.loads(hold_body(200)))).json()["id"]
    r = await client.post(
        f"/v1/holds/{hold_id}/commit",
        content=chunks(b"x" * (LIMIT * 3)),
        headers={**bearer(api_keys["reserve"]), "Idempotency-Key": "c-1"},
    )
    assert_problem(r, 413, "payload_too_large")
    assert (await admin.get(f"/v1/holds/{hold_id}")).json()["status"] == "active"


async def test_body_at_the_limit_is_served(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, api_keys: dict[str, str]
) -> None:
    await seed(admin, {("sku-1", "dc"): 5})
    headers = {**bearer(api_keys["reserve"]), "content-type": "application/json"}
    r = await client.post("/v1/holds", content=hold_body(LIMIT), headers=headers)
    assert r.status_code == 201, r.text
    r = await client.post("/v1/holds", content=chunks(hold_body(LIMIT)), headers=headers)
    assert r.status_code == 201, r.text


async def test_too_large_comes_before_authentication(client: httpx.AsyncClient) -> None:
    """An unauthenticated client cannot make the service read a large body."""
    r = await client.post("/v1/holds", content=hold_body(LIMIT + 1))
    assert_problem(r, 413, "payload_too_large")


def test_default_limit_is_one_mebibyte() -> None:
    assert Settings(redis_url="redis://unused").max_body_bytes == 1024 * 1024


@pytest.fixture
def limited_service(start_service: Any, store_url: str, keys_file: Any) -> Iterator[Any]:
    yield start_service(
        OMNISTOCK_REDIS_URL=store_url,
        OMNISTOCK_API_KEYS_FILE=str(keys_file[0]),
        OMNISTOCK_MAX_BODY_BYTES=str(LIMIT),
        OMNISTOCK_REAPER_ENABLED="false",
    )


@pytest.mark.slow
def test_real_server_answers_413_for_both_kinds_of_large_body(
    limited_service: Any, api_keys: dict[str, str]
) -> None:
    """Through uvicorn's own HTTP parsing, not only the ASGI transport."""
    headers = {**bearer(api_keys["reserve"]), "content-type": "application/json"}

    def chunked(data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    with httpx.Client(base_url=limited_service.base_url, timeout=10) as c:
        sized = c.post("/v1/holds", content=hold_body(LIMIT + 1), headers=headers)
        assert_problem(sized, 413, "payload_too_large")
        streamed = c.post("/v1/holds", content=chunked(hold_body(LIMIT * 2)), headers=headers)
        assert_problem(streamed, 413, "payload_too_large")
        small = c.post("/v1/holds", content=chunked(hold_body(300)), headers=headers)
        assert_problem(small, 404, "channel_not_found")  # served: nothing seeded
