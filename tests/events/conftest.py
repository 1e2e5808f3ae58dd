"""A real `omnistock serve` process shared by the SSE tests of a module (SSE does not stream
through httpx's ASGI transport), on the suite's store. Tests use fresh skus, not a flush."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from app.store.embedded import EmbeddedStore, free_port
from tests.conftest import ServiceProcess, service_env

QUEUE_SIZE = 64


@pytest.fixture(scope="module")
def sse_service(
    store_server: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = service_env(
        OMNISTOCK_REDIS_URL=store_server.url,
        OMNISTOCK_REAPER_ENABLED="false",
        OMNISTOCK_SSE_KEEPALIVE_SECONDS="0.5",
        OMNISTOCK_SSE_QUEUE_SIZE=str(QUEUE_SIZE),
    )
    port = free_port()
    service = ServiceProcess(env, port, tmp_path_factory.mktemp("sse") / "service.log")
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


@pytest.fixture
async def api(sse_service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=sse_service.base_url, timeout=15, limits=limits
    ) as client:
        yield client


@pytest.fixture
async def store(store_server: EmbeddedStore) -> AsyncIterator[Redis]:
    """The service's store, without the flush of the `redis` fixture."""
    client = Redis.from_url(store_server.url, decode_responses=True)
    yield client
    await client.aclose()
