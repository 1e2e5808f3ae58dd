"""`omnistock audit`: do the counters, indexes and event log agree with the hold records?

For each partition the audit reads, in one atomic step (`audit_snapshot.lua`), every hold
record, position, hold index and the newest event of each position, and judges them with the
rules of app/domain/audit_rules.py. Across partitions it checks that every part of an open
multi-partition hold exists and that all parts agree on the status.

Keys are found with SCAN (one pass over the keyspace, matching partition keys only; on a
cluster redis-py scans every primary), never KEYS. Anything created after the scan is named by
an index or the skus set the snapshot reads, and the script answers `stale` so the audit
passes the new keys and reads again.

`repair` (audit_repair.lua, per partition) recomputes counters and indexes from the hold records
inside the script, so it cannot undo a change that raced it. Parts of a multi-partition hold
that do not follow their home part's decision (app/domain/hold_parts.py) are settled to it
(`settle_parts`). Event mismatches, unreadable records and other disagreeing parts (a part
missing, or one that cannot follow) are reported, never repaired: they need a person.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from redis.asyncio import Redis

from app import keys
from app.domain.audit_rules import (
    OPEN,
    Finding,
    Snapshot,
    as_list,
    check_partition,
)
from app.domain.audit_supply import check_supply
from app.domain.clock import Clock, StoreClock
from app.domain.hold_parts import unsettled
from app.store import calls
from app.store.calls import Call, Reply
from app.store.scripts import Scripts

__all__ = ["AuditReport", "Auditor", "Finding", "Inventory", "Snapshot", "check_partition"]

MAX_STALE_RETRIES = 10
_KEY = re.compile(
    r"^" + re.escape(keys.PREFIX) + r":\{(\d{3})\}:(hold|pos|hx|ho|sup|px):(.+)$", re.DOTALL
)


@dataclass
class Inventory:
    """What SCAN found of one partition: hold ids and skus (with a position or hold index)."""

    holds: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    supply_skus: set[str] = field(default_factory=set)  # with supply lines or promises
    # with an `ho` index, from a store written before the one line index (keys.py)
    legacy_skus: set[str] = field(default_factory=set)


@dataclass
class PartitionAudit:
    partition: int
    holds: int
    positions: int
    events_checked: int
    findings: list[Finding]
    multi_part: dict[str, dict[str, str]]  # hold id -> this partition's record (if several)


@dataclass
class AuditReport:
    partitions: int = 0
    holds: int = 0
    positions: int = 0
    events_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "partitions": self.partitions,
            "holds": self.holds,
            "positions": self.positions,
            "events_checked": self.events_checked,
            "findings": [f.as_dict() for f in self.findings],
        }


Progress = Callable[[int, int, int], None]  # partitions done, of total, findings so far


class Auditor:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        clock: Clock | None = None,
        max_events: int = 10_000,
        scan_count: int = 1000,
        parts_grace: float = 2.0,
    ) -> None:
        self._redis = redis
        self._parts_grace = parts_grace
        self._scripts = scripts
        self._clock = clock or StoreClock()  # lapses are decided by the store's clock
        self._max_events = max_events
        self._scan_count = scan_count

    async def discover(self, partitions: Iterable[int]) -> dict[int, Inventory]:
        """Hold ids and skus per partition, in one SCAN pass over partition keys."""
        wanted = set(partitions)
        found = {p: Inventory() for p in sorted(wanted)}
        pattern = f"{keys.PREFIX}:{{[0-9][0-9][0-9]}}:*"
        async for key in self._redis.scan_iter(match=pattern, count=self._scan_count):
            match = _KEY.match(key)
            if not match or int(match.group(1)) not in wanted:
                continue
            inv = found[int(match.group(1))]
            if match.group(2) == "hold":
                inv.holds.add(match.group(3))
            elif match.group(2) in ("sup", "px"):
                inv.supply_skus.add(match.group(3))
            elif match.group(2) == "ho":
                inv.legacy_skus.add(match.group(3))
            else:
                inv.skus.add(match.group(3))
        return found

    async def _call(
        self, p: int, build: Callable[[list[str], list[str]], Call], inv: Inventory
    ) -> Any:
        """Call an audit script (`build(hold_ids, skus)`), widening the inventory while it
        answers `stale`."""
        for _ in range(MAX_STALE_RETRIES):
            reply = await self._scripts.run(build(sorted(inv.holds), sorted(inv.skus)))
            if reply[0] != Reply.STALE:
                return reply[1]
            missing = orjson.loads(reply[1])
            inv.holds.update(as_list(missing["holds"]))
            inv.skus.update(as_list(missing["skus"]))
        raise RuntimeError(f"partition {p} kept changing under the audit; try again")

    async def snapshot(self, p: int, inv: Inventory) -> Snapshot:
        offset = self._clock.offset_ms()
        raw = await self._call(
            p, lambda ids, skus: calls.audit_snapshot(p, ids, skus, self._max_events, offset), inv
        )
        return Snapshot.parse(raw)

    async def audit_partition(self, p: int, inv: Inventory) -> PartitionAudit:
        snap = await self.snapshot(p, inv)
        multi = {
            hold_id: record
            for hold_id, record in snap.holds.items()
            if "," in record.get("parts", "")
        }
        return PartitionAudit(
            partition=p,
            holds=len(snap.holds),
            positions=sum(len(f) for f in snap.positions.values()),
            events_checked=len(snap.events),
            findings=check_partition(p, snap)
            + self._check_legacy(p, inv)
            + await self._check_supply(p, inv),
            multi_part=multi,
        )

    @staticmethod
    def _check_legacy(p: int, inv: Inventory) -> list[Finding]:
        """`ho` indexes left by a store written before the one line index: unread, dropped by
        the repair (docs/operations.md "Upgrades")."""
        return [
            Finding(
                p,
                "index_legacy",
                f"ho:{sku}: a second line index from before the one line index (unread)",
                True,
                sku=sku,
                index="ho",
            )
            for sku in sorted(inv.legacy_skus)
        ]

    async def _check_supply(self, p: int, inv: Inventory) -> list[Finding]:
        """Supply lines and promises (audit_supply.py), read in one step of their own."""
        if not inv.supply_skus:
            return []
        offset = self._clock.offset_ms()
        supply = Inventory(skus=set(inv.supply_skus))
        raw = await self._call(
            p, lambda ids, skus: calls.audit_supply(p, ids, skus, offset), supply
        )
        return check_supply(p, raw)

    async def audit(
        self, partitions: Iterable[int] | None = None, progress: Progress | None = None
    ) -> AuditReport:
        chosen = sorted(set(range(keys.PARTITIONS) if partitions is None else partitions))
        inventories = await self.discover(chosen)
        report = AuditReport(partitions=len(chosen))
        parts: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
        for done, p in enumerate(chosen, 1):
            result = await self.audit_partition(p, inventories[p])
            report.holds += result.holds
            report.positions += result.positions
            report.events_checked += result.events_checked
            report.findings += result.findings
            for hold_id, record in result.multi_part.items():
                parts[hold_id][p] = record
            if progress:
                progress(done, len(chosen), len(report.findings))
        report.findings += await self._check_parts(parts, set(chosen))
        return report

    async def _check_parts(
        self, seen: dict[str, dict[int, dict[str, str]]], audited: set[int]
    ) -> list[Finding]:
        """Parts of one multi-partition hold must all exist (while it is open) and agree.
        A transition moves the parts one after the other, so a disagreement may be one in
        flight: it is reported only if it is still there, unchanged, after `parts_grace`
        (longer than any request may run)."""
        suspects = [h for h, by_p in seen.items() if self._parts_problem(by_p, audited, h)]
        if not suspects:
            return []
        first = {h: await self._read_parts(h, seen[h]) for h in suspects}
        suspects = [h for h in suspects if self._parts_problem(first[h], set(first[h]), h)]
        if suspects:
            await asyncio.sleep(self._parts_grace)
        findings: list[Finding] = []
        for hold_id in suspects:
            again = await self._read_parts(hold_id, seen[hold_id])
            problem = self._parts_problem(again, set(again), hold_id)
            if problem and again == first[hold_id]:
                kind, message = problem
                fixable = kind == "hold_parts_unsettled"
                findings.append(Finding(min(again), kind, message, fixable, hold=hold_id))
        return findings

    async def _read_parts(
        self, hold_id: str, known: dict[int, dict[str, str]]
    ) -> dict[int, dict[str, str]]:
        """Every part of the hold as it is now: partition -> record ({} when missing)."""
        partitions = [int(x) for x in next(iter(known.values()))["parts"].split(",")]
        offset = self._clock.offset_ms()  # "lapsed" by each part's store clock
        flats = await asyncio.gather(
            *(self._scripts.run(calls.hold_read(p, hold_id, offset)) for p in partitions)
        )
        records = [dict(zip(flat[::2], flat[1::2], strict=True)) for flat in flats]
        return dict(zip(partitions, records, strict=True))

    def _parts_problem(
        self, by_p: dict[int, dict[str, str]], audited: set[int], hold_id: str
    ) -> tuple[str, str] | None:
        by_p = {p: record for p, record in by_p.items() if record}  # {}: a missing part
        if not by_p:
            return None

        def effective(record: dict[str, str]) -> str:
            # "lapsed": by the store's clock (audit_snapshot.lua, hold_read.lua); the reaper
            # will mark it
            return "expired" if record.get("lapsed") else record.get("status", "")

        statuses = {p: effective(r) for p, r in by_p.items()}
        ordered = [int(x) for x in next(iter(by_p.values())).get("parts", "").split(",") if x]
        if ordered and set(ordered) <= audited and unsettled([by_p.get(p, {}) for p in ordered]):
            return (
                "hold_parts_unsettled",
                f"hold {hold_id}: parts {statuses} do not follow the home part's decision "
                "(settled by the reaper, a read, or --fix)",
            )
        if "pending" in statuses.values():
            return None  # a reservation in flight: its home part decides it
        listed = {int(x) for x in next(iter(by_p.values())).get("parts", "").split(",") if x}
        missing = sorted((listed & audited) - set(by_p))
        if missing and set(statuses.values()) & OPEN:
            return (
                "hold_part_missing",
                f"hold {hold_id}: open ({statuses}) but its part in partition(s) {missing} "
                "does not exist",
            )
        if len(set(statuses.values())) > 1:
            return "hold_parts_disagree", f"hold {hold_id}: parts disagree: {statuses}"
        return None

    async def settle_parts(
        self, findings: list[Finding], settle: Callable[[str], Awaitable[Any]]
    ) -> list[dict[str, Any]]:
        """Settle every hold found `hold_parts_unsettled` to its home part's decision
        (HoldService.settle): before `repair`, which then finds counters that agree."""
        changes: list[dict[str, Any]] = []
        for f in findings:
            if f.kind == "hold_parts_unsettled" and f.hold:
                changes.append({"kind": "settled", "hold": f.hold, "status": await settle(f.hold)})
        return changes

    async def repair(
        self,
        partitions: Iterable[int],
        retention_ms: int,
        channels_arg: bytes,
        progress: Progress | None = None,
    ) -> list[dict[str, Any]]:
        """Run audit_repair.lua on each partition; returns every change it made."""
        chosen = sorted(set(partitions))
        inventories = await self.discover(chosen)
        changes: list[dict[str, Any]] = []
        for done, p in enumerate(chosen, 1):
            repair = partial(
                calls.audit_repair,
                p,
                retention_ms=retention_ms,
                channels=channels_arg,
                offset_ms=self._clock.offset_ms(),
                legacy=sorted(inventories[p].legacy_skus),
            )
            raw = await self._call(p, repair, inventories[p])
            changes += [{"partition": p, **c} for c in as_list(orjson.loads(raw))]
            if progress:
                progress(done, len(chosen), len(changes))
        return changes
