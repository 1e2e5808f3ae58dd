"""Incoming stock events: POS sales and returns, ERP/WMS receipts, counts and transfers.

Each event is validated on its own, so one bad line of a POS batch is `rejected` with a reason
while the rest apply. An event is identified by (location, id): the same id from two
locations is two events; the same identity again is `duplicate` when its fingerprint (type,
sku, quantity) matches the first one's, and `rejected` with reason `id_reused` when not.

Two steps, each one round trip for the whole batch:
1. Claim: one `event_claim.lua` call per identity, pipelined, each in the identity's own slot,
   records the first content sent for it (whatever the sku) and replies that content. Events
   whose content differs are `id_reused`, even when their sku lives in another partition.
2. Change: the rest, grouped by partition, go in order to `stock_events.lua`, which writes a
   seen record per identity (with the fingerprint) together with the change, and re-checks
   the fingerprint there, in the change's atomic step.
A service that dies between the steps leaves a claim without a change: the retry of the same
event passes the claim and applies once. A replayed offline batch, or two deliveries of one
batch at once, changes stock exactly once.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from app import keys
from app.domain.clock import Clock
from app.domain.config import ConfigService
from app.domain.idempotency import Claim, take
from app.domain.models import ID_PATTERN, MAX_UNITS, StockEventType
from app.domain.stock import StockService, rows_to_positions
from app.settings import Settings
from app.store import calls
from app.store.calls import EventStatus, StockEvent
from app.store.scripts import Scripts

EVENT_TYPES: tuple[str, ...] = get_args(StockEventType)
_ID = re.compile(ID_PATTERN)
# RFC 3339 date-time: full date, full time, a zone. ASCII digits only (`\d` is Unicode).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_FIELDS = {"id", "type", "sku", "location", "quantity", "occurred_at"}


ID_REUSED = EventStatus.ID_REUSED


def fingerprint(kind: str, sku: str, quantity: int) -> str:
    """What makes two events of one identity the same event (occurred_at does not). `|` is no
    identifier character, so the parts cannot run into each other."""
    return f"{kind}|{sku}|{quantity}"


@dataclass
class Accepted:
    index: int
    event_id: str
    type: str
    sku: str
    location: str
    quantity: int

    @property
    def identity(self) -> tuple[str, str]:
        return self.location, self.event_id

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.type, self.sku, self.quantity)


def _text(value: str) -> str:
    """Client text echoed back, encodable as UTF-8: JSON lets a request carry a lone surrogate
    (`"\\ud800"`), which no JSON response can; it comes back backslash-escaped."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _reject(event: Any, reason: str) -> dict[str, Any]:
    event_id = event.get("id") if isinstance(event, dict) else None
    return {
        "id": _text(event_id) if isinstance(event_id, str) else None,
        "status": "rejected",
        "reason": _text(reason),
    }


def _id_reused(event: Accepted) -> dict[str, Any]:
    return {"id": event.event_id, "status": "rejected", "reason": ID_REUSED}


def _is_rfc3339(value: Any) -> bool:
    """A string like 2025-11-24T10:14:58Z; not a number, a bare date or another ISO form."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return False
    try:  # the shape is right; the values must be too (no month 13, no 25:00)
        datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    except ValueError:
        return False
    return True


def _quantity_error(kind: str, quantity: Any) -> str | None:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        return "quantity must be an integer"
    if abs(quantity) > MAX_UNITS:
        return f"quantity must be within ±{MAX_UNITS}"
    if kind == "adjustment":
        return "adjustment quantity must not be 0" if quantity == 0 else None
    if kind == "count":
        return "count quantity must be >= 0" if quantity < 0 else None
    return f"{kind} quantity must be >= 1" if quantity < 1 else None


def _first_partition(events: list[Any]) -> int:
    first = events[0] if events else None
    sku = first.get("sku") if isinstance(first, dict) else None
    return keys.partition_of(sku if isinstance(sku, str) else "")


@dataclass(eq=False)  # a service, compared by identity
class StockEventService:
    _scripts: Scripts
    _config: ConfigService
    _stock: StockService
    _settings: Settings
    _clock: Clock

    async def validate(
        self, index: int, event: Any, only_location: str | None
    ) -> Accepted | dict[str, Any]:
        if not isinstance(event, dict):
            return _reject(event, "an event must be a JSON object")
        unknown = set(event) - _FIELDS
        if unknown:
            return _reject(event, f"unknown fields: {', '.join(sorted(unknown))}")
        for name in ("id", "type", "sku", "location", "quantity"):
            if name not in event:
                return _reject(event, f"missing field: {name}")
        for name in ("id", "sku", "location"):
            value = event[name]
            if not isinstance(value, str) or not _ID.fullmatch(value):
                return _reject(event, f"{name} must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        if event["type"] not in EVENT_TYPES:
            return _reject(
                event, f"unknown type {event['type']!r}; one of {', '.join(EVENT_TYPES)}"
            )
        problem = _quantity_error(event["type"], event["quantity"])
        if problem:
            return _reject(event, problem)
        occurred = event.get("occurred_at")
        if occurred is not None and not _is_rfc3339(occurred):
            return _reject(event, "occurred_at must be an RFC 3339 timestamp")
        if only_location is not None and event["location"] != only_location:
            return _reject(event, f"this caller may only send events for {only_location}")
        if event["location"] not in self._config.locations:
            await self._config.refresh()
            if event["location"] not in self._config.locations:
                return _reject(event, f"location {event['location']!r} is not registered")
        return Accepted(
            index, event["id"], event["type"], event["sku"], event["location"], event["quantity"]
        )

    async def apply(
        self, events: list[Any], only_location: str | None = None, claim: Claim | None = None
    ) -> list[dict[str, Any]]:
        """The results of a batch. A keyed batch spans partitions, so its claim is taken by
        itself first, in the partition of the first event's sku: a failover that loses that
        slot loses the claim with the first event's change, and every event's own (location,
        id) record makes the retry of the others exact."""
        await take(
            self._scripts, claim, keys.tag(_first_partition(events)), self._clock.offset_ms()
        )
        results: list[dict[str, Any] | None] = [None] * len(events)
        accepted: list[Accepted] = []
        for i, event in enumerate(events):
            checked = await self.validate(i, event, only_location)
            if isinstance(checked, Accepted):
                accepted.append(checked)
            else:
                results[i] = checked
        claimed = await self._claim(accepted)
        by_partition: dict[int, list[Accepted]] = {}
        for a in accepted:
            if claimed[a.identity] == a.fingerprint:
                by_partition.setdefault(keys.partition_of(a.sku), []).append(a)
            else:
                results[a.index] = _id_reused(a)
        replies = await asyncio.gather(
            *(self._apply_partition(p, group) for p, group in by_partition.items())
        )
        for group, reply in zip(by_partition.values(), replies, strict=True):
            for a, row in zip(group, reply, strict=True):
                if row[0] == ID_REUSED:
                    results[a.index] = _id_reused(a)
                    continue
                results[a.index] = {
                    "id": a.event_id,
                    "status": row[0],
                    "position": rows_to_positions([a.location, *row[1:]])[0],
                }
        return [r for r in results if r is not None]

    async def _claim(self, accepted: list[Accepted]) -> dict[tuple[str, str], str]:
        """The fingerprint each identity of the batch is claimed for: one claim per identity,
        with the content of its first event in the batch (a later one that differs from what
        the claim answers is `id_reused`, one that matches goes on: `duplicate` or applied)."""
        first: dict[tuple[str, str], str] = {}
        for a in accepted:
            first.setdefault(a.identity, a.fingerprint)
        replies = await asyncio.gather(
            *(
                self._scripts.run(
                    calls.event_claim(*identity, fp, self._settings.event_dedupe_seconds)
                )
                for identity, fp in first.items()
            )
        )
        return dict(zip(first, replies, strict=True))

    async def _apply_partition(self, p: int, group: list[Accepted]) -> list[list[Any]]:
        call = calls.stock_events(
            p,
            [
                StockEvent(a.event_id, a.type, a.sku, a.location, a.quantity, a.fingerprint)
                for a in group
            ],
            retention_ms=self._stock.event_retention_ms,
            dedupe_seconds=self._settings.event_dedupe_seconds,
            channels=self._config.channels_arg(
                list({a.location for a in group}), {a.sku for a in group}
            ),
            offset_ms=self._clock.offset_ms(),
        )
        reply: list[list[Any]] = await self._scripts.run(call)
        return reply
