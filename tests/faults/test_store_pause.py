"""A store that stops answering (SIGSTOP, or CLIENT PAUSE) and comes back.

While it is paused every request that needs it answers 503 `store_unavailable` with
`Retry-After` within 2 s (no hanging request, even with the connection pool exhausted), and
/readyz is red. Once it answers again the service serves within 1 s, without a burst of errors
from stale pooled connections.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.store.embedded import EmbeddedStore
from tests.faults.support import audit, seed_sync, summary

pytestmark = pytest.mark.fault

SKU = "pause-sku"
POOL = 8  # store connections of the service: requests below are several times that


@pytest.fixture
async def paused_store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "store", fsync="always", supervise=False)
    store.start()
    try:
        yield store
    finally:
        if store.pid:
            os.kill(store.pid, signal.SIGCONT)
        store.stop()


def hold_body() -> dict[str, Any]:
    return {"channel": "web", "lines": [{"sku": SKU, "quantity": 1}]}


async def timed(request: Awaitable[httpx.Response]) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    r = await request
    return time.monotonic() - started, r


def assert_store_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    if r.url.path != "/readyz":
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "store_unavailable"


def probes(c: httpx.AsyncClient) -> dict[str, Callable[[], Awaitable[httpx.Response]]]:
    return {
        "availability": lambda: c.get(f"/v1/availability/{SKU}", params={"channel": "web"}),
        "hold": lambda: c.post("/v1/holds", json=hold_body()),
        "hold with Idempotency-Key": lambda: c.post(
            "/v1/holds", json=hold_body(), headers={"Idempotency-Key": "paused-1"}
        ),
        "stock set": lambda: c.put(f"/v1/stock/{SKU}/dc", json={"on_hand": 500}),
        "readyz": lambda: c.get("/readyz"),
    }


async def while_unavailable(c: httpx.AsyncClient, kinds: list[str]) -> dict[str, float]:
    """Each kind of request, together with a burst of holds three times the connection pool
    (so most wait for a connection first): each must answer 503 within 2 s. Returns the
    slowest time per kind."""
    calls = probes(c)
    kind_results, burst = await asyncio.gather(
        asyncio.gather(*(timed(calls[name]()) for name in kinds)),
        asyncio.gather(*(timed(calls["hold"]()) for _ in range(3 * POOL))),
    )
    slowest: dict[str, float] = {}
    for name, (elapsed, r) in zip(kinds, kind_results, strict=True):
        assert_store_unavailable(r)
        slowest[name] = elapsed
    for _, r in burst:
        assert_store_unavailable(r)
    slowest[f"burst of {3 * POOL} holds"] = max(elapsed for elapsed, _ in burst)
    return slowest


async def until_served(c: httpx.AsyncClient, since: float) -> tuple[float, float]:
    """Seconds from `since` until availability answers 200, and until /readyz is green."""
    served = ready = None
    while served is None or ready is None:
        now = time.monotonic()
        assert now - since < 10, "the service did not recover"
        if served is None and (await c.get(f"/v1/availability/{SKU}")).status_code == 200:
            served = time.monotonic() - since
        if ready is None and (await c.get("/readyz")).status_code == 200:
            ready = time.monotonic() - since
        await asyncio.sleep(0.01)
    return served, ready


async def no_error_burst(c: httpx.AsyncClient) -> None:
    """Straight after recovery every request succeeds: no stale pooled connection fails."""
    replies = await asyncio.gather(
        *(c.post("/v1/holds", json=hold_body()) for _ in range(4 * POOL))
    )
    assert [r.status_code for r in replies] == [201] * (4 * POOL), [r.text for r in replies]


async def test_a_stopped_store_gives_503_within_2_s_and_service_recovers_within_1_s(
    paused_store: EmbeddedStore, start_service: Any
) -> None:
    service = start_service(
        OMNISTOCK_REDIS_URL=paused_store.url,
        OMNISTOCK_REDIS_MAX_CONNECTIONS=str(POOL),
        OMNISTOCK_IDEMPOTENCY_LEASE_SECONDS="2",
    )
    seed_sync(service.base_url, [SKU], on_hand=1000)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as c:
        assert (await c.post("/v1/holds", json=hold_body())).status_code == 201

        os.kill(paused_store.pid or 0, signal.SIGSTOP)
        slowest = await while_unavailable(c, list(probes(c)))
        os.kill(paused_store.pid or 0, signal.SIGCONT)
        served, ready = await until_served(c, time.monotonic())
        await no_error_burst(c)

        # The keyed hold sent while paused may have run when the store woke up: its retry
        # answers the one hold, never a second.
        retry = await c.post("/v1/holds", json=hold_body(), headers={"Idempotency-Key": "paused-1"})
        while retry.status_code == 409:  # its claim outlives the paused attempt by the lease
            await asyncio.sleep(0.25)
            retry = await c.post(
                "/v1/holds", json=hold_body(), headers={"Idempotency-Key": "paused-1"}
            )
        assert retry.status_code == 201, retry.text

    print(
        f"\n[SIGSTOP] time to 503 (s): { {k: round(v, 3) for k, v in slowest.items()} }; "
        f"after SIGCONT: served in {served:.3f} s, /readyz green in {ready:.3f} s"
    )
    assert max(slowest.values()) < 2.0, slowest
    assert served < 1.0 and ready < 1.0, (served, ready)
    redis = Redis.from_url(paused_store.url, decode_responses=True)
    report = await audit(redis)
    await redis.aclose()
    assert report.clean, summary(report)


async def test_a_write_pause_gives_503_to_writes_within_2_s_while_reads_go_on(
    paused_store: EmbeddedStore, start_service: Any
) -> None:
    # CLIENT PAUSE WRITE is what a failover or a maintenance step does: writes wait, reads
    # (the availability script is flagged no-writes) are served.
    service = start_service(
        OMNISTOCK_REDIS_URL=paused_store.url, OMNISTOCK_REDIS_MAX_CONNECTIONS=str(POOL)
    )
    seed_sync(service.base_url, [SKU], on_hand=1000)
    admin = Redis.from_url(paused_store.url)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as c:
        await admin.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
        try:
            slowest = await while_unavailable(c, ["hold", "hold with Idempotency-Key", "stock set"])
            read = await probes(c)["availability"]()
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        unpaused = time.monotonic()
        while (r := await probes(c)["hold"]()).status_code != 201:
            assert time.monotonic() - unpaused < 10, r.text
        served = time.monotonic() - unpaused
        await no_error_burst(c)
    await admin.aclose()
    print(
        f"\n[CLIENT PAUSE WRITE] time to 503 (s): { {k: round(v, 3) for k, v in slowest.items()} }"
        f"; reads during the pause: {read.status_code}; after CLIENT UNPAUSE: holds served in "
        f"{served:.3f} s"
    )
    assert read.status_code == 200, read.text
    assert max(slowest.values()) < 2.0, slowest
    assert served < 1.0, served
