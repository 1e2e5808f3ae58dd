"""kill -9 of the store under concurrent hold traffic from a real `omnistock serve`.

The store runs with `appendonly yes` and `appendfsync always` (what `omnistock serve` gives its
embedded store), so a write is on disk before the script's reply leaves the server, and the
service acknowledges a hold only after that reply.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from app.store.embedded import EmbeddedStore
from tests.faults.support import (
    Traffic,
    audit,
    check_acknowledged,
    fault_skus,
    half_applied,
    hold_records,
    restart_store,
    retry_unacknowledged,
    seed_sync,
    summary,
    wait_no_pending,
    wait_ready,
)

pytestmark = pytest.mark.fault


async def test_every_acknowledged_hold_survives_a_store_kill_and_retries_apply_exactly_once(
    tmp_path: Path, start_service: Any
) -> None:
    store = EmbeddedStore(tmp_path / "store", fsync="always", supervise=False)
    store.start()
    redis: Redis | None = None
    try:
        # A killed request's Idempotency-Key claim blocks retries until its lease runs out
        # (30 s by default): 2 s keeps the test short.
        service = start_service(
            OMNISTOCK_REDIS_URL=store.url, OMNISTOCK_IDEMPOTENCY_LEASE_SECONDS="2"
        )
        skus = fault_skus()
        seed_sync(service.base_url, skus)

        traffic = Traffic(service.base_url, skus, clients=12)
        traffic.start()
        # The kill meets live traffic: after 50 acknowledged holds, not after a fixed time (on
        # a contended machine the clients' first holds once came 2.7 s after their start).
        await traffic.flowing(acknowledged=50)
        os.kill(store.pid or 0, signal.SIGKILL)
        await traffic.failing()  # traffic goes on against the dead store: 503s
        await traffic.stop()

        store = restart_store(store)
        ready_after = await wait_ready(service.base_url)
        redis = Redis.from_url(store.url, decode_responses=True)

        # 1. Straight after the restart: every acknowledged hold is there, and the counters,
        # indexes and events agree with the hold records (parts of interrupted carts are
        # still `pending`: they count until their deadline, as designed).
        records = await hold_records(redis)
        lost = check_acknowledged(traffic.acknowledged, records)
        report = await audit(redis)
        applied_unacknowledged = len(set(records) - set(traffic.acknowledged))

        # 2. Clients retry what was not acknowledged, with the same Idempotency-Key: each
        # request ends applied exactly once, interrupted carts are completed, not doubled.
        retries = await retry_unacknowledged(traffic)
        await wait_no_pending(redis)
        after = await hold_records(redis)
        lost_after = check_acknowledged({**traffic.acknowledged, **traffic.retried}, after)
        report_after = await audit(redis)

        print(
            f"\n[store kill -9, appendfsync always] acknowledged={len(traffic.acknowledged)} "
            f"found after restart={len(traffic.acknowledged) - len(lost)}; "
            f"unacknowledged={len(traffic.unacknowledged)} (statuses {traffic.statuses}), "
            f"of which already in the store={applied_unacknowledged}; "
            f"service ready {ready_after:.3f} s after the store restarted; "
            f"retries with the same Idempotency-Key: {retries}; "
            f"hold records now={len(after)} for {len(traffic.acknowledged)} + "
            f"{len(traffic.retried)} acknowledged"
        )
        assert traffic.acknowledged and traffic.unacknowledged  # the kill hit live traffic
        assert not lost, lost[:10]
        # A cart whose coordinator died between confirming its home part and the others is
        # reported unsettled (fixable; a read, a retry or the reaper settles it): only carts
        # no client was told about may be so, and nothing else may be off.
        assert all(
            f.kind == "hold_parts_unsettled" and f.hold not in traffic.acknowledged
            for f in report.findings
        ), summary(report)
        assert retries == ({"201": len(traffic.unacknowledged)} if traffic.unacknowledged else {})
        assert not lost_after, lost_after[:10]
        assert len(after) == len(traffic.acknowledged) + len(traffic.retried)  # nothing twice
        assert not half_applied(after), half_applied(after)
        assert report_after.clean, summary(report_after)
    finally:
        if redis is not None:
            await redis.aclose()
        store.stop()
