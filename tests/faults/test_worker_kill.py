"""kill -9 of one uvicorn worker of a 2-worker `omnistock serve` under hold traffic.

Every change is one Lua script, so a worker dying mid-request leaves either the whole change or
none of it; a multi-partition cart it was reserving is left `pending` (it stops counting at its
deadline, or a retry with the same Idempotency-Key completes it). uvicorn's supervisor starts a
new worker in place of the dead one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import psutil
import pytest
from redis.asyncio import Redis

from tests.faults.support import (
    Traffic,
    audit,
    check_acknowledged,
    fault_skus,
    half_applied,
    hold_records,
    retry_unacknowledged,
    seed_sync,
    summary,
    wait_no_pending,
)

pytestmark = pytest.mark.fault


def worker_pids(service_pid: int) -> set[int]:
    """uvicorn's worker processes: the multiprocessing children of the serve process."""
    pids = set()
    for child in psutil.Process(service_pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:  # gone, or a zombie not reaped yet: not a worker any more
            pass
    return pids


async def test_killing_one_worker_leaves_no_partial_hold_and_the_other_serves_on(
    store_url: str, redis: Redis, start_service: Any
) -> None:
    service = start_service(
        OMNISTOCK_REDIS_URL=store_url,
        OMNISTOCK_WORKERS="2",
        OMNISTOCK_IDEMPOTENCY_LEASE_SECONDS="2",  # the dead worker's claims run out quickly
    )
    workers = worker_pids(service.proc.pid)
    assert len(workers) == 2, workers
    skus = fault_skus()
    seed_sync(service.base_url, skus)

    traffic = Traffic(service.base_url, skus, clients=12)
    traffic.start()
    await traffic.flowing()  # live traffic, however slow the machine
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    replaced_after = None  # traffic runs 2 s on; uvicorn's supervisor gets up to 15 s
    while (elapsed := time.monotonic() - killed_at) < 2 or (
        replaced_after is None and elapsed < 15
    ):
        now_workers = worker_pids(service.proc.pid)
        if replaced_after is None and len(now_workers) == 2 and victim not in now_workers:
            replaced_after = round(elapsed, 2)
        await asyncio.sleep(0.1)
    await traffic.stop()

    # The other worker went on answering while the dead one was replaced.
    served_after_kill = [a for a in traffic.answers if a[0] > killed_at and a[2] == 201]
    first_201 = min((a[1] for a in served_after_kill), default=float("inf")) - killed_at

    retries = await retry_unacknowledged(traffic)
    await wait_no_pending(redis)
    records = await hold_records(redis)
    acknowledged = {**traffic.acknowledged, **traffic.retried}
    lost = check_acknowledged(acknowledged, records)
    report = await audit(redis)
    print(
        f"\n[worker kill -9, 2 workers] acknowledged={len(traffic.acknowledged)} "
        f"(after the kill: {len(served_after_kill)}, first {first_201:.3f} s after it); "
        f"unacknowledged={len(traffic.unacknowledged)} (no HTTP answer: {traffic.errors}, "
        f"statuses {traffic.statuses}); retries with the same Idempotency-Key: {retries}; "
        f"found={len(acknowledged) - len(lost)} of {len(acknowledged)}; "
        f"uvicorn replaced the worker after {replaced_after} s; audit clean={report.clean}"
    )
    assert served_after_kill and first_201 < 1.0  # the surviving worker served on
    assert replaced_after is not None  # uvicorn's supervisor restarts a dead worker
    assert retries == ({"201": len(traffic.unacknowledged)} if traffic.unacknowledged else {})
    assert not lost, lost[:10]
    assert len(records) == len(acknowledged)  # no request applied twice
    assert not half_applied(records), half_applied(records)
    assert report.clean, summary(report)
