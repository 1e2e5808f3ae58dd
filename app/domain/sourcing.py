"""Sourcing of a hold's unpinned lines, as Python plans it for a multi-partition hold: the rule
hold_reserve.lua applies within one partition (without a split), written here for the plan.
tests/lua/test_rules.py runs both on the same positions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain.kits import KitLine
from app.domain.models import HoldLineIn

# sku -> location -> available there (a location without a position: absent)
Free = Mapping[str, Mapping[str, int]]


@dataclass
class Part:
    """The lines of a hold that live in one partition."""

    partition: int
    lines: list[HoldLineIn] = field(default_factory=list)

    def skus(self) -> list[str]:
        return list(dict.fromkeys(line.sku for line in self.lines))


def pin_groups(parts: list[Part], free: Free, candidates: Sequence[str]) -> list[Part]:
    """Each unpinned kit line's components (a group, possibly over several partitions) pinned
    to the first candidate that serves the whole group from `free` less what earlier groups
    took (lua/includes/split.lua's rule without a cap); a group no candidate serves stays
    unpinned (its part's script then finds it short). Other lines are left as they are."""
    groups: dict[int, list[KitLine]] = {}
    for part in parts:
        for line in part.lines:
            if isinstance(line, KitLine) and line.location is None:
                groups.setdefault(line.group, []).append(line)
    if not groups:
        return parts
    taken: dict[tuple[str, str], int] = {}
    where: dict[int, str] = {}
    for g, lines in groups.items():
        need: dict[str, int] = {}
        for line in lines:
            need[line.sku] = need.get(line.sku, 0) + line.quantity
        for loc in candidates:
            if all(free[s].get(loc, 0) - taken.get((s, loc), 0) >= n for s, n in need.items()):
                where[g] = loc
                for s, n in need.items():
                    taken[(s, loc)] = taken.get((s, loc), 0) + n
                break
    return [
        Part(
            part.partition,
            [
                line.model_copy(update={"location": where[line.group]})
                if isinstance(line, KitLine) and line.location is None and line.group in where
                else line
                for line in part.lines
            ],
        )
        for part in parts
    ]


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


def capped_split(
    free: Free, lines: Sequence[tuple[str, int]], candidates: Sequence[str], cap: int
) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """lua/includes/split.lua's capped rule for lines without kit groups, planned from a
    snapshot for a multi-partition hold: up to `cap` locations, each the candidate serving the
    most of what the lines still need (ties: candidate order). Returns ({sku: {location:
    units}}, short lines as the script reports them); tests/lua/test_rules.py runs both."""
    left = [q for _, q in lines]
    taken: dict[tuple[str, str], int] = {}
    plan: dict[str, dict[str, int]] = {}

    def have(sku: str, loc: str) -> int:
        return max(free[sku].get(loc, 0) - taken.get((sku, loc), 0), 0)

    used: set[str] = set()
    for _ in range(cap):
        best, best_score = None, 0
        for loc in candidates:
            if loc not in used:
                score = sum(min(n, have(sku, loc)) for (sku, _), n in zip(lines, left, strict=True))
                if score > best_score:
                    best, best_score = loc, score
        if best is None:
            break
        used.add(best)
        for i, (sku, _) in enumerate(lines):
            n = min(left[i], have(sku, best))
            if n > 0:
                taken[(sku, best)] = taken.get((sku, best), 0) + n
                at = plan.setdefault(sku, {})
                at[best] = at.get(best, 0) + n
                left[i] -= n
    short = [
        {"sku": sku, "requested": q, "available": q - n}
        for (sku, q), n in zip(lines, left, strict=True)
        if n
    ]
    return plan, short


def pin_plan(parts: list[Part], plan: Mapping[str, Mapping[str, int]]) -> list[Part]:
    """Each part with its unpinned lines replaced by one pinned line per (sku, location) of
    `plan` (the lines of one sku are planned together)."""
    out = []
    for part in parts:
        lines = [line for line in part.lines if line.location is not None]
        for sku in dict.fromkeys(line.sku for line in part.lines if line.location is None):
            lines += [HoldLineIn(sku=sku, quantity=n, location=loc) for loc, n in plan[sku].items()]
        out.append(Part(part.partition, lines))
    return out
