"""Positions and available-to-promise."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from app import keys
from app.domain.channel_rules import channel_figure, has_rules
from app.domain.clock import Clock, store_ms
from app.domain.config import ConfigService
from app.domain.idempotency import Claim, checked, idem_for, sku_partition
from app.domain.kits import expand, kit_available
from app.domain.models import Channel
from app.settings import Settings
from app.store import batch, calls
from app.store.mux import Multiplexer
from app.store.scripts import Scripts

PositionDict = dict[str, Any]

# Hold lines per sku a batch read takes with their scores (earliest to stop counting first):
# more lapsed lines than this (the reaper is behind) send the partition to the script.
_LAPSED_PAGE = 8


def stock_status(available: int, threshold: int) -> str:
    if available <= 0:
        return "out_of_stock"
    if available <= threshold:
        return "low_stock"
    return "in_stock"


def _view_row(found: Any, lapsed: list[str]) -> list[Any]:
    """availability.lua's row from raw reads: `found` (location, "on_hand:held:committed:
    safety_stock" or None) pairs and the sku's lapsed hold lines ("hold|location|qty"), whose
    units no longer count (position.lua's pos_view)."""
    expired: dict[str, int] = {}
    for member in lapsed:
        rest, _, qty = member.rpartition("|")
        location = rest.rpartition("|")[2]
        expired[location] = expired.get(location, 0) + int(qty)
    row: list[Any] = []
    for location, value in found:
        if value is None:
            continue
        on_hand, held, committed, safety = (int(x) for x in value.split(":"))
        held -= expired.get(location, 0)
        available = max(0, on_hand - held - committed - safety)
        row += (location, on_hand, held, committed, safety, available)
    return row


def _scored(reply: Any) -> list[tuple[str, float]]:
    """A ZRANGE ... WITHSCORES reply: [member, score] pairs (RESP3) or a flat list (RESP2)."""
    if reply and isinstance(reply[0], list):
        return [(member, float(score)) for member, score in reply]
    return [(member, float(score)) for member, score in zip(reply[::2], reply[1::2], strict=True)]


def rows_to_positions(row: list[Any]) -> list[PositionDict]:
    return [
        {
            "location": row[i],
            "on_hand": row[i + 1],
            "held": row[i + 2],
            "committed": row[i + 3],
            "safety_stock": row[i + 4],
            "available": row[i + 5],
        }
        for i in range(0, len(row), 6)
    ]


@dataclass(eq=False)  # a service, compared by identity
class StockService:
    _redis: Redis
    _scripts: Scripts
    _config: ConfigService
    _settings: Settings
    _clock: Clock
    _mux: Multiplexer | None = None

    @property
    def event_retention_ms(self) -> int:
        """What scripts keep of their stream (MINID = their store time - this)."""
        return self._settings.event_retention_seconds * 1000

    async def position_partition(self, claim: Claim | None, sku: str, location: str) -> int:
        """The partition of a change to the position (`sku`, `location`): a keyed request's
        claim lives in its slot from here on, so an unknown location's 404 is stored there."""
        p = sku_partition(claim, sku)
        await self._config.location(location)
        return p

    async def set_position(
        self,
        sku: str,
        location: str,
        on_hand: int,
        safety_stock: int | None,
        claim: Claim | None,
    ) -> PositionDict:
        """Set a position; a keyed request's claim lives in the sku's partition."""
        p = await self.position_partition(claim, sku, location)
        call = calls.stock_set(
            sku=sku,
            location=location,
            on_hand=on_hand,
            safety_stock=safety_stock,
            retention_ms=self.event_retention_ms,
            channels=self._config.channels_arg([location], [sku]),
            op_digest=claim.digest if claim else None,
            marker_ttl_seconds=self._settings.idempotency_ttl_seconds,
            offset_ms=self._clock.offset_ms(),
            idem=idem_for(claim, keys.tag(p)),
        )
        reply = await self._scripts.run(call)
        return rows_to_positions([location, *checked(claim, reply)[1:]])[0]

    async def positions(self, sku: str) -> list[PositionDict]:
        (row,) = await self.read_rows([sku], [])
        return sorted(rows_to_positions(row), key=lambda r: r["location"])

    async def positions_of(self, skus: list[str]) -> list[list[PositionDict]]:
        """Every position of each sku, in the order asked, in one round trip (export)."""
        rows = await self.read_rows(skus, [])
        return [sorted(rows_to_positions(row), key=lambda r: r["location"]) for row in rows]

    async def read_rows(self, skus: list[str], locations: list[str]) -> list[list[Any]]:
        """Rows of the availability script for each sku, in one round trip to the store:
        one script call per partition, pipelined."""
        offset = self._clock.offset_ms()
        if len(skus) == 1:  # a product page: one script call, nothing to group
            (sku,) = skus
            p = keys.partition_of(sku)
            result = await self._scripts.run(calls.availability(p, skus, locations, offset))
            return [result[0]]
        by_partition: dict[int, list[str]] = defaultdict(list)
        for sku in dict.fromkeys(skus):
            by_partition[keys.partition_of(sku)].append(sku)
        rows: dict[str, list[Any]] = {}
        if len(by_partition) == 1:
            ((p, group),) = by_partition.items()
            result = await self._scripts.run(calls.availability(p, group, locations, offset))
            rows.update(zip(group, result, strict=True))
        else:
            for p_groups, results in await self._pipelined(by_partition, offset, locations):
                rows.update(zip(p_groups, results, strict=True))
        return [rows[sku] for sku in skus]

    async def _pipelined(
        self, by_partition: dict[int, list[str]], offset: int, locations: list[str]
    ) -> list[tuple[list[str], list[Any]]]:
        run = self._scripts.run
        if self._settings.redis_cluster:
            # A cluster client refuses EVALSHA in pipelines: one concurrent call per partition
            # (redis-py routes each to its node), still one network wait in total.
            results = await asyncio.gather(
                *(
                    run(calls.availability(p, group, locations, offset))
                    for p, group in by_partition.items()
                )
            )
            return list(zip(by_partition.values(), results, strict=True))
        out, unsure = await self._transaction(by_partition, offset, locations)
        if unsure:  # a sku with a page of lapsed lines: the script reads them all
            redone = await asyncio.gather(
                *(run(calls.availability(p, by_partition[p], locations, offset)) for p in unsure)
            )
            for p, rows in zip(unsure, redone, strict=True):
                out[p] = (by_partition[p], rows)
        return list(out.values())

    async def _transaction(
        self, by_partition: dict[int, list[str]], offset: int, locations: list[str]
    ) -> tuple[dict[int, tuple[list[str], list[Any]]], list[int]]:
        """The reads of availability.lua as plain commands in one MULTI/EXEC: as atomic as the
        script (one server, every sku at one instant), without a script call per partition,
        which is what a many-sku read spends its store time on (docs/benchmarks.md).

        The store's TIME, read in the same transaction, decides which hold lines lapsed: each
        sku's earliest `_LAPSED_PAGE` lines come with their scores. A sku whose whole page
        lapsed may have more: its partition is returned as unsure, for the script to read."""
        commands: list[tuple[str | int, ...]] = [("TIME",)]
        for p, group in by_partition.items():
            for sku in group:
                if locations:
                    commands.append(("HMGET", keys.position(p, sku), *locations))
                else:
                    commands.append(("HGETALL", keys.position(p, sku)))
                commands.append(
                    (
                        "ZRANGEBYSCORE",
                        keys.hold_expiry_by_sku(p, sku),
                        "-inf",
                        "+inf",
                        "WITHSCORES",
                        "LIMIT",
                        0,
                        _LAPSED_PAGE,
                    )
                )
        replies = iter(await batch.transaction(self._redis, commands, self._mux))
        now = store_ms(next(replies)) + offset
        out: dict[int, tuple[list[str], list[Any]]] = {}
        unsure: list[int] = []
        for p, group in by_partition.items():
            rows = []
            for _ in group:
                raw, page = next(replies), _scored(next(replies))
                if len(page) == _LAPSED_PAGE and page[-1][1] <= now:
                    unsure.append(p)
                if locations:
                    found: Any = zip(locations, raw, strict=True)
                else:  # HGETALL: a map (RESP3) or a flat field, value list (RESP2)
                    pairs = zip(raw[::2], raw[1::2], strict=True) if isinstance(raw, list) else ()
                    found = raw.items() if isinstance(raw, dict) else pairs
                rows.append(_view_row(found, [member for member, score in page if score <= now]))
            out[p] = (group, rows)
        return out, list(dict.fromkeys(unsure))

    async def units(
        self, skus: list[str], wanted: list[str], nothing: bool = False
    ) -> dict[str, dict[str, int]]:
        """{sku: {location: available}} at `wanted` (none: wherever stocked) for skus and kits
        (app/domain/kits.py: from their base components), in one round trip to the store.
        `nothing`: no location is in scope (no read)."""
        kits = self._config.kits
        parts = {sku: expand(kits, sku) for sku in skus if sku in kits}
        reads = list(dict.fromkeys(s for sku in skus for s in (parts.get(sku) or [sku])))
        rows: list[list[Any]] = (
            [[] for _ in reads] if nothing else await self.read_rows(reads, wanted)
        )
        found = {
            sku: {row[i]: row[i + 5] for i in range(0, len(row), 6)}
            for sku, row in zip(reads, rows, strict=True)
        }
        return {
            sku: kit_available(parts[sku], found) if sku in parts else found[sku] for sku in skus
        }

    async def availability(
        self, skus: list[str], channel: Channel | None, locations: list[str] | None
    ) -> list[dict[str, Any]]:
        """Available-to-promise for each sku: the channel's eligible locations (or the given
        ones, or every location the sku is stocked at), summed; for a channel with rules, its
        figure of that sum (channel_rules.channel_figure)."""
        wanted: list[str] = []
        if channel is not None:
            wanted = list(channel.locations)
            if locations is not None:
                allowed = set(locations)
                wanted = [loc for loc in wanted if loc in allowed]
        elif locations is not None:
            wanted = list(dict.fromkeys(locations))
        threshold = channel.low_stock_threshold if channel is not None else 0
        listed = channel is not None or locations is not None
        units = await self.units(skus, wanted, listed and not wanted)
        results = []
        for sku in skus:
            found = units[sku]
            total = sum(found.values())
            if channel is not None and has_rules(channel):
                # The channel's figure; no location shows more than it (a hold takes no more).
                total = channel_figure(channel, sku, total)
                found = {loc: min(n, total) for loc, n in found.items()}
            order = wanted if listed else sorted(found)
            per_location = [{"location": loc, "available": found.get(loc, 0)} for loc in order]
            results.append(
                {
                    "sku": sku,
                    "channel": channel.id if channel is not None else None,
                    "available": total,
                    "status": stock_status(total, threshold),
                    "locations": per_location,
                }
            )
        return results
