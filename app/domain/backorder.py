"""Holds that may wait for stock on its way (`allow_backorder`): lua/hold_backorder.lua takes
on-hand units first and then promises units of supply lines whose eta is not after
`needed_by` (docs/architecture.md, "Future supply and promising"). A hold without
allow_backorder never comes here.

A hold whose skus share a partition is one call of the script; over several partitions each
part is one call reserving it `pending` (its lines and promises count until its deadline +
grace), then confirmed or undone by the two-phase protocol of every multi-partition hold
(HoldService._try_parts, app/domain/hold_parts.py): the transitions move or give back the
promises with the lines.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.domain.clock import iso
from app.domain.errors import InsufficientStock, InvalidRequest, PromiseNotReceived
from app.domain.models import HoldIn, LineChangeIn, LineOp
from app.domain.supply import timestamp_ms


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
        raise needed_by_past()
    return ms


def needed_by_past() -> InvalidRequest:
    """hold_backorder.lua's "needed_by_past": needed_by is not after the store's now."""
    return InvalidRequest(
        "needed_by must be after now",
        errors=[{"loc": ["body", "needed_by"], "msg": "not after now"}],
    )


def short(lines: list[dict[str, Any]]) -> InsufficientStock:
    """The refusal of a backorder hold whose lines cannot all be served."""
    return InsufficientStock("not enough stock, on hand or on its way, for every line", lines=lines)


def promised_lines(record: dict[str, str]) -> list[dict[str, Any]]:
    """A hold record's promised lines as the hold shows them: each with its supply line and
    `available_from` (that line's eta)."""
    if not (record.get("closed") or record.get("promises")):
        return []  # most holds: no JSON to decode
    released: dict[tuple[str, str, str], dict[str, Any]] = {}
    for c in orjson.loads(record.get("closed") or "[]"):
        if "supply_id" in c:  # units of a promised line released by a partial release
            key = (c["sku"], c["location"], c["supply_id"])
            released.setdefault(key, {**c, "quantity": 0})["quantity"] += c["quantity"]
    out = []
    for pr in orjson.loads(record.get("promises") or "[]"):
        gone = released.pop((pr["sku"], pr["location"], pr["supply_id"]), {"quantity": 0})
        out.append(_promised_view(pr, pr["quantity"] + gone["quantity"], gone["quantity"]))
    # A promised line released whole is no longer in `promises`: shown from `closed`.
    out += [_promised_view(c, c["quantity"], c["quantity"]) for c in released.values()]
    return out


def _promised_view(pr: dict[str, Any], quantity: int, released: int) -> dict[str, Any]:
    return {
        "sku": pr["sku"],
        "location": pr["location"],
        "quantity": quantity,
        **({"released": released} if released else {}),
        "supply_id": pr["supply_id"],
        "available_from": iso(int(pr["available_from"])),
    }


def check_line_op(op: LineOp, lines: list[LineChangeIn]) -> None:
    """A promised line (named by its supply_id) can be released, not fulfilled: its units are
    not there yet; once received they join the hold's on-hand lines, which can.

    Refused here, before the hold is read and without the store's clock, on purpose: unlike
    the whole fulfil's promise_not_received (hold_fulfil.lua), which depends on the hold's
    state (its promises not received yet, so a lapsed hold is expired first, by `TIME`), this
    refusal depends only on the request. No state makes it valid: a partial fulfil needs a
    committed hold (which never lapses), and a received promise leaves `promises` (its units
    are then named without a supply_id). Nor does a date decide it: neither fulfil compares a
    promise's eta (`available_from`) with the clock, since only a receipt brings the units.
    So no clock could change the outcome, only which 409 a lapsed active hold gets; its
    expiry is the store's clock's anyway (reads, transitions and the reaper)."""
    if op == "fulfil" and any(line.supply_id for line in lines):
        raise PromiseNotReceived(
            "a promised line cannot be fulfilled: its supply has not been received; fulfil "
            "its units once they arrive (they then join the hold's on-hand lines)"
        )


def promises(record: dict[str, str] | None) -> list[dict[str, Any]]:
    """A hold part's open promises: [{sku, location, supply_id, quantity, available_from}]."""
    if not record:
        return []
    out: list[dict[str, Any]] = orjson.loads(record.get("promises") or "[]")
    return out


def promise_skus(record: dict[str, str] | None) -> list[str]:
    """The skus a hold part has promises on (their px keys go to its transitions)."""
    return list(dict.fromkeys(pr["sku"] for pr in promises(record)))


def not_received() -> PromiseNotReceived:
    """hold_fulfil.lua's refusal of a hold (active or committed, not lapsed by the store's
    clock) that still has promised units not received: its units are not there to ship."""
    return PromiseNotReceived(
        "the hold has promised units whose supply has not been received; commit it and fulfil "
        "once they arrive, or release it"
    )


def promised_elsewhere(records: list[dict[str, str]]) -> bool:
    """Does a part other than the home one (records[0]) list promised units? The home part's
    fulfil takes this as an argument (its script cannot read another slot); promises only
    ever shrink, so a stale True refuses only what a retry would allow."""
    return any(promises(r) for r in records[1:])
