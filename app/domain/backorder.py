"""Holds that may wait for stock on its way (`allow_backorder`): one call of
lua/hold_backorder.lua, which takes on-hand units first and then promises units of supply
lines whose eta is not after `needed_by` (docs/architecture.md, "Future supply and
promising"). A hold without allow_backorder never comes here.

Backorder holds live in one partition: their skus must share one (a multi-partition
backorder hold is refused with 422 `backorder_multi_partition`), because promising inside the
two-phase reservation would need pending promises on every supply line it touches.
"""

from __future__ import annotations

from typing import Any

import orjson

from app import keys
from app.domain.clock import iso
from app.domain.errors import (
    BackorderNotSupported,
    InsufficientStock,
    InvalidRequest,
    PromiseNotReceived,
)
from app.domain.idempotency import Claim, checked, idem_for
from app.domain.models import HoldIn, HoldLineIn
from app.domain.supply import timestamp_ms
from app.store import calls
from app.store.calls import Reply


def needed_by_ms(body: HoldIn) -> int:
    """The hold's needed_by in ms (0: any eta); 422 if it comes without allow_backorder."""
    if body.needed_by is None:
        return 0
    if not body.allow_backorder:
        raise InvalidRequest(
            "needed_by goes with allow_backorder",
            errors=[{"loc": ["body", "needed_by"], "msg": "needs allow_backorder"}],
        )
    ms = timestamp_ms(body.needed_by, "needed_by")
    if ms <= 0:  # 0 means "any eta" to the script; 1970 is long past anyway
        raise _needed_by_past()
    return ms


def _needed_by_past() -> InvalidRequest:
    return InvalidRequest(
        "needed_by must be after now",
        errors=[{"loc": ["body", "needed_by"], "msg": "not after now"}],
    )


def check_one_partition(partitions: int) -> None:
    if partitions > 1:
        raise BackorderNotSupported(
            "a backorder hold's skus must share one partition; split it into one hold per sku"
        )


def reserve_call(
    *,
    partition: int,
    hold_id: str,
    lines: list[HoldLineIn],
    body: HoldIn,
    ttl_ms: int,
    owner: str,
    candidates: list[str],
    channels: bytes,
    retention_ms: int,
    offset_ms: int,
    claim: Claim | None,
) -> calls.Call:
    skus = list(dict.fromkeys(line.sku for line in lines))
    index = {sku: i + 1 for i, sku in enumerate(skus)}
    return calls.hold_backorder(
        partition=partition,
        hold_id=hold_id,
        ttl_ms=ttl_ms,
        channel=body.channel or "",
        reference=body.reference or "",
        retention_ms=retention_ms,
        lines=[
            {
                "s": index[line.sku],
                "q": line.quantity,
                **({"l": line.location} if line.location else {}),
            }
            for line in lines
        ],
        skus=skus,
        candidates=candidates,
        channels=channels,
        owner=owner,
        needed_by_ms=needed_by_ms(body),
        offset_ms=offset_ms,
        idem=idem_for(claim, keys.tag(partition)),
    )


def reserved_record(
    reply: list[Any], claim: Claim | None, header: dict[str, str]
) -> dict[str, str] | None:
    """The record hold_backorder.lua wrote (None: a retried create found its hold), or the
    error its reply means."""
    reply = checked(claim, reply)
    kind = Reply(reply[0])
    if kind == Reply.INSUFFICIENT:
        raise InsufficientStock(
            "not enough stock, on hand or on its way, for every line",
            lines=orjson.loads(reply[1]),
        )
    if kind == Reply.NEEDED_BY_PAST:
        raise _needed_by_past()
    if kind != Reply.OK:
        return None
    created, expires = reply[2], reply[3]
    return {
        **header,
        "status": "active",
        "created_at": str(created),
        "expires_at": str(expires),
        "count_until": str(expires),
        "lines": reply[1],
        "promises": reply[4],
    }


def promised_lines(record: dict[str, str]) -> list[dict[str, Any]]:
    """A hold record's promised lines as the hold shows them: each with its supply line and
    `available_from` (that line's eta)."""
    out = []
    for pr in orjson.loads(record.get("promises") or "[]"):
        out.append(
            {
                "sku": pr["sku"],
                "location": pr["location"],
                "quantity": pr["quantity"],
                "supply_id": pr["supply_id"],
                "available_from": iso(int(pr["available_from"])),
            }
        )
    return out


def promise_skus(record: dict[str, str] | None) -> list[str]:
    """The skus a hold part has promises on (their px keys go to its transitions)."""
    if not record:
        return []
    return list(dict.fromkeys(pr["sku"] for pr in orjson.loads(record.get("promises") or "[]")))


def check_fulfillable(records: list[dict[str, str]]) -> None:
    """A hold still waiting for supply cannot be fulfilled: its units are not there."""
    for record in records:
        if record and promise_skus(record):
            raise PromiseNotReceived(
                "the hold has promised units whose supply has not been received; commit it "
                "and fulfil once they arrive, or release it"
            )
