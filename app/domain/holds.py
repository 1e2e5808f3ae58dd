"""Holds: reserve, read, commit, fulfil, release, extend.

A hold whose lines all live in one partition (every single-sku hold, and any cart whose skus
share a partition) is one call of `hold_reserve.lua`: sourcing, the all-or-nothing check and
every write happen in one atomic step.

A hold over several partitions cannot be one script on a cluster, so it is reserved in two
phases: every part is reserved as `pending` (its units count, but only until a short deadline),
then every part is confirmed `active`. If a part cannot be reserved, the parts already
reserved are aborted and the client sees a plain 409; if the coordinating process dies, its
pending parts stop counting at the deadline and the reaper returns them. The client sees
all-or-nothing either way.

A hold belongs to its owner (the API key name that created it; "" is the anonymous owner of a
service without keys, and of holds made before owners were recorded), written into every part
at creation by the same script call. Reads and transitions name a `viewer`: a hold whose owner
is not the viewer is "not found", exactly as a hold that does not exist (None: every hold,
for admin). The check is on the record a read or transition already loads before its scripts
run, and that is race-free: the owner never changes, and an id never names a hold of another
owner (random ids do not repeat; a keyed id is a MAC over the owner, app/domain/hold_ids.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from app import keys
from app.domain import backorder, sourcing
from app.domain.channel_rules import has_rules, over_figure
from app.domain.clock import Clock
from app.domain.config import ConfigService
from app.domain.errors import (
    DomainError,
    HoldNotFound,
    InsufficientStock,
    InvalidRequest,
    InvalidTransition,
    StoreUnavailable,
    UnknownHoldLine,
)
from app.domain.hold_ids import HoldIdSecret, home_partition, keyed_hold_id, random_hold_id
from app.domain.hold_lines import LINES_FROM, check_lines, raise_for
from app.domain.hold_parts import (
    DECIDED,
    effective_status,
    needs_home_decision,
    settle_path,
    unsettled,
)
from app.domain.hold_render import render
from app.domain.idempotency import Claim, checked, idem_for, take
from app.domain.kits import KitLine, kit_lines
from app.domain.models import (
    METADATA_MAX_KEYS,
    Channel,
    HoldIn,
    HoldLineIn,
    LineChangeIn,
    LineOp,
)
from app.domain.sourcing import Part
from app.domain.stock import StockService
from app.settings import Settings
from app.store import calls
from app.store.calls import HoldStatus, Reply, Transition
from app.store.scripts import Scripts

log = logging.getLogger("omnistock.holds")

ANONYMOUS_OWNER = ""  # no API keys, or a hold recorded before owners were: admin only


@dataclass
class Reserved:
    """hold_reserve.lua's or hold_backorder.lua's reply: its kind, its data decoded, and the
    refusal it means once the other parts are undone (needed_by past: 422)."""

    kind: Reply
    data: Any = None
    error: DomainError | None = None


def _reserved(claim: Claim | None, result: list[Any]) -> Reserved:
    kind = Reply(checked(claim, result)[0])
    if kind == Reply.INSUFFICIENT:
        return Reserved(kind, orjson.loads(result[1]))
    if kind == Reply.OK:  # lines, created_at, expires_at (, promises: hold_backorder.lua)
        if claim is not None:
            claim.stored = True  # with the change (the script's idem_finish)
        return Reserved(kind, (result[1], int(result[2]), int(result[3]), *result[4:]))
    if kind == Reply.NEEDED_BY_PAST:
        return Reserved(kind, error=backorder.needed_by_past())
    return Reserved(kind, result[1])


@dataclass(eq=False)  # a service, compared by identity
class HoldService:
    _redis: Redis
    _scripts: Scripts
    _config: ConfigService
    _stock: StockService
    _settings: Settings
    _clock: Clock
    id_secret: HoldIdSecret = field(init=False)

    def __post_init__(self) -> None:
        self.id_secret = HoldIdSecret(self._redis)

    # -- create --------------------------------------------------------------------------

    async def create(self, body: HoldIn, claim: Claim | None, owner: str) -> dict[str, Any]:
        """Reserve the hold; a keyed create's claim lives in its home partition (the first
        line's), taken by the home part's script (one partition) or before the parts run."""
        lines = kit_lines(self._config.kits, body.lines)
        if len(lines) > self._settings.max_lines_per_hold:
            raise InvalidRequest(
                f"a hold has at most {self._settings.max_lines_per_hold} lines "
                "(a kit line counts one per component)",
                errors=[{"loc": ["body", "lines"], "msg": "too many lines"}],
            )
        parts: dict[int, Part] = {}
        for line in lines:
            p = keys.partition_of(line.sku)
            parts.setdefault(p, Part(p)).lines.append(line)
        home = next(iter(parts))
        if claim is not None:
            claim.lives_in(keys.tag(home))
        channel = await self._config.channel(body.channel) if body.channel else None
        await self._check_pinned_locations(body.lines, channel)
        candidates = self._config.sourcing_order(channel, body.ship_to)
        kits_split = any(isinstance(line, KitLine) for line in lines) and body.allow_split
        if len(parts) > 1 and kits_split and (body.max_locations or 1) > 1:
            raise InvalidRequest(
                "max_locations above 1 is not supported for a split hold with kit lines whose "
                "components live in several partitions; hold the kits without max_locations",
                errors=[{"loc": ["body", "max_locations"], "msg": "not for multi-partition kits"}],
            )

        if claim is None:
            hold_id = random_hold_id(home)
        else:
            hold_id = keyed_hold_id(await self.id_secret.get(), owner, claim.digest, home)
        ttl = body.ttl_seconds or self._settings.default_hold_ttl_seconds
        header = _Header(
            hold_id=hold_id,
            channel=body.channel or "",
            reference=body.reference or "",
            ttl_ms=ttl * 1000,  # the script sets created_at and expires_at by the store's clock
            parts=",".join(str(p) for p in parts),
            owner=owner,
            metadata=_metadata_arg(body.metadata),
        )
        if body.allow_backorder or body.needed_by is not None:
            return await self._create_backorder(header, parts, body, candidates, claim)
        if len(parts) == 1:
            reply = await self._reserve(
                header,
                parts[home],
                HoldStatus.ACTIVE,
                body.allow_split,
                candidates,
                claim,
                body.max_locations,
            )
            if reply.kind == Reply.INSUFFICIENT:
                raise InsufficientStock("not enough stock for every line", lines=reply.data)
            if reply.kind == Reply.OK:  # render what the script wrote: no second round trip
                return self.render(hold_id, [header.record(*reply.data)])
        else:
            # Claimed before any part runs, so a concurrent duplicate reserves nothing anywhere.
            await take(self._scripts, claim, keys.tag(home), self._clock.offset_ms())
            try:
                if channel is not None and has_rules(channel):
                    await self._check_channel_figures(channel, list(parts.values()))
                await self._create_multi(
                    header, list(parts.values()), body.allow_split, candidates, body.max_locations
                )
            except InsufficientStock:
                # A retried create may be short of exactly the units its first attempt holds
                # (planning reads them as taken): that attempt's home part decides instead.
                if claim is None or not await self._redis.exists(keys.hold(home, hold_id)):
                    raise
                await self._resume(hold_id, list(parts.values()))
        return await self.get(hold_id, viewer=owner)

    async def _create_backorder(
        self,
        header: _Header,
        parts: dict[int, Part],
        body: HoldIn,
        candidates: list[str],
        claim: Claim | None,
    ) -> dict[str, Any]:
        """A hold that may wait for supply (backorder.py): one script call for one partition;
        over several, every part is reserved pending by hold_backorder.lua and the two-phase
        protocol of `_try_parts` decides, a keyed create's claim taken first (as for an
        on-hand multi-partition hold: a retry resumes). The sourcing rule is per line, so per
        part; channel rules are per sku, so each part's script applies its skus' own."""
        needed_by = backorder.needed_by_ms(body)

        def reserve(part: Part, status: HoldStatus, claim: Claim | None) -> Awaitable[Reserved]:
            return self._reserve_backorder(header, part, status, needed_by, candidates, claim)

        if len(parts) == 1:
            (part,) = parts.values()
            reply = await reserve(part, HoldStatus.ACTIVE, claim)
            if reply.error is not None:
                raise reply.error
            if reply.kind == Reply.INSUFFICIENT:
                raise backorder.short(reply.data)
            if reply.kind == Reply.OK:  # render what the script wrote
                lines, created, expires, promises = reply.data
                record = {**header.record(lines, created, expires), "promises": promises}
                return self.render(header.hold_id, [record])
            # a retried create: its first attempt made the hold
            return await self.get(header.hold_id, viewer=header.owner)
        # Claimed before any part runs, so a concurrent duplicate reserves nothing anywhere.
        await take(self._scripts, claim, keys.tag(next(iter(parts))), self._clock.offset_ms())
        shortage = await self._try_parts(
            header,
            list(parts.values()),
            reserve=lambda part: reserve(part, HoldStatus.PENDING, None),
        )
        if shortage is not None:
            raise backorder.short(shortage)
        return await self.get(header.hold_id, viewer=header.owner)

    async def _reserve_backorder(
        self,
        header: _Header,
        part: Part,
        status: HoldStatus,
        needed_by_ms: int,
        candidates: list[str],
        claim: Claim | None,
    ) -> Reserved:
        """One part of a backorder hold, or the whole (`status` active): hold_backorder.lua."""
        pinned = [line.location for line in part.lines if line.location]
        channels = self._config.channels_arg(candidates + pinned)
        new = self._new_hold(header, part, status, candidates, channels, claim, groups=False)
        call = calls.hold_backorder(new, needed_by_ms=needed_by_ms)
        return _reserved(claim, await self._scripts.run(call))

    async def _check_pinned_locations(
        self, lines: list[HoldLineIn], channel: Channel | None
    ) -> None:
        for i, line in enumerate(lines):
            if line.location is None:
                continue
            await self._config.location(line.location)
            if channel is not None and line.location not in channel.locations:
                raise InvalidRequest(
                    f"location {line.location!r} is not eligible for channel {channel.id!r}",
                    errors=[{"loc": ["body", "lines", i, "location"], "msg": "not eligible"}],
                )

    async def _reserve(
        self,
        header: _Header,
        part: Part,
        status: HoldStatus,
        allow_split: bool,
        candidates: list[str],
        claim: Claim | None = None,
        max_locations: int | None = None,
    ) -> Reserved:
        touched = candidates + [line.location for line in part.lines if line.location]
        channels = self._config.channels_arg(touched, part.skus())
        new = self._new_hold(header, part, status, candidates, channels, claim, groups=True)
        call = calls.hold_reserve(new, allow_split=allow_split, max_locations=max_locations)
        return _reserved(claim, await self._scripts.run(call))

    def _new_hold(
        self,
        header: _Header,
        part: Part,
        status: HoldStatus,
        candidates: list[str],
        channels: bytes,
        claim: Claim | None,
        groups: bool,
    ) -> calls.NewHold:
        """What hold_reserve.lua and hold_backorder.lua take of a part; `groups`: lines carry
        their kit line ("g", hold_reserve.lua's split sourcing)."""
        p = part.partition
        skus = part.skus()
        index = {sku: i + 1 for i, sku in enumerate(skus)}
        # In NewHold's field order: by keyword the call cost 10k instructions more, 1.7 % of a
        # flash hold (docs/benchmarks.md, "Session 8, the hold's Python").
        return calls.NewHold(
            p,  # partition
            header.hold_id,
            status,
            header.ttl_ms,
            self._settings.pending_ttl_seconds * 1000,  # pending_ttl_ms
            self._settings.pending_grace_seconds * 1000,  # pending_grace_ms
            header.channel,
            header.reference,
            header.parts,
            self._stock.event_retention_ms,  # retention_ms
            [_line_arg(line, index[line.sku], groups) for line in part.lines],  # lines
            skus,
            candidates,
            channels,
            header.owner,
            header.metadata if p == int(header.parts.split(",")[0]) else "",  # metadata
            self._clock.offset_ms(),
            idem_for(claim, keys.tag(p)),  # idem
        )

    async def _check_channel_figures(self, channel: Channel, parts: list[Part]) -> None:
        """What each part's script would refuse by the channel's rules (channel_rules.lua's
        channel_short), seen on a snapshot first: a multi-partition hold over its channel's
        figure then reserves and aborts nothing in its other partitions. The scripts still
        decide."""
        need: dict[str, int] = defaultdict(int)
        for part in parts:
            for line in part.lines:
                need[line.sku] += line.quantity
        skus = list(need)
        rows = await self._stock.read_rows(skus, list(channel.locations))
        totals = {
            sku: sum(row[i + 5] for i in range(0, len(row), 6))
            for sku, row in zip(skus, rows, strict=True)
        }
        short = over_figure(channel, need, totals)
        if short:
            raise InsufficientStock("not enough stock for every line", lines=short)

    async def _create_multi(
        self,
        header: _Header,
        parts: list[Part],
        allow_split: bool,
        candidates: list[str],
        max_locations: int | None = None,
    ) -> None:
        unpinned = [line for part in parts for line in part.lines if line.location is None]
        if not unpinned:
            shortage = await self._try_parts(header, parts, allow_split=False, candidates=[])
            if shortage is not None:
                raise InsufficientStock("not enough stock for every line", lines=shortage)
            return
        # Prefer one location for the whole hold: plan from a snapshot, let the scripts check.
        need: dict[str, int] = defaultdict(int)
        for line in unpinned:
            need[line.sku] += line.quantity
        skus = list(need)
        snapshot = await self._stock.read_rows(skus, candidates)
        free = {
            sku: {row[i]: row[i + 5] for i in range(0, len(row), 6)}
            for sku, row in zip(skus, snapshot, strict=True)
        }
        singles = sourcing.single_locations(free, need, candidates)
        shortage = None
        for loc in singles[:3]:
            pinned = [
                Part(
                    part.partition,
                    [
                        line if line.location else line.model_copy(update={"location": loc})
                        for line in part.lines
                    ],
                )
                for part in parts
            ]
            shortage = await self._try_parts(header, pinned, allow_split=False, candidates=[])
            if shortage is None:
                return
        if allow_split and max_locations:
            # The capped rule of lua/includes/split.lua, planned from the snapshot and pinned;
            # the scripts check every pinned line, all or nothing.
            demand = [(line.sku, line.quantity) for line in unpinned]
            plan, short = sourcing.capped_split(free, demand, candidates, max_locations)
            if short:
                raise InsufficientStock("not enough stock for every line", lines=short)
            shortage = await self._try_parts(
                header, sourcing.pin_plan(parts, plan), allow_split=False, candidates=[]
            )
            if shortage is None:
                return
        elif allow_split:
            # Kit components may live in several partitions: each kit line is planned whole
            # at one location (the rule of lua/includes/split.lua), the scripts check it.
            parts = sourcing.pin_groups(parts, free, candidates)
            shortage = await self._try_parts(header, parts, allow_split=True, candidates=candidates)
            if shortage is None:
                return
        if shortage is None:
            shortage = sourcing.shortage(free, need)
        raise InsufficientStock("not enough stock for every line", lines=shortage)

    async def _try_parts(
        self,
        header: _Header,
        parts: list[Part],
        allow_split: bool = False,
        candidates: list[str] | None = None,
        reserve: Callable[[Part], Awaitable[Reserved]] | None = None,
    ) -> list[dict[str, Any]] | None:
        """Reserve every part as pending (hold_reserve.lua, or `reserve`: a backorder hold's
        hold_backorder.lua), then confirm the home part (the decision: the hold's commit
        point) and then the others; or abort those reserved (and raise a part's refusal other
        than a shortage). Returns None on success (or when a retried create found its hold),
        else the short lines."""
        pending = reserve or (
            lambda part: self._reserve(
                header, part, HoldStatus.PENDING, allow_split, candidates or []
            )
        )
        replies = await asyncio.gather(*(pending(part) for part in parts))
        if all(r.kind == Reply.OK for r in replies):
            await self._decide(header.hold_id, [part.partition for part in parts])
            return None
        if any(r.kind == Reply.EXISTS for r in replies):
            await self._resume(header.hold_id, parts)
            return None
        await asyncio.gather(
            *(
                self.transition_part(header.hold_id, part.partition, Transition.ABORT)
                for part, r in zip(parts, replies, strict=True)
                if r.kind == Reply.OK
            )
        )
        for r in replies:
            if r.error is not None:
                raise r.error
        short: list[dict[str, Any]] = []
        for r in replies:
            if r.kind == Reply.INSUFFICIENT:
                short += r.data
        return short

    async def _decide(self, hold_id: str, partitions: list[int]) -> None:
        """Every part is reserved pending: confirm the home part (hold_confirm.lua refuses past
        its deadline, by its own clock, and rolls it back), then bring the others to its
        decision (app/domain/hold_parts.py)."""
        home = await self.transition_part(hold_id, partitions[0], Transition.CONFIRM)
        if home[0] == Reply.OK:
            rest = await asyncio.gather(
                *(self.transition_part(hold_id, p, Transition.CONFIRM) for p in partitions[1:])
            )
            if all(r[0] == Reply.OK for r in rest):
                return
        log.warning("hold %s: home confirm gave %s; settling every part", hold_id, home)
        if await self.settle(hold_id, partitions) != HoldStatus.ACTIVE:
            raise StoreUnavailable("the hold could not be confirmed in time; retry")

    async def _resume(self, hold_id: str, parts: list[Part]) -> None:
        """A retried create (same Idempotency-Key, so the same hold id) found parts of its
        earlier attempt, which was interrupted (its answer never reached the client). The home
        part decides, as for a first attempt: a pending home part is confirmed if its deadline
        has not passed (rolled back if it has), and every part, old or just reserved, is then
        settled to the home part's status. The create answers the hold as it then is."""
        partitions = [part.partition for part in parts]
        await self.transition_part(hold_id, partitions[0], Transition.CONFIRM)
        await self.settle(hold_id, partitions)

    # -- settle (app/domain/hold_parts.py) -----------------------------------------------

    async def settle(
        self, hold_id: str, partitions: list[int] | None = None, seen_in: int | None = None
    ) -> str | None:
        """Bring every part of a multi-partition hold to its home part's decision; roll the
        home part back first if it is pending past its deadline (or missing while another part
        is pending past its own). Returns the home part's status after settling (None: no home
        part, "pending": undecided yet, its coordinator may still confirm it). Safe to call
        from anywhere at any time: every step re-checks inside its script. Without
        `partitions`, they are read from the home part's record, else from the part in
        partition `seen_in` (the reaper's due part)."""
        home_p = home_partition(hold_id)
        if home_p is None:
            return None
        if partitions is None:
            partitions = await self._partitions_of(hold_id, [home_p, seen_in])
        if len(partitions) < 2:
            return None
        records = await self._read_parts(hold_id, partitions)
        home = records[0]
        if needs_home_decision(home, records[1:]):
            tomb = b"" if home else _tombstone(next(r for r in records[1:] if r.get("overdue")))
            await self.transition_part(
                hold_id, home_p, Transition.ROLLBACK, tombstone=tomb, record=home
            )
            home = await self._read_record(home_p, hold_id)
        status = effective_status(home)
        if status not in DECIDED:
            return status or None
        for p, record in zip(partitions[1:], records[1:], strict=True):
            for step in settle_path(record, status):
                reply = await self.transition_part(hold_id, p, step, record=record)
                if reply[0] != Reply.OK and reply[:2] != [Reply.INVALID, step.target]:
                    log.error("hold %s part %d: settling with %s gave %s", hold_id, p, step, reply)
                    break
        return status

    async def _partitions_of(self, hold_id: str, where: list[int | None]) -> list[int]:
        """The partitions of a hold, home first, from the first of `where` with a record."""
        for p in where:
            if p is not None:
                parts = cast(str | None, await self._redis.hget(keys.hold(p, hold_id), "parts"))
                if parts:
                    return [int(x) for x in parts.split(",")]
        return []

    async def _read_parts(self, hold_id: str, partitions: list[int]) -> list[dict[str, str]]:
        """Every part's record by the store's clock ({} where missing), in `partitions` order."""
        return list(await asyncio.gather(*(self._read_record(p, hold_id) for p in partitions)))

    # -- read ----------------------------------------------------------------------------

    async def _records(self, hold_id: str, viewer: str | None) -> list[dict[str, str]]:
        """Every part's record, home first, if `viewer` may see the hold (None: anyone may),
        settled first where its parts disagree (app/domain/hold_parts.py). Another owner's
        hold is not found, with the same answer and the same store reads as a hold that does
        not exist: nothing tells the two apart."""
        home = home_partition(hold_id)
        if home is None:
            raise HoldNotFound(f"no hold {hold_id!r}")
        record = await self._read_record(home, hold_id)
        if not record or (viewer is not None and record.get("owner", ANONYMOUS_OWNER) != viewer):
            raise HoldNotFound(f"no hold {hold_id!r}")
        partitions = [int(p) for p in record["parts"].split(",")]
        if record.get("status") == HoldStatus.PENDING:  # in flight, or its coordinator died
            undecided = not record.get("overdue")
            if undecided or await self.settle(hold_id, partitions) == HoldStatus.PENDING:
                raise HoldNotFound(f"no hold {hold_id!r}")
            record = await self._read_record(home, hold_id)
        if len(partitions) == 1:
            return [record]
        records = [record, *await self._read_parts(hold_id, partitions[1:])]
        if unsettled(records):
            await self.settle(hold_id, partitions)
            records = await self._read_parts(hold_id, partitions)
        return records

    async def _read_record(self, p: int, hold_id: str) -> dict[str, str]:
        """A hold record, with "lapsed": "1" if its lines stopped counting by the store's
        clock (hold_read.lua): the service never compares count_until with its own clock."""
        flat = await self._scripts.run(calls.hold_read(p, hold_id, self._clock.offset_ms()))
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def get(self, hold_id: str, viewer: str | None) -> dict[str, Any]:
        return self.render(hold_id, await self._records(hold_id, viewer))

    def render(self, hold_id: str, records: list[dict[str, str]]) -> dict[str, Any]:
        """The hold as the API shows it (app/domain/hold_render.py)."""
        return render(hold_id, records)

    # -- metadata ------------------------------------------------------------------------

    async def update_metadata(
        self, hold_id: str, viewer: str | None, updates: dict[str, str], claim: Claim | None
    ) -> dict[str, Any]:
        """Set each key of `updates`, remove those given as "" (hold_metadata.lua, on the home
        record: the hold's header). At most METADATA_MAX_KEYS keys after the update."""
        home = home_partition(hold_id)
        if claim is not None and home is not None:
            claim.lives_in(keys.tag(home))
        await self._records(hold_id, viewer)  # ownership (it never changes) and existence
        assert home is not None
        call = calls.hold_metadata(
            home,
            hold_id,
            orjson.dumps(updates),
            METADATA_MAX_KEYS,
            self._clock.offset_ms(),
            idem_for(claim, keys.tag(home)),
        )
        reply = checked(claim, await self._scripts.run(call))
        if reply[0] == Reply.NOT_FOUND:
            raise HoldNotFound(f"no hold {hold_id!r}")
        if reply[0] == Reply.TOO_MANY:
            raise InvalidRequest(
                f"a hold has at most {METADATA_MAX_KEYS} metadata keys; "
                f"this update would leave {reply[1]}",
                errors=[{"loc": ["body", "metadata"], "msg": "too many keys"}],
            )
        return await self.get(hold_id, viewer)

    # -- partial release and fulfil ------------------------------------------------------

    async def change_lines(
        self,
        hold_id: str,
        viewer: str | None,
        op: LineOp,
        lines: list[LineChangeIn],
        claim: Claim | None,
    ) -> dict[str, Any]:
        """Release or fulfil these units of these lines, all or none, in one script call
        (hold_lines.lua) per part. A one-partition hold (one sku, or skus sharing a partition)
        is one atomic step, which also closes the hold when no unit is left open. A hold in
        parts is checked whole first, then changed part by part (each part atomically, the
        home part first: it takes the Idempotency-Key claim, the others are guarded by
        operation markers); once no part has an open unit the whole hold is released or
        fulfilled, home part first (docs/architecture.md, "Partial release and fulfil")."""
        seen: set[tuple[str, str, str | None]] = set()
        for i, line in enumerate(lines):
            if (line.sku, line.location, line.supply_id) in seen:
                raise InvalidRequest(
                    f"line {line.sku}@{line.location} is given twice",
                    errors=[{"loc": ["body", "lines", i], "msg": "duplicate line"}],
                )
            seen.add((line.sku, line.location, line.supply_id))
        backorder.check_line_op(op, lines)
        home = home_partition(hold_id)
        if claim is not None and home is not None:
            claim.lives_in(keys.tag(home))
        records = await self._records(hold_id, viewer)
        partitions = [int(p) for p in records[0]["parts"].split(",")]
        by_part: dict[int, list[dict[str, Any]]] = {p: [] for p in partitions}
        for line in lines:
            p = keys.partition_of(line.sku)
            if p not in by_part:
                raise UnknownHoldLine(
                    f"the hold has no line {line.sku}@{line.location}", line=line.model_dump()
                )
            by_part[p].append(line.model_dump(exclude_none=True))
        if len(partitions) > 1 and effective_status(records[0]) in LINES_FROM[op]:
            # All or none, before any part moves (a hold in another status: its home part's
            # script answers why, as for a one-partition hold). A retried keyed request skips
            # the parts its first attempt changed (their markers make them replay).
            done = set()
            if claim is not None:
                marked = [keys.op_marker(p, claim.digest) for p in partitions]
                done = {
                    p
                    for p, key in zip(partitions, marked, strict=True)
                    if await self._redis.exists(key)
                }
            check_lines(records, [p if p not in done else -1 for p in partitions], by_part)
        op_digest = claim.digest if claim and len(partitions) > 1 else None
        for p, record in zip(partitions, records, strict=True):
            if p != partitions[0] and not by_part[p]:
                continue
            reply = await self.transition_part(
                hold_id,
                p,
                Transition.LINES,
                op_digest,
                lines_op=(op, orjson.dumps(by_part[p])),
                record=record,
                claim=claim if p == partitions[0] else None,
            )
            raise_for(hold_id, op, Reply(checked(claim, reply)[0]), reply)
        if len(partitions) > 1:
            after = await self._read_parts(hold_id, partitions)
            if all(r and r.get("lines") == "[]" and not backorder.promises(r) for r in after):
                close = Transition.FULFIL if op == "fulfil" else Transition.RELEASE
                return await self._transition(hold_id, viewer, close, None)
        return await self.get(hold_id, viewer)

    # -- transitions ---------------------------------------------------------------------

    async def commit(self, hold_id: str, viewer: str | None, claim: Claim | None) -> dict[str, Any]:
        return await self._transition(hold_id, viewer, Transition.COMMIT, claim)

    async def fulfil(self, hold_id: str, viewer: str | None, claim: Claim | None) -> dict[str, Any]:
        return await self._transition(hold_id, viewer, Transition.FULFIL, claim)

    async def release(
        self, hold_id: str, viewer: str | None, claim: Claim | None
    ) -> dict[str, Any]:
        return await self._transition(hold_id, viewer, Transition.RELEASE, claim)

    async def extend(
        self, hold_id: str, viewer: str | None, ttl_seconds: int, claim: Claim | None
    ) -> dict[str, Any]:
        # The script sets expires_at = its store time + the TTL.
        return await self._transition(
            hold_id, viewer, Transition.EXTEND, claim, ttl_ms=ttl_seconds * 1000
        )

    async def _transition(
        self,
        hold_id: str,
        viewer: str | None,
        script: Transition,
        claim: Claim | None,
        ttl_ms: int | None = None,
    ) -> dict[str, Any]:
        """The home part's script takes the claim (in the hold's home slot); the other parts
        are guarded by their operation markers."""
        home = home_partition(hold_id)
        if claim is not None and home is not None:
            claim.lives_in(keys.tag(home))  # a 404 before any script is stored there
        op_digest = claim.digest if claim else None
        records = await self._records(hold_id, viewer)
        partitions = [int(p) for p in records[0]["parts"].split(",")]
        first = await self.transition_part(
            hold_id,
            partitions[0],
            script,
            op_digest,
            ttl_ms=ttl_ms,
            record=records[0],
            claim=claim,
            # The home part's fulfil decides by its clock (a lapsed hold is expired first).
            promised_elsewhere=script is Transition.FULFIL
            and backorder.promised_elsewhere(records),
        )
        kind = Reply(checked(claim, first)[0])
        if kind == Reply.NOT_FOUND:
            raise HoldNotFound(f"no hold {hold_id!r}")
        if kind == Reply.PROMISE_NOT_RECEIVED:  # nothing changed
            raise backorder.not_received()
        if kind in (Reply.EXPIRED, Reply.INVALID) and len(partitions) > 1:
            # The home part decided otherwise (it lapsed, or moved on): the other parts follow
            # it, so a release of a hold whose home part lapsed still returns every unit.
            await self.settle(hold_id, partitions)
        if kind == Reply.EXPIRED:
            raise InvalidTransition.expired(hold_id)
        if kind == Reply.INVALID:
            raise InvalidTransition.refused(hold_id, first[1], f"move it to {script.target}")
        if kind == Reply.KEYS_MISMATCH:  # lines never change after creation: a bug, not a race
            raise AssertionError(f"hold {hold_id}: keys do not cover its lines")
        if len(partitions) > 1:
            rest = await asyncio.gather(
                *(
                    self.transition_part(
                        hold_id, p, script, op_digest, ttl_ms=ttl_ms, record=record
                    )
                    for p, record in zip(partitions[1:], records[1:], strict=True)
                )
            )
            moved = (Reply.OK, Reply.REPLAYED)
            if not all(
                r[0] in moved or (r[0] == Reply.INVALID and r[1] == script.target) for r in rest
            ):
                log.warning(
                    "hold %s: %s did not move every part %s; settling", hold_id, script, rest
                )
                await self.settle(hold_id, partitions)
        return await self.get(hold_id, viewer)

    async def transition_part(
        self,
        hold_id: str,
        p: int,
        script: Transition,
        op_digest: str | None = None,
        *,
        ttl_ms: int | None = None,
        tombstone: bytes | None = None,
        lines_op: tuple[str, bytes] | None = None,
        record: dict[str, str] | None = None,
        claim: Claim | None = None,
        promised_elsewhere: bool = False,
    ) -> list[Any]:
        """Run one transition script on the part of `hold_id` in partition `p` (its record,
        if the caller has read it, names the sku keys; else they are read). The reply as the
        script gives it: its first element a `Reply`."""
        if not record:
            found = await self._redis.hmget(keys.hold(p, hold_id), ["lines", "promises"])
            names = ("lines", "promises")
            record = {k: str(v) for k, v in zip(names, found, strict=True) if v}
        lines_json = record.get("lines")
        # A missing record still goes through the script: it answers not_found atomically
        # (and the reaper's copy drops the stale expiry-index entry).
        # A receipt turns promised units into lines (supply_receive.lua), maybe of a sku the
        # part had no line of yet: the promised skus' keys come too, so they always cover it.
        lines = orjson.loads(lines_json or "[]") + backorder.promises(record)
        call = calls.transition(
            script,
            partition=p,
            hold_id=hold_id,
            skus=(skus := list(dict.fromkeys(line["sku"] for line in lines))),
            retention_ms=self._stock.event_retention_ms,
            finished_ttl_seconds=self._settings.finished_hold_ttl_seconds,
            channels=self._config.channels_arg([line["location"] for line in lines], skus),
            op_digest=op_digest,
            marker_ttl_seconds=self._settings.idempotency_ttl_seconds,
            offset_ms=self._clock.offset_ms(),
            ttl_ms=ttl_ms,
            tombstone=tombstone,
            lines_op=lines_op,
            idem=idem_for(claim, keys.tag(p)),
            promise_skus=backorder.promise_skus(record),
            promised_elsewhere=promised_elsewhere,
        )
        result: list[Any] = await self._scripts.run(call)
        return result

    async def expire_part(self, hold_id: str, p: int) -> list[Any]:
        """The reaper's step: hold_expire.lua on one due part (it re-checks atomically)."""
        return await self.transition_part(hold_id, p, Transition.EXPIRE)

    async def due(self, p: int, limit: int) -> list[str]:
        """The due holds of partition `p` by its store clock, the longest lapsed first
        (hold_due.lua)."""
        ids: list[str] = await self._scripts.run(calls.hold_due(p, limit, self._clock.offset_ms()))
        return ids


def _line_arg(line: HoldLineIn, sku_index: int, groups: bool) -> dict[str, Any]:
    """A line as the hold scripts take it: {"s": sku index, "q": quantity, "l"?: pinned
    location, "g"?: its kit line (`groups`)}; the keys set one by one, not merged from
    dicts made empty for the common line (a third of the instructions)."""
    arg: dict[str, Any] = {"s": sku_index, "q": line.quantity}
    if line.location:
        arg["l"] = line.location
    if groups and isinstance(line, KitLine):
        arg["g"] = line.group
    return arg


def _tombstone(part: dict[str, str]) -> bytes:
    """What hold_rollback.lua writes for a home part that never arrived: another part's header."""
    fields = ("channel", "reference", "created_at", "expires_at", "parts", "owner")
    return orjson.dumps({k: part[k] for k in fields if k in part})


@dataclass
class _Header:
    hold_id: str
    channel: str
    reference: str
    ttl_ms: int
    parts: str
    owner: str
    metadata: bytes | str = ""

    def record(self, lines_json: str, created_at: int, expires_at: int) -> dict[str, str]:
        """The hold record as hold_reserve.lua writes it for an active hold."""
        return {
            "status": "active",
            "channel": self.channel,
            "reference": self.reference,
            "created_at": str(created_at),
            "expires_at": str(expires_at),
            "count_until": str(expires_at),
            "lines": lines_json,
            "parts": self.parts,
            "owner": self.owner,
            **({"metadata": _text(self.metadata)} if self.metadata else {}),
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _metadata_arg(metadata: dict[str, str] | None) -> bytes | str:
    """hold_reserve.lua's metadata ARGV: the given keys (a key given "" is no key), "" for
    none (the script then writes nothing more)."""
    kept = {k: v for k, v in (metadata or {}).items() if v != ""}
    return orjson.dumps(kept) if kept else ""
