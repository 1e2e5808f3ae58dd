"""Sourcing of a hold's unpinned lines, as Python plans it for a multi-partition hold: the rule
hold_reserve.lua applies within one partition (without a split), written here for the plan.
tests/lua/test_rules.py runs both on the same positions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# sku -> location -> available there (a location without a position: absent)
Free = Mapping[str, Mapping[str, int]]


def single_locations(free: Free, need: Mapping[str, int], candidates: Sequence[str]) -> list[str]:
    """The candidates, best first, at which every sku has all the units it needs."""
    return [loc for loc in candidates if all(free[s].get(loc, 0) >= n for s, n in need.items())]


def shortage(free: Free, need: Mapping[str, int]) -> list[dict[str, Any]]:
    """What a hold no single location serves is short of, per sku with its best location's
    units: the skus no location covers, or, when each fits somewhere but not all at one, every
    sku."""
    best = {s: max(free[s].values(), default=0) for s in need}
    short = [
        {"sku": s, "requested": n, "available": best[s]} for s, n in need.items() if best[s] < n
    ]
    return short or [{"sku": s, "requested": n, "available": best[s]} for s, n in need.items()]
