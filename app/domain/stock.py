"""Positions and available-to-promise."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis

from app import keys
from app.domain.channel_rules import channel_figure, has_rules
from app.domain.clock import Clock, iso, store_ms
from app.domain.config import ConfigService
from app.domain.idempotency import Claim, checked, idem_for, sku_partition
from app.domain.kits import expand, kit_available
from app.domain.models import Channel
from app.settings import Settings
from app.store import batch, calls
from app.store.mux import Multiplexer
from app.store.scripts import Scripts

PositionDict = dict[str, Any]
# A sku's read with its supply lines (availability.lua): [row, incoming, next eta ms (0: none)].
Supplied = list[Any]
# How a batch transaction asks for supply lines: none, one EXISTS of them all, one per sku.
SupplyRead = Literal["any", "each"] | None

# Hold lines per sku a batch read takes with their scores (earliest to stop counting first):
# more lapsed lines than this (the reaper is behind) send the partition to the script.
_LAPSED_PAGE = 8
# After a batch whose one EXISTS of all its supply lines counted some (and so was read again
# sku by sku), batches with supply read sku by sku at once for this long: where many skus have
# supply lines the first read is wasted, so it is tried again only now and then (a time, not a
# number of batches: concurrent batches all start before the first one finds out). Store
# instructions of a 100-sku batch's transactions vs an EXISTS per sku (callgrind): -17 % when
# no sku has supply lines; +86 % when every 10th sku has some and every batch tries the one
# EXISTS first.
# Why a time, and not something exact (evaluated in session 7; the figures are
# `python -m benchmarks.batch_supply_callgrind`, store instructions per 100-sku transaction):
# - no multi-key read says WHICH of several hashes exist (EXISTS counts them, MGET answers nil
#   for a hash as for a missing key), so an exact check in the one transaction is an EXISTS
#   per sku: 1.17x the one EXISTS when no sku has supply lines (1.73-1.75 M vs 2.03-2.04 M);
# - a count of batches instead of a time: +24 % store time, concurrent batches all try the
#   one EXISTS before the first learns (docs/benchmarks.md, "the batch's supply check");
# - what would nearly match the one EXISTS, exact, without back-off or a second transaction:
#   a per-sku marker string `os:{P}:sx:<sku>`, set and deleted with the sku's supply hash by
#   supply_put.lua and supply_receive.lua (its only writers), read by one MGET: 1.77-1.87 M
#   with no supply lines (1.02-1.07x), 1.87-1.90 M with every 10th sku supplied (the EXISTS
#   per sku: 2.19-2.20 M).
#   Not done: it is a second record of "has supply lines" that both writers, the audit and
#   a backfill of every existing store must keep exact (a missing marker answers `incoming`
#   0 for a sku that has supply), a migration this constant does not need.
_SUPPLY_BACKOFF_SECONDS = 2.0


def stock_status(available: int, threshold: int) -> str:
    if available <= 0:
        return "out_of_stock"
    if available <= threshold:
        return "low_stock"
    return "in_stock"


def _view_row(found: Any, lapsed: list[str]) -> list[Any]:
    """availability.lua's row from raw reads: `found` (location, "on_hand:held:committed:
    safety_stock" or None) pairs and the sku's lapsed hold lines ("order|hold|location|qty"),
    whose units no longer count (position.lua's pos_view)."""
    expired: dict[str, int] = {}
    for member in lapsed:
        rest, _, qty = member.rpartition("|")
        location = rest.rpartition("|")[2]
        expired[location] = expired.get(location, 0) + int(qty)
    row: list[Any] = []
    for location, value in found:
        if value is None:
            continue
        on_hand, held, committed, safety = map(int, value.split(":"))
        if expired:
            held -= expired.get(location, 0)
        available = on_hand - held - committed - safety
        row += (location, on_hand, held, committed, safety, available if available > 0 else 0)
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
    # Until when (time.monotonic()) batches with supply read sku by sku without trying one
    # EXISTS of them all first (_transaction).
    _each_until: float = field(default=0.0, init=False)

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
        return await self._read(skus, locations, False)

    async def _read(self, skus: list[str], locations: list[str], supply: bool) -> list[Any]:
        """Each sku's row, or with `supply` [row, incoming, next eta ms (0: none)]
        (availability.lua with the sku's supply lines, `locations` also their scope, as
        `Supplied`), in one round trip to the store; more when a sku of a many-partition read
        on one server has supply lines (most have none) or many lapsed hold lines
        (`_transaction`)."""
        offset = self._clock.offset_ms()

        def script(p: int, group: list[str]) -> Any:
            return self._scripts.run(calls.availability(p, group, locations, offset, supply))

        if len(skus) == 1:  # a product page: one script call, nothing to group
            return [(await script(keys.partition_of(skus[0]), skus))[0]]
        by_partition: dict[int, list[str]] = defaultdict(list)
        for sku in dict.fromkeys(skus):
            by_partition[keys.partition_of(sku)].append(sku)
        items: dict[str, Any] = {}
        if len(by_partition) == 1:
            ((p, group),) = by_partition.items()
            items.update(zip(group, await script(p, group), strict=True))
            return [items[sku] for sku in skus]
        groups = by_partition
        if not self._settings.redis_cluster:
            items, groups = await self._transaction(by_partition, offset, locations, supply)
        # A cluster client refuses EVALSHA in pipelines: one concurrent call per partition
        # (redis-py routes each to its node), still one network wait in total.
        results = await asyncio.gather(*(script(p, group) for p, group in groups.items()))
        for group, result in zip(groups.values(), results, strict=True):
            items.update(zip(group, result, strict=True))
        return [items[sku] for sku in skus]

    async def _transaction(
        self, by_partition: dict[int, list[str]], offset: int, locations: list[str], supply: bool
    ) -> tuple[dict[str, Any], dict[int, list[str]]]:
        """The reads of availability.lua as plain commands in one MULTI/EXEC: as atomic as the
        script (one server, every sku at one instant), without a script call per partition,
        which is what a many-sku read spends its store time on (docs/benchmarks.md). Returns
        each sku's item as the script gives it, and by partition the skus it cannot answer,
        for the script to read.

        The store's TIME, read in the same transaction, decides which hold lines lapsed: each
        sku's earliest `_LAPSED_PAGE` lines come with their scores. A sku whose whole page
        lapsed may have more: the script reads it. With `supply`, first one `EXISTS` of every
        sku's supply lines in the same transaction (most batches have none): when it counts
        none, every sku gets [row, 0, 0], nothing incoming, positions and supply of one
        instant. When it counts some, the batch is read again with an `EXISTS` per sku (the
        first read cannot tell which sku has them, and answering the others from it would
        pair its positions with a later absence of supply, a receipt between the two missed):
        a sku that has some goes to the script (the promising rules are the script's,
        lua/includes/promise.lua), positions and supply at one instant; and for the next
        `_SUPPLY_BACKOFF_SECONDS` batches are read that way at once (supply lines seen lately
        are likely to be seen again)."""
        if supply and time.monotonic() >= self._each_until:
            answered = await self._read_batch(by_partition, offset, locations, "any")
            if answered is not None:
                return answered
            self._each_until = time.monotonic() + _SUPPLY_BACKOFF_SECONDS
        answered = await self._read_batch(
            by_partition, offset, locations, "each" if supply else None
        )
        assert answered is not None  # only the "any" read gives up
        return answered

    async def _read_batch(
        self,
        by_partition: dict[int, list[str]],
        offset: int,
        locations: list[str],
        supply: SupplyRead,
    ) -> tuple[dict[str, Any], dict[int, list[str]]] | None:
        """One MULTI/EXEC of `_transaction`; `supply` "any": one multi-key EXISTS of every
        sku's supply lines (None when it counts some), "each": one EXISTS per sku."""
        commands: list[tuple[str | int, ...]] = [("TIME",)]
        for p, group in by_partition.items():
            for sku in group:
                if locations:
                    commands.append(("HMGET", keys.position(p, sku), *locations))
                else:
                    commands.append(("HGETALL", keys.position(p, sku)))
                # The earliest lines by rank: what ZRANGEBYSCORE -inf +inf LIMIT 0 n answers,
                # for less store time (no score range, no LIMIT to parse).
                commands.append(
                    ("ZRANGE", keys.hold_line_index(p, sku), 0, _LAPSED_PAGE - 1, "WITHSCORES")
                )
                if supply == "each":
                    commands.append(("EXISTS", keys.supply(p, sku)))
        if supply == "any":
            supply_keys = [
                keys.supply(p, sku) for p, group in by_partition.items() for sku in group
            ]
            commands.append(("EXISTS", *supply_keys))
        replies = await batch.transaction(self._redis, commands, self._mux)
        if supply == "any" and replies[-1] != 0:
            return None
        replies_of = iter(replies)
        now = store_ms(next(replies_of)) + offset
        items: dict[str, Any] = {}
        redo: dict[int, list[str]] = defaultdict(list)
        for p, group in by_partition.items():
            for sku in group:
                raw, page = next(replies_of), _scored(next(replies_of))
                supplied = supply == "each" and next(replies_of) == 1
                if supplied or (len(page) == _LAPSED_PAGE and page[-1][1] <= now):
                    redo[p].append(sku)
                    continue
                if locations:
                    found: Any = zip(locations, raw, strict=True)
                else:  # HGETALL: a map (RESP3) or a flat field, value list (RESP2)
                    pairs = zip(raw[::2], raw[1::2], strict=True) if isinstance(raw, list) else ()
                    found = raw.items() if isinstance(raw, dict) else pairs
                row = _view_row(found, [member for member, score in page if score <= now])
                items[sku] = [row, 0, 0] if supply else row
        return items, redo

    def _reads(self, skus: list[str], own: bool) -> tuple[dict[str, dict[str, int]], list[str]]:
        """The base components of each kit among `skus` (app/domain/kits.py), and the skus to
        read: each sku, or a kit's components (`own`: and the kit itself, whose own supply
        lines are its incoming)."""
        kits = self._config.kits
        parts = {sku: expand(kits, sku) for sku in skus if sku in kits}
        if not parts:
            return parts, skus if len(skus) == 1 else list(dict.fromkeys(skus))
        reads = [s for sku in skus for s in (parts.get(sku) or (sku,))]
        return parts, list(dict.fromkeys([*reads, *parts] if own else reads))

    async def units(
        self, skus: list[str], wanted: list[str], nothing: bool = False
    ) -> dict[str, dict[str, int]]:
        """{sku: {location: available}} at `wanted` (none: wherever stocked) for skus and kits
        (app/domain/kits.py: from their base components), in one round trip to the store.
        `nothing`: no location is in scope (no read)."""
        parts, reads = self._reads(skus, own=False)
        rows: list[list[Any]] = (
            [[] for _ in reads] if nothing else await self.read_rows(reads, wanted)
        )
        found = {sku: _available(row) for sku, row in zip(reads, rows, strict=True)}
        return {
            sku: kit_available(parts[sku], found) if sku in parts else found[sku] for sku in skus
        }

    async def availability(
        self,
        skus: list[str],
        channel: Channel | None,
        locations: list[str] | None,
        incoming: bool = True,
    ) -> list[dict[str, Any]]:
        """Available-to-promise for each sku: the channel's eligible locations (or the given
        ones, or every location the sku is stocked at), summed; for a channel with rules, its
        figure of that sum (channel_rules.channel_figure). With `incoming` and
        `next_available_at` (`incoming` off: without): what the sku's supply lines at those
        locations add, unbuffered (lua/includes/promise.lua supply_incoming), read by the
        same script call as the positions (a kit: its own supply lines)."""
        wanted: list[str] = []
        if channel is not None:
            wanted = channel.locations  # only read
            if locations is not None:
                allowed = set(locations)
                wanted = [loc for loc in wanted if loc in allowed]
        elif locations is not None:
            wanted = list(dict.fromkeys(locations))
        listed = channel is not None or locations is not None
        parts, reads = self._reads(skus, own=incoming)
        items: list[Supplied]
        if listed and not wanted:  # no location in scope: nothing to read
            items = [[[], 0, 0] for _ in reads]
        elif incoming:
            items = await self._read(reads, wanted, True)
        else:
            items = [[row, 0, 0] for row in await self._read(reads, wanted, False)]
        # A product page (one sku, not a kit): its one read, no lookup by sku.
        read = items[0] if len(reads) == 1 and not parts else None
        by_sku = {} if read is not None else dict(zip(reads, items, strict=True))
        ruled = channel if channel is not None and has_rules(channel) else None
        channel_id = channel.id if channel is not None else None
        threshold = channel.low_stock_threshold if channel is not None else 0
        results = []
        for sku in skus:
            row, units_incoming, eta = read or by_sku[sku]
            kit = parts.get(sku)
            if kit is None:
                found = _available(row)
            else:
                found = kit_available(kit, {s: _available(by_sku[s][0]) for s in kit})
            total = sum(found.values())
            if ruled is not None:
                # The channel's figure; no location shows more than it (a hold takes no more).
                total = channel_figure(ruled, sku, total)
                found = {loc: min(n, total) for loc, n in found.items()}
                if ruled.excludes(sku):  # nothing on hand or on its way (no promise either)
                    units_incoming, eta = 0, 0
            result = {
                "sku": sku,
                "channel": channel_id,
                "available": total,
                "status": stock_status(total, threshold),
                "locations": [
                    {"location": loc, "available": found.get(loc, 0)}
                    for loc in (wanted if listed else sorted(found))
                ],
            }
            if incoming:
                result["incoming"] = units_incoming
                # When nothing is available now: from when something can be promised.
                result["next_available_at"] = iso(eta) if eta and total == 0 else None
            results.append(result)
        return results


def _available(row: list[Any]) -> dict[str, int]:
    """{location: available} of an availability.lua row."""
    return {row[i]: row[i + 5] for i in range(0, len(row), 6)}
