"""A full disk: writes answer 503 `store_unavailable` naming the disk, reads go on, the store
is not restart-looped, and writes come back by themselves within 5 s of space being freed.

The data directory is a 16 MiB tmpfs filled to the brim by a file (mounting needs root or
CAP_SYS_ADMIN; without it these tests skip and say so).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.api.main import create_app
from app.domain.clock import ManualClock
from app.store.embedded import EmbeddedStore, embedded_store_url
from tests.conftest import make_settings, seed

pytestmark = pytest.mark.fault


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except FileNotFoundError:
        pytest.skip("no `mount` command to make a small disk with")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 16 MiB tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    """A file that takes every free byte of `disk`; delete it to free the space."""
    path = disk / "filler"
    with open(path, "wb", buffering=0) as fh:
        for size in (1 << 20, 4096, 1):
            chunk = bytes(size)
            with contextlib.suppress(OSError):  # ENOSPC: on to smaller pieces
                while fh.write(chunk):
                    pass
    return path


def wait_for(what: Callable[[], Any], timeout: float, step: float = 0.05) -> tuple[Any, float]:
    """(the first truthy result of `what()`, seconds it took); fails after `timeout`."""
    start = time.monotonic()
    while True:
        result = what()
        elapsed = time.monotonic() - start
        if result:
            return result, elapsed
        assert elapsed < timeout, f"not within {timeout} s"
        time.sleep(step)


def names_the_disk(r: httpx.Response) -> bool:
    return (
        r.status_code == 503
        and r.json()["code"] == "store_unavailable"
        and "cannot write to disk" in r.json()["detail"]
        and r.headers.get("Retry-After") == "1"
    )


@pytest.mark.slow
def test_a_full_disk_refuses_writes_naming_it_serves_reads_and_recovers_when_space_is_freed(
    small_disk: Path, start_service: Any
) -> None:
    data = small_disk / "data"
    service = start_service(OMNISTOCK_DATA_DIR=str(data))
    store = redis.Redis.from_url(embedded_store_url(data) or "", socket_timeout=2)
    with httpx.Client(base_url=service.base_url, timeout=10) as c:
        assert c.put("/v1/locations/dc", json={"priority": 1}).status_code == 200
        assert c.put("/v1/stock/sku-1/dc", json={"on_hand": 10}).status_code == 200
        hold = c.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 3}]})
        assert hold.status_code == 201, hold.text

        filler = fill(small_disk)
        write = lambda: c.put("/v1/stock/sku-1/dc", json={"on_hand": 20})  # noqa: E731
        refused, took = wait_for(lambda: names_the_disk(r := write()) and r, timeout=10)
        print(f"\n[disk full] writes 503 {took:.2f} s after the fill: {refused.json()['detail']}")

        # For 2 s: every write refused naming the disk, every read served, one store process.
        pids = set()
        end = time.monotonic() + 2
        while time.monotonic() < end:
            assert names_the_disk(write())
            assert c.get("/v1/stock/sku-1").status_code == 200
            assert c.get(f"/v1/holds/{hold.json()['id']}").status_code == 200
            assert c.get("/v1/availability/sku-1").status_code == 200
            pids.add(store.info("server")["process_id"])
            time.sleep(0.1)
        assert len(pids) == 1, f"the store was restarted: pids {pids}"
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["writes"] == "refused" and ready.json()["reads"] == "ok"
        assert "cannot write to disk" in ready.json()["detail"]
        assert c.get("/healthz").status_code == 200  # alive: a restart would not free space

        filler.unlink()
        _, took = wait_for(lambda: write().status_code == 200, timeout=5)
        print(f"[disk full] writes back {took:.2f} s after the space was freed")
        assert c.get("/readyz").json()["status"] == "ok"
    store.close()
    service.stop()

    # Everything acknowledged, before and after, is on disk: a new service finds it.
    again = start_service(OMNISTOCK_DATA_DIR=str(data))
    with httpx.Client(base_url=again.base_url, timeout=10) as c:
        position = c.get("/v1/stock/sku-1").json()["positions"][0]
        assert (position["on_hand"], position["held"]) == (20, 3)
        assert c.get(f"/v1/holds/{hold.json()['id']}").json()["status"] == "active"


@pytest.mark.slow
def test_a_store_that_died_of_a_full_disk_restarts_once_refusing_writes_and_not_in_a_loop(
    small_disk: Path,
) -> None:
    # No early refusal: the write itself fails, and the server exits (appendfsync always).
    store = EmbeddedStore(small_disk / "data", refuse_writes_below=0)
    store.start()
    client = redis.Redis.from_url(store.url, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    try:
        client.set("before", "acknowledged")
        filler = fill(small_disk)
        first_pid = store.pid
        with pytest.raises(redis.ConnectionError):
            client.set("too-big", "x" * 65536)  # the AOF write fails: the server exits
        wait_for(lambda: store.restarts == 1 and store.pid != first_pid, timeout=10)
        _, took = wait_for(lambda: _quietly(client.get, "before") == b"acknowledged", timeout=10)
        print(f"\n[disk full] reads served {took:.2f} s after the restart")
        pid = store.pid
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            client.set("during", "refused")
        time.sleep(1.5)
        assert (store.pid, store.restarts) == (pid, 1)
        assert client.get("too-big") is None  # never acknowledged, never applied

        filler.unlink()
        _, took = wait_for(lambda: _quietly(client.set, "after", "1"), timeout=5)
        print(f"[disk full] writes back {took:.2f} s after the space was freed")
    finally:
        client.close()
        store.stop()
    log = (small_disk / "data" / "store.log").read_text()
    assert "AOF write error" in log or "Short write" in log  # it did die of the write


def _quietly(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except redis.RedisError:
        return None


@pytest.fixture
async def app_on(clock: ManualClock) -> AsyncIterator[Callable[[str], Any]]:
    """`async with app_on(url) as client`: the app on a store of the test's choosing."""

    @contextlib.asynccontextmanager
    async def start(url: str) -> AsyncIterator[httpx.AsyncClient]:
        app: FastAPI = create_app(make_settings(url), clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
                yield c

    yield start


@pytest.mark.slow
async def test_an_external_store_that_cannot_write_its_aof_gets_503_naming_the_disk(
    small_disk: Path, app_on: Any
) -> None:
    # An operator's store with appendfsync everysec answers MISCONF instead of exiting.
    with EmbeddedStore(small_disk / "ext", fsync="everysec", supervise=False) as store:
        async with app_on(store.url) as c:
            await seed(c, {("sku-1", "dc"): 10})
            filler = fill(small_disk)
            direct = redis.Redis.from_url(store.url)
            direct.set("os:filler", "x" * 65536)  # its AOF write fails a moment later
            direct.close()

            async def refused() -> httpx.Response:
                return await c.put("/v1/stock/sku-1/dc", json={"on_hand": 20})

            deadline = time.monotonic() + 5
            while not names_the_disk(r := await refused()):
                assert time.monotonic() < deadline, r.text
            assert "No space left on device" in r.json()["detail"]
            assert (await c.get("/v1/stock/sku-1")).status_code == 200
            ready = await c.get("/readyz")
            assert ready.json()["status"] == "degraded"
            assert "cannot write to disk" in ready.json()["detail"]

            filler.unlink()  # the store retries its AOF write every second
            deadline = time.monotonic() + 5
            while (await refused()).status_code != 200:
                assert time.monotonic() < deadline


async def test_a_store_refusing_writes_for_want_of_replicas_gets_503_and_reads_go_on(
    client: httpx.AsyncClient, redis: Any
) -> None:
    await seed(client, {("sku-1", "dc"): 10})
    await redis.config_set("min-replicas-to-write", 1)
    try:
        r = await client.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 1}]})
        assert r.status_code == 503 and r.json()["code"] == "store_unavailable", r.text
        assert "too few replicas" in r.json()["detail"]
        keyed = await client.post(
            "/v1/holds",
            json={"lines": [{"sku": "sku-1", "quantity": 1}]},
            headers={"Idempotency-Key": "k-1"},
        )
        assert keyed.status_code == 503, keyed.text
        assert (await client.get("/v1/availability/sku-1")).json()["available"] == 10
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["writes"] == "refused"
    finally:
        await redis.config_set("min-replicas-to-write", 0)
