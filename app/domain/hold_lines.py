"""Lines of a hold as clients see them, and the checks and refusals of partial release and
fulfil (HoldService.change_lines, lua/hold_lines.lua)."""

from __future__ import annotations

from typing import Any

import orjson

from app.domain.errors import (
    HoldNotFound,
    InvalidTransition,
    LineQuantityExceeded,
    UnknownHoldLine,
)
from app.store.calls import HoldStatus, Reply

# The statuses partial changes start from (hold_lines.lua checks the same, per part).
LINES_FROM = {
    "release": (HoldStatus.ACTIVE, HoldStatus.COMMITTED),
    "fulfil": (HoldStatus.COMMITTED,),
}


def check_lines(
    records: list[dict[str, str]], partitions: list[int], by_part: dict[int, list[dict[str, Any]]]
) -> None:
    """Every requested line is an open line of its part with the units asked (what
    hold_lines.lua checks per part), checked on every part before any changes. A promised
    line (a backorder hold's) is named by its supply_id too."""
    for p, record in zip(partitions, records, strict=True):
        if not record or p < 0:  # gone, or changed by this request's first attempt
            continue
        open_units = {
            (x["sku"], x["location"], x.get("supply_id")): x["quantity"]
            for x in orjson.loads(record["lines"]) + orjson.loads(record.get("promises") or "[]")
        }
        known = set(open_units) | {
            (x["sku"], x["location"], x.get("supply_id"))
            for x in orjson.loads(record.get("closed") or "[]")
        }
        for want in by_part[p]:
            key = (want["sku"], want["location"], want.get("supply_id"))
            if key not in known:
                raise UnknownHoldLine(f"the hold has no line {key[0]}@{key[1]}", line=want)
            if want["quantity"] > open_units.get(key, 0):
                raise LineQuantityExceeded(
                    f"line {key[0]}@{key[1]} has {open_units.get(key, 0)} open units",
                    line=want,
                    open=open_units.get(key, 0),
                )


def raise_for(hold_id: str, op: str, kind: Reply, reply: list[Any]) -> None:
    """hold_lines.lua's refusals as domain errors (nothing changed)."""
    if kind in (Reply.OK, Reply.REPLAYED):
        return
    if kind == Reply.NOT_FOUND:
        raise HoldNotFound(f"no hold {hold_id!r}")
    if kind == Reply.EXPIRED:
        raise InvalidTransition.expired(hold_id)
    if kind == Reply.INVALID:
        raise InvalidTransition.refused(hold_id, reply[1], f"{op} its lines")
    if kind == Reply.UNKNOWN_LINE:
        raise UnknownHoldLine(
            f"the hold has no line {_line_name(reply[1])}", line=orjson.loads(reply[1])
        )
    if kind == Reply.OVER_QUANTITY:
        raise LineQuantityExceeded(
            f"line {_line_name(reply[1])} has {reply[2]} open units",
            line=orjson.loads(reply[1]),
            open=int(reply[2]),
        )
    raise AssertionError(f"hold {hold_id}: hold_lines gave {reply}")


def _line_name(line_json: str) -> str:
    line = orjson.loads(line_json)
    return f"{line.get('sku')}@{line.get('location')}"


def line_views(record: dict[str, str], status: str) -> list[dict[str, Any]]:
    """A part's lines as clients see them: per (sku, location), the units reserved, released
    and fulfilled. The record's `lines` are its open units (released or fulfilled with the
    hold when it is in that status) and `closed` what partial operations closed
    (hold_lines.lua)."""
    views: dict[tuple[str, str], dict[str, Any]] = {}

    def view(sku: str, location: str) -> dict[str, Any]:
        key = (sku, location)
        if key not in views:
            views[key] = {
                "sku": sku,
                "location": location,
                "quantity": 0,
                "released": 0,
                "fulfilled": 0,
            }
        return views[key]

    for line in orjson.loads(record["lines"]):
        v = view(line["sku"], line["location"])
        v["quantity"] += line["quantity"]
        if status in (HoldStatus.RELEASED, HoldStatus.FULFILLED):
            v[status] += line["quantity"]
    closed = record.get("closed")  # most holds have none: nothing to decode
    for c in orjson.loads(closed) if closed else ():
        if "supply_id" in c:  # a promised line's: backorder.promised_lines shows it
            continue
        v = view(c["sku"], c["location"])
        v["quantity"] += c["quantity"]
        v[c["as"]] += c["quantity"]
    # `released` and `fulfilled` only where non-zero: a line never touched keeps the
    # contract's {sku, location, quantity}.
    return [{k: n for k, n in v.items() if n or k == "quantity"} for v in views.values()]
