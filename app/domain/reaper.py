"""The reaper: marks lapsed holds `expired` and returns their units.

Availability never waits for it (scripts ignore lapsed lines on their own); it keeps the
counters and hold records tidy and emits the `hold.expired` events. Every worker runs one.
Each pass reads the due holds, due by each partition's own store clock (`hold_due.lua`), with
the calls of one store node sent together (one write on a single server), keeps at most
`batch`, and expires each with `hold_expire.lua`, which re-checks the hold atomically, so two
workers reaping the same hold expire it once. Nodes fail apart: a dead cluster primary costs
only its own partitions' expiry, which resumes after its failover. A part of a multi-partition
hold still pending past its deadline is not expired but settled to its home part's decision
(`settle_pending`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from app.domain.holds import HoldService
from app.domain.tasks import cancel_and_wait
from app.store.calls import HoldStatus, Reply
from app.store.cluster import partitions_by_node

log = logging.getLogger("omnistock.reaper")


class Reaper:
    def __init__(
        self,
        redis: Redis,
        holds: HoldService,
        interval_seconds: float,
        batch: int,
        on_expired: Callable[[int], None] = lambda n: None,
        sweep: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._redis = redis
        self._holds = holds
        self._sweep = sweep  # after each pass: HoldLister.sweep (the holds listing index)
        self._interval = interval_seconds
        self._batch = batch
        self._on_expired = on_expired
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """One pass; returns how many holds this pass expired."""
        groups = await partitions_by_node(self._redis)
        scans = await asyncio.gather(
            *(self._due(group) for group in groups), return_exceptions=True
        )
        due: list[tuple[int, str]] = []
        for group, scan in zip(groups, scans, strict=True):
            if isinstance(scan, BaseException):
                self._failed(f"reading partitions {group[0]}..{group[-1]}", scan)
            else:
                due.extend(scan)
        due = due[: self._batch]
        replies = await asyncio.gather(
            *(self._holds.expire_part(hold_id, p) for p, hold_id in due),
            return_exceptions=True,
        )
        expired = 0
        overdue: list[tuple[int, str]] = []
        for due_part, reply in zip(due, replies, strict=True):
            if isinstance(reply, BaseException):
                self._failed("expiring a hold", reply)
            elif reply[0] == Reply.EXPIRED:
                expired += 1
            elif reply == [Reply.NOT_DUE, HoldStatus.PENDING]:
                overdue.append(due_part)
        await self.settle_pending(overdue)
        if expired:
            self._on_expired(expired)
        return expired

    async def _due(self, partitions: list[int]) -> list[tuple[int, str]]:
        """The due holds of `partitions` (all on one node), by that node's clock: the calls go
        out together (the multiplexer sends them in one write; a cluster routes each to its
        primary), and a failure fails this node's group only."""
        replies = await asyncio.gather(*(self._holds.due(p, self._batch) for p in partitions))
        return [(p, hold_id) for p, ids in zip(partitions, replies, strict=True) for hold_id in ids]

    @staticmethod
    def _failed(what: str, exc: BaseException) -> None:
        if not isinstance(exc, Exception):
            raise exc  # cancellation and the like are not a node's failure
        log.warning("reaper: %s failed: %s", what, exc)

    async def settle_pending(self, due: list[tuple[int, str]]) -> None:
        """Parts still pending past their deadline (partition, hold id): each hold is settled
        to its home part's decision (HoldService.settle; app/domain/hold_parts.py). One hold's
        failure (its home part's node down) does not stop the others."""
        hold_ids = {hold_id: p for p, hold_id in due}
        results = await asyncio.gather(
            *(self._holds.settle(hold_id, seen_in=p) for hold_id, p in hold_ids.items()),
            return_exceptions=True,
        )
        for hold_id, result in zip(hold_ids, results, strict=True):
            if isinstance(result, Exception):
                log.warning("settling hold %s failed: %s", hold_id, result)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reaper")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while True:
            try:
                backlog = True
                while backlog:  # a full pass means more may be due: go on, yielding between
                    backlog = await self.run_once() >= self._batch
                    await asyncio.sleep(0)
                if self._sweep is not None:
                    await self._sweep()
            except Exception as exc:  # the store may be down; try again next interval
                log.warning("reaper pass failed: %s", exc)
            await asyncio.sleep(self._interval)
