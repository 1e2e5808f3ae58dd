"""Shared fixtures: real store servers started by the suite (never port 6379), the app
through httpx, and a real `omnistock serve` process when a test needs one."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.api.main import create_app
from app.domain.clock import ManualClock
from app.settings import Settings
from app.store.embedded import EmbeddedStore, free_port
from benchmarks.harness import Server


@pytest.fixture(scope="session")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """One real valkey/redis server for the session, on a free port, AOF everysec (tests that
    need `always` start their own)."""
    store = EmbeddedStore(tmp_path_factory.mktemp("store"), fsync="everysec", supervise=False)
    store.start()
    yield store
    store.stop()


@pytest.fixture
def store_url(store_server: EmbeddedStore) -> Iterator[str]:
    client = SyncRedis.from_url(store_server.url)
    client.flushall()
    client.close()
    yield store_server.url


@pytest.fixture
async def redis(store_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(store_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_settings(store_url: str, **overrides: Any) -> Settings:
    # In-process tests run the client and hundreds of concurrent requests on one event loop of
    # a shared machine: the production time bounds (1 s per store call, 1.25 s per request)
    # would measure the machine, not the store. tests/faults checks them on real processes.
    values: dict[str, Any] = {
        "redis_url": store_url,
        "reaper_enabled": False,
        "redis_timeout_seconds": 5.0,
        "request_deadline_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(store_url: str) -> Settings:
    return make_settings(store_url)


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
        yield c


async def seed(
    client: httpx.AsyncClient,
    stock: dict[tuple[str, str], int] | None = None,
    locations: dict[str, int] | None = None,
    channels: dict[str, list[str]] | None = None,
) -> None:
    """Register locations {id: priority}, channels {id: [locations]} and positions."""
    for loc, priority in (locations or {"dc": 1, "store-a": 10, "store-b": 20}).items():
        r = await client.put(f"/v1/locations/{loc}", json={"priority": priority, "ship": True})
        assert r.status_code == 200, r.text
    for ch, locs in (channels or {"web": ["dc", "store-a", "store-b"]}).items():
        r = await client.put(
            f"/v1/channels/{ch}", json={"locations": locs, "low_stock_threshold": 2}
        )
        assert r.status_code == 200, r.text
    for (sku, loc), on_hand in (stock or {}).items():
        r = await client.put(f"/v1/stock/{sku}/{loc}", json={"on_hand": on_hand})
        assert r.status_code == 200, r.text


class ServiceProcess(Server):
    """A real `omnistock serve` process (uvicorn, N workers); the process handling is the
    benchmark harness's Server, so tests and `make bench` start the service the same way."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        argv = [sys.executable, "-m", "app", "serve", "--port", str(port)]
        super().__init__(argv, env, port, log_path)

    def wait_ready(self, path: str = "/readyz", timeout: float = 30) -> None:
        super().wait_ready(path, timeout)


def service_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNISTOCK_", "PROMETHEUS_"))}
    env.update(values)
    return env


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def start(**env_values: str) -> ServiceProcess:
        port = free_port()
        service = ServiceProcess(service_env(**env_values), port, tmp_path / f"service-{port}.log")
        started.append(service)
        service.wait_ready()
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def server_binary() -> str:
    from app.store.embedded import find_server_binary

    binary = find_server_binary()
    assert shutil.which(binary) or os.path.exists(binary)
    return binary
