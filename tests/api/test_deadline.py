"""The request deadline: a request the store does not answer in time gets 503, never hangs;
a slow client body and a long event stream are not cut by it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app.api.main import create_app
from app.domain.clock import ManualClock
from app.store.embedded import EmbeddedStore
from tests.api.helpers import assert_problem
from tests.conftest import make_settings, seed

DEADLINE = 0.3


@pytest.fixture
async def tight(store_url: str, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a 0.3 s deadline (and store calls that would wait far longer)."""
    app = create_app(
        make_settings(store_url, request_deadline_seconds=DEADLINE, redis_timeout_seconds=5),
        clock,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://o") as c,
    ):
        yield c


async def test_a_request_the_store_does_not_answer_in_time_gets_503_with_retry_after(
    tmp_path: Path, clock: ManualClock
) -> None:
    with EmbeddedStore(tmp_path / "store", fsync="everysec", supervise=False) as store:
        settings = make_settings(
            store.url, request_deadline_seconds=DEADLINE, redis_timeout_seconds=5
        )
        app: FastAPI = create_app(settings, clock)
        admin = Redis.from_url(store.url)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://o") as c,
        ):
            await seed(c, {("sku-1", "dc"): 5})
            await admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # lifts by itself
            started = time.monotonic()
            r = await c.get("/v1/availability/sku-1", params={"channel": "web"})
            elapsed = time.monotonic() - started
        await admin.aclose()
    assert_problem(r, 503, "store_unavailable")
    assert r.headers["retry-after"] == "1"
    assert DEADLINE <= elapsed < DEADLINE + 0.5, elapsed


async def test_time_spent_receiving_a_slow_request_body_does_not_count(
    tight: httpx.AsyncClient,
) -> None:
    await seed(tight, {("sku-1", "dc"): 5})
    body = orjson.dumps({"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]})

    async def slowly() -> AsyncIterator[bytes]:
        for i in range(0, len(body), len(body) // 3 + 1):
            await asyncio.sleep(0.2)  # 0.6 s in all: twice the deadline
            yield body[i : i + len(body) // 3 + 1]

    r = await tight.post(
        "/v1/holds", content=slowly(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text


@pytest.mark.slow
def test_an_event_stream_outlives_the_deadline(store_url: str, start_service: Any) -> None:
    service = start_service(
        OMNISTOCK_REDIS_URL=store_url,
        OMNISTOCK_REQUEST_DEADLINE_SECONDS=str(DEADLINE),
        OMNISTOCK_SSE_KEEPALIVE_SECONDS="0.1",
    )
    started = time.monotonic()
    received = b""
    with (
        httpx.Client(base_url=service.base_url, timeout=5) as c,
        c.stream("GET", "/v1/events") as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_raw():
            received += chunk
            if time.monotonic() - started > 4 * DEADLINE:
                break
    assert time.monotonic() - started > 4 * DEADLINE
    assert received.count(b": keep-alive") >= 3, received
