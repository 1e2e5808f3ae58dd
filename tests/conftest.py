"""Shared fixtures: real store servers started by the suite (never port 6379), the app
through httpx, and a real `omnistock serve` process when a test needs one.

The store behind `store_url` -> `settings` -> `app` -> `client` (and `redis`, the direct
store client) is chosen by `store_kind`:
- "single": the session's one server (`store_server`), flushed before each test;
- "cluster": the session's Valkey cluster (`store_cluster`: 3 primaries + 3 replicas, AOF
  everysec, tests/cluster/support.py), every primary flushed before each test (replicas not
  waited for: nothing reads them); `store_url` is then its seed list, which `make_settings`,
  `redis` and `start_service` recognise (a comma).

The contract suite's cluster leg: every test of the modules in CLUSTER_LEG runs twice, as
`[single]` and `[cluster]`; the modules of tests/cluster run on the cluster only. A test in a
leg module that is single-server by nature carries `@pytest.mark.single_server`. The leg is a
chosen subset, to keep `make test` well under 15 minutes on 2 cores (it adds ~60 s): the API
contract of holds, idempotency, all-or-nothing carts, sourcing, availability, stock, expiry and
config; the stock events in; the event log and its retention; the races (in process and
against 2 `omnistock serve` workers); the reaper; the audit; hold ownership and idempotency
scope -- every path that runs a script, spans partitions, reads the events out or checks the
store directly. Left single-only: what the store's topology does not change (validation,
hostile input, OpenAPI, auth, limits, problems), what is single-server by nature (the
multiplexer, the MULTI/EXEC batch read, the embedded store, AOF/fsync and disk faults), and
the slow process tests (faults, system, CLI, the SSE module; SSE, import/export/audit and
failover on a cluster have their own tests in tests/cluster). docs/reliability.md says the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
from app.store.cluster import cluster_client
from app.store.embedded import EmbeddedStore, free_port
from benchmarks.harness import Server
from tests.cluster.support import LocalCluster

# The fuzzing run's counts, summed over the xdist workers (tests/fuzz/stats.py).
pytest_plugins = ("tests.fuzz.stats",)


@pytest.fixture(scope="session")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """One real valkey/redis server for the session, on a free port, AOF everysec (tests that
    need `always` start their own)."""
    store = EmbeddedStore(tmp_path_factory.mktemp("store"), fsync="everysec", supervise=False)
    store.start()
    yield store
    store.stop()


# The modules whose every test also runs on the cluster (see the module docstring).
CLUSTER_LEG = (
    "tests/api/test_all_or_nothing.py",
    "tests/api/test_availability.py",
    "tests/api/test_channel_rules.py",
    "tests/api/test_expiry.py",
    "tests/api/test_hold_list.py",
    "tests/api/test_hold_metadata.py",
    "tests/api/test_hold_partial.py",
    "tests/api/test_holds.py",
    "tests/api/test_idempotency.py",
    "tests/api/test_locations_channels.py",
    "tests/api/test_sourcing.py",
    "tests/api/test_smoke.py",
    "tests/api/test_stock.py",
    "tests/audit/test_audit.py",
    "tests/domain/test_races.py",
    "tests/domain/test_hold_index_sweep.py",
    "tests/domain/test_reaper.py",
    "tests/events/test_log.py",
    "tests/events/test_retention.py",
    "tests/events_in/test_channel_figures.py",
    "tests/events_in/test_event_identity.py",
    "tests/events_in/test_stock_events.py",
    "tests/ops/test_functions_prune.py",
    "tests/security/test_hold_ownership.py",
    "tests/security/test_hold_list_ownership.py",
    "tests/security/test_idempotency_scope.py",
    "tests/supply/test_availability_by_date.py",
    "tests/supply/test_backorder_holds.py",
    "tests/supply/test_backorder_meets_holds_api.py",
    "tests/supply/test_broken_promises.py",
    "tests/supply/test_receipts.py",
    "tests/supply/test_supply_lines.py",
)
ROOT = Path(__file__).resolve().parents[1]


def store_kinds(metafunc: pytest.Metafunc) -> list[str]:
    module = Path(metafunc.definition.path).resolve().relative_to(ROOT).as_posix()
    if module.startswith("tests/cluster/"):
        return ["cluster"]
    if module in CLUSTER_LEG and not metafunc.definition.get_closest_marker("single_server"):
        return ["single", "cluster"]
    return []


# `make test` runs the suite in pytest-xdist workers with `--dist loadfile`: each test module
# is one unit of work (its tests run in order, in one worker, sharing its module-scoped
# services); each worker has its own session fixtures (store server, cluster) and tmp dirs.
SLOW_MARKS = ("slow", "fault", "cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the workers, the modules with a test marked slow, fault or cluster go first (xdist
    hands the modules out in collection order with `--no-loadscope-reorder`), so that no long
    module starts last and keeps one worker busy while the others are idle."""
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if any(map(item.get_closest_marker, SLOW_MARKS))}
    items.sort(key=lambda item: item.path not in slow)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames and (kinds := store_kinds(metafunc)):
        metafunc.parametrize("store_kind", kinds, ids=kinds)


@pytest.fixture
def store_kind() -> str:
    """ "single" unless pytest_generate_tests parametrises it."""
    return "single"


@pytest.fixture(scope="session")
def store_cluster(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """The session's Valkey cluster: 3 primaries with one replica each, AOF everysec. Tests
    that kill or pause nodes start their own (tests/cluster/conftest.py)."""
    cluster = LocalCluster(server_binary, tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


async def script_calls(redis: Redis) -> int:
    """Script calls the store has run (INFO commandstats): FCALL (the service calls every
    script as a function) and EVALSHA."""
    stats: dict[str, Any] = await redis.info("commandstats")
    return sum(int(stats.get(k, {}).get("calls", 0)) for k in ("cmdstat_fcall", "cmdstat_evalsha"))


def is_cluster_url(url: str) -> bool:
    """The suite's cluster URL is its seed list: several nodes, comma-separated."""
    return "," in url


@pytest.fixture
def store_url(store_kind: str, request: pytest.FixtureRequest) -> str:
    """The test's store, emptied: the single server or the cluster's seed list."""
    if store_kind == "cluster":
        cluster: LocalCluster = request.getfixturevalue("store_cluster")
        cluster.flush()
        return cluster.seeds
    server: EmbeddedStore = request.getfixturevalue("store_server")
    client = SyncRedis.from_url(server.url)
    client.flushall()
    client.close()
    return server.url


def direct_client(url: str, **options: Any) -> Redis:
    """A client of the store at `url`: a cluster client for the cluster's seed list."""
    if is_cluster_url(url):
        return cluster_client(url, **options)  # type: ignore[return-value]  # same commands
    return Redis.from_url(url, **options)


@pytest.fixture
async def redis(store_url: str) -> AsyncIterator[Redis]:
    """A direct client of the test's store (a cluster client on the cluster)."""
    client = direct_client(store_url, decode_responses=True)
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
        "redis_cluster": is_cluster_url(store_url),
        "reaper_enabled": False,
        # Background deliverers only where a test is about them (tests/webhooks): a task
        # cancelled mid-call at an in-process app's teardown leaves a connection to the GC.
        "webhooks_enabled": False,
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
        if is_cluster_url(env_values.get("OMNISTOCK_REDIS_URL", "")):
            env_values.setdefault("OMNISTOCK_REDIS_CLUSTER", "1")
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


def bare_store(
    server_binary: str, port: int, data_dir: Path, *flags: str
) -> subprocess.Popen[bytes]:
    """A store server of a test's own on `port`, without persistence (and its output), `flags`
    added (e.g. `--requirepass`); the caller stops it."""
    argv = [server_binary, "--port", str(port), "--bind", "127.0.0.1", *flags]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(data_dir)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
