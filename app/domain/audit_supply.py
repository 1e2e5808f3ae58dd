"""The audit's rules for future supply (docs/architecture.md, "Future supply and promising"):
what one partition's supply lines and promises must look like.

- `promise_over_supply`: the units promised from a supply line (by holds that still count)
  exceed the line's quantity: a unit promised twice;
- `promise_orphan`: a promise that still counts names a supply line that does not exist (a
  cancelled line breaks its promises in the same step, so this is drift);
- `promise_without_hold`: a promise that still counts whose hold is gone, not open (active,
  committed, or a pending part of a multi-partition hold), or does not list it.

Read in one atomic step by lua/audit_supply.lua; none is repaired by `--fix` (a person decides
whether to re-promise or release), so each is reported, not fixable.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from app.domain.audit_rules import Finding, as_list

_OPEN = frozenset({"active", "pending", "committed"})


def check_supply(p: int, raw: str | bytes) -> list[Finding]:
    doc = orjson.loads(raw)
    now = int(doc["now"])
    holds = {} if doc["holds"] == [] else doc["holds"]
    out: list[Finding] = []
    for sku, flat in ({} if doc["promises"] == [] else doc["promises"]).items():
        items = as_list(flat)
        lines = _pairs(as_list(({} if doc["supply"] == [] else doc["supply"]).get(sku, [])))
        promised: dict[str, int] = defaultdict(int)
        for name, value in zip(items[0::2], items[1::2], strict=True):
            hold_id, location, supply_id = name.split("|", 2)
            units, count_until = (int(x) for x in value.split("|")[:2])
            if count_until != -1 and count_until <= now:
                continue  # lapsed: no longer counts (the reaper tidies it up)
            line = f"{location}|{supply_id}"
            promised[line] += units
            where = {"sku": sku, "location": location, "hold": hold_id}
            if line not in lines:
                out.append(
                    Finding(
                        p,
                        "promise_orphan",
                        f"{units} units promised from missing supply line {supply_id!r}",
                        False,
                        **where,
                    )
                )
            if not _hold_lists(holds.get(hold_id), sku, location, supply_id):
                out.append(
                    Finding(
                        p,
                        "promise_without_hold",
                        f"promise of {units} units from {supply_id!r} has no open hold listing it",
                        False,
                        **where,
                    )
                )
        for line, units in promised.items():
            if line in lines:
                quantity = int(orjson.loads(lines[line])["q"])
                if units > quantity:
                    location, supply_id = line.split("|", 1)
                    out.append(
                        Finding(
                            p,
                            "promise_over_supply",
                            f"{units} units promised from supply line {supply_id!r} of {quantity}",
                            False,
                            sku=sku,
                            location=location,
                            stored=units,
                            expected=quantity,
                        )
                    )
    return out


def _pairs(items: list[Any]) -> dict[str, str]:
    return dict(zip(items[0::2], items[1::2], strict=True))


def _hold_lists(record: Any, sku: str, location: str, supply_id: str) -> bool:
    if not isinstance(record, list) or not record or record[0] not in _OPEN:
        return False
    try:
        promises = orjson.loads(record[1]) if isinstance(record[1], str) else []
    except orjson.JSONDecodeError:
        return False
    return any(
        isinstance(pr, dict)
        and (pr.get("sku"), pr.get("location"), pr.get("supply_id")) == (sku, location, supply_id)
        for pr in (promises if isinstance(promises, list) else [])
    )
