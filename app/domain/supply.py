"""Future supply: supply lines (stock on its way to a location), what is promised from them,
and the timeline of what they add to availability.

The rules of promising live in lua/includes/promise.lua; the lines are written by
lua/supply_put.lua (with their events and the promises they break) and read by
lua/supply_read.lua, both in the sku's partition. What they add to an availability answer
(`incoming`, `next_available_at`) is read with the positions, by availability.lua
(StockService.availability).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from app import keys
from app.domain.clock import Clock, iso, parse_ms
from app.domain.config import ConfigService
from app.domain.errors import InvalidRequest, NotFound, SupplyNotFound
from app.domain.idempotency import Claim, checked, idem_for, take
from app.domain.models import Channel, SupplyLineIn, SupplyPut
from app.domain.stock import StockService
from app.store import calls
from app.store.calls import Reply
from app.store.scripts import Scripts

DAY_MS = 86_400_000
# The latest eta a supply line may have, and the farthest a timeline looks (`until`).
HORIZON_DAYS = 365
# A timeline without `until` looks this far ahead.
TIMELINE_DEFAULT_DAYS = 90

SupplyRow = dict[str, Any]
_IDS = ("sku", "location", "supply_id")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "line"
    return f"{where}: {err['msg']}"


def _invalid(field: str, msg: str, where: str = "body") -> InvalidRequest:
    return InvalidRequest(msg, errors=[{"loc": [where, field], "msg": msg}])


def timestamp_ms(text: str, field: str, where: str = "body") -> int:
    """An RFC 3339 field in ms, or 422 naming it."""
    ms = parse_ms(text)
    if ms is None:
        raise _invalid(field, "not an RFC 3339 timestamp with an offset", where)
    return ms


@dataclass(eq=False)  # a service, compared by identity
class SupplyService:
    _scripts: Scripts
    _config: ConfigService
    _stock: StockService
    _clock: Clock

    # -- writes ----------------------------------------------------------------------------

    async def put(
        self, sku: str, location: str, supply_id: str, body: SupplyPut, claim: Claim | None
    ) -> dict[str, Any]:
        """Create, update or (quantity 0) cancel a supply line; the claim lives in the sku's
        partition."""
        eta_ms = 0
        if body.quantity > 0:
            if body.eta is None:
                raise _invalid("eta", "a supply line with units needs its eta")
            eta_ms = timestamp_ms(body.eta, "eta")
        return await self._write(sku, location, supply_id, body, eta_ms, claim)

    async def cancel(
        self, sku: str, location: str, supply_id: str, claim: Claim | None
    ) -> dict[str, Any]:
        return await self._write(
            sku, location, supply_id, SupplyPut(type="purchase_order", quantity=0), 0, claim
        )

    async def _write(
        self,
        sku: str,
        location: str,
        supply_id: str,
        body: SupplyPut,
        eta_ms: int,
        claim: Claim | None,
    ) -> dict[str, Any]:
        p = await self._stock.position_partition(claim, sku, location)
        call = calls.supply_put(
            sku=sku,
            location=location,
            supply_id=supply_id,
            type=body.type,
            quantity=body.quantity,
            eta_ms=eta_ms,
            reference=body.reference or "",
            retention_ms=self._stock.event_retention_ms,
            horizon_ms=HORIZON_DAYS * DAY_MS,
            offset_ms=self._clock.offset_ms(),
            idem=idem_for(claim, keys.tag(p)),
        )
        reply = checked(claim, await self._scripts.run(call))
        kind = Reply(reply[0])
        if kind == Reply.NOT_FOUND:
            raise SupplyNotFound(f"no supply line {supply_id!r} of {sku!r} at {location!r}")
        if kind == Reply.ETA_PAST:
            raise _invalid("eta", "the eta must be after now")
        if kind == Reply.ETA_BEYOND:
            raise _invalid("eta", f"the eta must be within {HORIZON_DAYS} days")
        line = orjson.loads(reply[2])
        broken = orjson.loads(reply[3])
        return {
            **_render(sku, {**line, "free": max(line["quantity"] - line["promised"], 0)}),
            "action": reply[1],
            "broken_promises": broken if isinstance(broken, list) else [],
        }

    async def put_many(self, lines: list[Any], claim: Claim | None) -> list[dict[str, Any]]:
        """A batch of supply lines, each checked and applied on its own (one supply_put.lua
        call each, concurrently): one result per line, in order. A keyed batch spans
        partitions, so its claim is taken first, in the first line's partition; every line is
        an absolute set, so a retry of the rest changes nothing twice."""
        first = lines[0].get("sku") if lines and isinstance(lines[0], dict) else None
        await take(
            self._scripts,
            claim,
            keys.tag(keys.partition_of(first if isinstance(first, str) else "")),
            self._clock.offset_ms(),
        )
        return list(await asyncio.gather(*(self._one(i, raw) for i, raw in enumerate(lines))))

    async def _one(self, index: int, raw: Any) -> dict[str, Any]:
        fields = raw if isinstance(raw, dict) else {}
        head = {
            "index": index,
            **{k: v if isinstance(v := fields.get(k), str) else None for k in _IDS},
        }
        try:
            line = SupplyLineIn.model_validate(raw)
        except ValidationError as exc:
            return {**head, "status": "rejected", "reason": _first_error(exc)}
        try:
            done = await self.put(line.sku, line.location, line.supply_id, line, None)
        except (InvalidRequest, NotFound) as exc:
            return {**head, "status": "rejected", "reason": exc.detail}
        return {**head, "status": done["action"], "broken_promises": done["broken_promises"]}

    # -- reads -----------------------------------------------------------------------------

    async def lines_of(self, skus: list[str]) -> tuple[int, dict[str, list[SupplyRow]]]:
        """Each sku's supply lines (earliest eta first) and the store's now (0: no sku):
        one supply_read.lua call per partition, concurrently (the listing, the timeline, the
        export; availability reads them with the positions, StockService.availability)."""
        by_partition: dict[int, list[str]] = defaultdict(list)
        for sku in dict.fromkeys(skus):
            by_partition[keys.partition_of(sku)].append(sku)
        offset = self._clock.offset_ms()
        replies = await asyncio.gather(
            *(
                self._scripts.run(calls.supply_read(p, group, offset))
                for p, group in by_partition.items()
            )
        )
        now, out = 0, {}
        for group, (at, rows) in zip(by_partition.values(), replies, strict=True):
            now = int(at)
            for sku, lines in zip(group, orjson.loads(rows), strict=True):
                out[sku] = lines if isinstance(lines, list) else []  # cjson writes {} for []
        return now, out

    async def list_lines(self, sku: str) -> dict[str, Any]:
        _, lines = await self.lines_of([sku])
        return {"sku": sku, "lines": [_render(sku, row) for row in lines[sku]]}

    async def timeline(
        self, sku: str, channel: Channel | None, location: str | None, until: str | None
    ) -> dict[str, Any]:
        """What can still be promised for delivery from each date up to `until`: on-hand
        available now, plus each open supply line's unpromised units from its eta on."""
        locations = [location] if location else None
        (avail,), (now, lines) = await asyncio.gather(
            self._stock.availability([sku], channel, locations, incoming=False),
            self.lines_of([sku]),
        )  # one sku: always one supply_read.lua call, which gives the store's now
        end = now + TIMELINE_DEFAULT_DAYS * DAY_MS
        if until is not None:
            end = timestamp_ms(until, "until", "query")
            if end <= now:
                raise _invalid("until", "until must be after now", "query")
            if end > now + HORIZON_DAYS * DAY_MS:
                raise _invalid("until", f"until must be within {HORIZON_DAYS} days", "query")
        scope = _scope(channel, locations)
        if channel is not None and channel.excludes(sku):
            scope = set()  # the channel sees nothing of the sku, on hand or on its way
        adds: dict[int, int] = defaultdict(int)
        for row in lines[sku]:
            if _in(scope, row) and row["free"] > 0 and row["eta"] < end:
                adds[max(row["eta"], now)] += row["free"]
        starts = sorted({now, *adds})
        windows, level = [], avail["available"]
        for i, start in enumerate(starts):
            level += adds.get(start, 0)
            stop = starts[i + 1] if i + 1 < len(starts) else end
            windows.append({"from": iso(start), "to": iso(stop), "available": level})
        return {
            "sku": sku,
            "channel": channel.id if channel is not None else None,
            "location": location,
            "windows": windows,
        }


def _scope(channel: Channel | None, locations: list[str] | None) -> set[str] | None:
    """The locations availability sums over (None: every location)."""
    if channel is not None:
        allowed = set(channel.locations)
        return allowed & set(locations) if locations is not None else allowed
    return set(locations) if locations is not None else None


def _in(scope: set[str] | None, row: SupplyRow) -> bool:
    return scope is None or row["location"] in scope


def _render(sku: str, row: SupplyRow) -> dict[str, Any]:
    return {
        "sku": sku,
        "location": row["location"],
        "supply_id": row["supply_id"],
        "type": row["type"],
        "quantity": row["quantity"],
        "eta": iso(int(row["eta"])),
        "reference": row.get("reference") or None,
        "promised": row["promised"],
        "incoming": row["free"],
    }
