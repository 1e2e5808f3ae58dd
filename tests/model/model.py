"""The model: the contract's stock and hold semantics in plain Python, no store, no HTTP.

`Model` keeps positions and holds; `plan_hold` says what a hold request must get (201 with
which lines, 409, 422 or 404); `check_split` accepts any allocation a split may make. Time is
the model's own `now`, moved with the service's ManualClock: START_MS plus the clock's offset
(the service adds the same offset to the store's clock, so expiries compare alike).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from app import keys
from tests.api.helpers import skus_in_distinct_partitions, skus_in_one_partition

# Two skus that share a partition (their holds are one script call) and one that does not
# (a hold over it and another is reserved in parts).
SKU_A, SKU_B = skus_in_one_partition(2, "m")
SKU_C = next(
    s
    for s in skus_in_distinct_partitions(8, "n")
    if keys.partition_of(s) != keys.partition_of(SKU_A)
)
SKUS = [SKU_A, SKU_B, SKU_C]
LOCATIONS = ["dc", "store-a", "store-b"]
UNKNOWN_LOCATION = "nowhere"
CHANNEL = "web"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class MHold:
    id: str
    channel: str | None
    status: str  # active, committed, fulfilled, released, expired (as marked in the store)
    expires_at: int
    lines: dict[tuple[str, str], int]  # the open units (partial releases and fulfils close some)
    closed: dict[tuple[tuple[str, str], str], int] = field(default_factory=dict)  # (pos, as)

    def view(self, now: int) -> dict[tuple[str, str], dict[str, int]]:
        """The lines as GET shows them: per position the units reserved, and those released
        and fulfilled (partly, or with the whole hold), zero counts left out."""
        status = self.visible_status(now)
        out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for pos, qty in self.lines.items():
            out[pos]["quantity"] += qty
            if status in ("released", "fulfilled"):
                out[pos][status] += qty
        for (pos, as_), qty in self.closed.items():
            out[pos]["quantity"] += qty
            out[pos][as_] += qty
        return {pos: {k: n for k, n in v.items() if n} for pos, v in out.items()}

    def visible_status(self, now: int) -> str:
        """What GET answers: an active hold whose time is up is expired, reaped or not."""
        return "expired" if self.status == "active" and self.expires_at <= now else self.status

    def live(self, now: int) -> bool:
        return self.status == "active" and self.expires_at > now


@dataclass
class Model:
    now: int = START_MS
    priorities: dict[str, int] = field(default_factory=dict)
    channel_locations: list[str] = field(default_factory=list)
    threshold: int = 0
    on_hand: dict[tuple[str, str], int] = field(default_factory=dict)
    safety: dict[tuple[str, str], int] = field(default_factory=dict)
    holds: dict[str, MHold] = field(default_factory=dict)
    seen_events: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (loc, id)
    # Every change of on_hand, with its cause: units are created or destroyed only here.
    ledger: list[tuple[str, int]] = field(default_factory=list)

    def held(self, pos: tuple[str, str]) -> int:
        return sum(h.lines.get(pos, 0) for h in self.holds.values() if h.live(self.now))

    def committed(self, pos: tuple[str, str]) -> int:
        return sum(h.lines.get(pos, 0) for h in self.holds.values() if h.status == "committed")

    def available(self, pos: tuple[str, str]) -> int:
        if pos not in self.on_hand:
            return 0
        free = self.on_hand[pos] - self.held(pos) - self.committed(pos) - self.safety[pos]
        return max(0, free)

    def position(self, sku: str, loc: str) -> dict[str, Any]:
        pos = (sku, loc)
        return {
            "location": loc,
            "on_hand": self.on_hand[pos],
            "held": self.held(pos),
            "committed": self.committed(pos),
            "safety_stock": self.safety[pos],
            "available": self.available(pos),
        }

    def set_on_hand(self, pos: tuple[str, str], value: int, cause: str) -> None:
        self.ledger.append((cause, value - self.on_hand.get(pos, 0)))
        self.on_hand[pos] = value
        self.safety.setdefault(pos, 0)

    def candidates(self, channel: str | None) -> list[str]:
        eligible = self.channel_locations if channel else LOCATIONS
        return sorted(eligible, key=lambda loc: (self.priorities[loc], loc))


@dataclass
class Plan:
    """The model's prediction for a hold request."""

    outcome: str  # "created", "insufficient", "ineligible", "unknown_location"
    exact: dict[tuple[str, str], int] | None = None  # the allocation, when it is determined
    # For a split: what each position could give, the pinned units, the units to source per
    # sku and the candidate locations; any allocation within these is the contract's.
    free: dict[tuple[str, str], int] = field(default_factory=dict)
    pinned: dict[tuple[str, str], int] = field(default_factory=dict)
    need: dict[str, int] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)


def plan_hold(
    model: Model, channel: str | None, lines: list[tuple[str, int, str | None]], split: bool
) -> Plan:
    """Sourcing as the contract states it: pinned lines from their location; the other lines
    from one location for all of them if any can serve them, lowest priority first; otherwise
    split across the candidates only when allowed; all or nothing."""
    for _, _, loc in lines:  # pinned locations are checked line by line, in order
        if loc == UNKNOWN_LOCATION:
            return Plan("unknown_location")
        if channel and loc and loc not in model.channel_locations:
            return Plan("ineligible")
    free = {(s, loc): model.available((s, loc)) for s in SKUS for loc in LOCATIONS}
    taken: dict[tuple[str, str], int] = defaultdict(int)
    for sku, qty, loc in lines:
        if loc is not None:
            if free[(sku, loc)] - taken.get((sku, loc), 0) < qty:
                return Plan("insufficient")
            taken[(sku, loc)] += qty
    need: dict[str, int] = defaultdict(int)
    for sku, qty, loc in lines:
        if loc is None:
            need[sku] += qty
    candidates = model.candidates(channel)
    taken = defaultdict(int, {pos: q for pos, q in taken.items() if q})
    if not need:
        return Plan("created", exact=dict(taken))
    for loc in candidates:
        if all(free[(s, loc)] - taken.get((s, loc), 0) >= n for s, n in need.items()):
            exact = dict(taken)
            for s, n in need.items():
                exact[(s, loc)] = exact.get((s, loc), 0) + n
            return Plan("created", exact=exact)
    if not split:
        return Plan("insufficient")
    for s, n in need.items():
        if sum(max(0, free[(s, loc)] - taken.get((s, loc), 0)) for loc in candidates) < n:
            return Plan("insufficient")
    return Plan("created", free=free, pinned=dict(taken), need=dict(need), candidates=candidates)


def check_split(plan: Plan, got: dict[tuple[str, str], int]) -> None:
    """A split allocation serves every line, takes no more than is free anywhere, keeps the
    pinned units where they were pinned and sources the rest from candidates only."""
    for (sku, loc), qty in got.items():
        assert qty <= plan.free[(sku, loc)], (sku, loc, qty, plan)
        assert qty >= plan.pinned.get((sku, loc), 0), (sku, loc, qty, plan)
        if qty > plan.pinned.get((sku, loc), 0):
            assert loc in plan.candidates, (sku, loc, plan)
    for sku in SKUS:
        wanted = plan.need.get(sku, 0) + sum(q for (s, _), q in plan.pinned.items() if s == sku)
        assert sum(q for (s, _), q in got.items() if s == sku) == wanted, (sku, got, plan)


def line_views(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, int]]:
    """A hold answer's lines by position: quantity, released, fulfilled (as given)."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for line in body["lines"]:
        pos = (line["sku"], line["location"])
        assert pos not in out, ("a position appears twice in a hold", body)
        out[pos] = {k: line[k] for k in ("quantity", "released", "fulfilled") if k in line}
    return out


def lines_of(body: dict[str, Any]) -> dict[tuple[str, str], int]:
    got: dict[tuple[str, str], int] = {}
    for line in body["lines"]:
        pos = (line["sku"], line["location"])
        assert pos not in got, ("a position appears twice in a hold", body)
        got[pos] = line["quantity"]
    return got


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (status, code, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body
