"""One clock (issue 11, point 1): two real `omnistock serve` processes on one store, one of them
running 30 s ahead (libfaketime), decide every expiry exactly as one process would, because
every decision is made by the store's clock (lua/includes/clock.lua), never a host's."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from app import keys
from tests.api.helpers import parse_ts
from tests.conftest import seed, service_env

pytestmark = pytest.mark.slow

# Debian's multiarch path (x86_64-linux-gnu, aarch64-linux-gnu, ...).
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)
SKEW_SECONDS = 30
SKU = "skew-sku"
TTL = 3


def ahead_env() -> dict[str, str]:
    """A process whose wall clock runs SKEW_SECONDS ahead; monotonic time stays real, so
    asyncio's timers (and uvicorn's) behave."""
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"+{SKEW_SECONDS}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def wall_clock_of(env: dict[str, str]) -> float:
    """time.time() as a Python process started with `env` sees it."""
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return float(out.stdout)


def store_now(url: str) -> int:
    client = SyncRedis.from_url(url)
    try:
        seconds, micros = client.time()
        return int(seconds) * 1000 + int(micros) // 1000
    finally:
        client.close()


def audit_exit_code(url: str) -> int:
    """`omnistock audit` of the test's partition: 0 is clean."""
    audit = subprocess.run(
        [sys.executable, "-m", "app", "audit", "--partition", str(keys.partition_of(SKU))],
        env=service_env(OMNISTOCK_REDIS_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(audit.stdout, audit.stderr)
    return audit.returncode


def ms(ts: str) -> int:
    return int(parse_ts(ts).timestamp() * 1000)


@pytest.fixture
def skewed_pair(start_service: Any, store_url: str) -> tuple[str, str]:
    """Base URLs of two service processes on one store: `behind` (this host's clock) and
    `ahead` (SKEW_SECONDS ahead)."""
    if LIBFAKETIME is None:
        pytest.skip(
            "libfaketime is not installed (/usr/lib/*/faketime/libfaketime.so.1; Debian "
            "packages faketime and libfaketime, which `make test` installs when it can)"
        )
    skew = wall_clock_of(ahead_env()) - time.time()
    assert SKEW_SECONDS - 2 < skew < SKEW_SECONDS + 2, (
        f"libfaketime did not shift the clock: {skew}"
    )
    behind = start_service(OMNISTOCK_REDIS_URL=store_url)
    ahead = start_service(OMNISTOCK_REDIS_URL=store_url, **ahead_env())
    return behind.base_url, ahead.base_url


async def available(client: httpx.AsyncClient) -> int:
    r = await client.get(f"/v1/availability/{SKU}")
    assert r.status_code == 200, r.text
    return int(r.json()["available"])


async def test_processes_with_clocks_30s_apart_decide_expiry_as_one(
    skewed_pair: tuple[str, str], store_url: str
) -> None:
    behind_url, ahead_url = skewed_pair
    async with (
        httpx.AsyncClient(base_url=behind_url, timeout=10) as behind,
        httpx.AsyncClient(base_url=ahead_url, timeout=10) as ahead,
    ):
        await seed(behind, {(SKU, "dc"): 1})

        # 1 unit, held through the process that is behind, with a short TTL.
        r = await behind.post(
            "/v1/holds", json={"lines": [{"sku": SKU, "quantity": 1}], "ttl_seconds": TTL}
        )
        assert r.status_code == 201, r.text
        first = r.json()

        # Before it expires by the store's clock, the process 30 s ahead sees it held too:
        # the unit is not available there, and a second hold through it is refused.
        assert (await ahead.get(f"/v1/holds/{first['id']}")).json()["status"] == "active"
        assert await available(ahead) == 0
        assert await available(behind) == 0
        r = await ahead.post(
            "/v1/holds", json={"lines": [{"sku": SKU, "quantity": 1}], "ttl_seconds": 60}
        )
        assert r.status_code == 409, r.text  # it would be a second hold on the one unit

        # Once it has expired by the store's clock, both agree, whichever acts.
        wait_ms = ms(first["expires_at"]) - store_now(store_url) + 300
        await asyncio.sleep(max(0, wait_ms) / 1000)
        assert await available(behind) == 1
        assert await available(ahead) == 1
        for client in (behind, ahead):
            r = await client.post(f"/v1/holds/{first['id']}/commit")
            assert r.status_code == 409, r.text
            assert r.json()["code"] == "invalid_transition"

        # A second hold, through the process ahead, gets the unit, with expires_at by the
        # store's clock (not 30 s off), and the unit is never available twice.
        before = store_now(store_url)
        r = await ahead.post(
            "/v1/holds", json={"lines": [{"sku": SKU, "quantity": 1}], "ttl_seconds": 60}
        )
        after = store_now(store_url)
        assert r.status_code == 201, r.text
        second = r.json()
        assert before + 60_000 <= ms(second["expires_at"]) <= after + 60_000
        assert before <= ms(second["created_at"]) <= after
        assert await available(behind) == 0
        assert await available(ahead) == 0

        # extend through the process ahead: the store's now + the TTL, too.
        before = store_now(store_url)
        r = await ahead.post(f"/v1/holds/{second['id']}/extend", json={"ttl_seconds": 120})
        after = store_now(store_url)
        assert r.status_code == 200, r.text
        assert before + 120_000 <= ms(r.json()["expires_at"]) <= after + 120_000
        assert (await behind.post(f"/v1/holds/{second['id']}/commit")).status_code == 200

    assert audit_exit_code(store_url) == 0
