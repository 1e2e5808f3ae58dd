"""The audit's rules: what one partition's snapshot must look like if the counters, indexes
and event log agree with the hold records (which are the truth).

- counters: each position's `held` equals the units of its active and pending hold lines, and
  `committed` the units of its committed lines (a lapsed hold the reaper has not reached yet
  still counts in `held`: that is by design, not drift);
- indexes: the expiry index holds exactly the active and pending holds (scored by count_until,
  a pending part by its deadline), `hx:<sku>` exactly the active, pending and committed lines
  ("<order>|<hold>|<location>|<qty>", the order from the record's `orders`: `line_orders`),
  scored by count_until, a committed line by +inf; index entries without a hold record are
  orphans;
- the event log: the newest event of each position (where the stream still holds one) shows
  the position's current counters (its `held` without the lines lapsed at the event's time).

Pure functions over a parsed snapshot: no store, no clock. lua/audit_repair.lua applies the same
rules (includes/audit.lua decides which records are readable, as `_readable_lines` does here).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson

HELD = frozenset({"active", "pending"})
OPEN = HELD | {"committed"}
STATUSES = OPEN | {"fulfilled", "released", "expired"}

# A line index member (lua/includes/position.lua line_member): order, hold, location, quantity.
_MEMBER = re.compile(r"^(\d+)\|(.*)\|(.*)\|(\d+)$", re.DOTALL)
COMMITTED = float("inf")  # a committed line's score in `hx` (LINE_COMMITTED)
_POSITION = re.compile(r"^(-?\d+):(-?\d+):(-?\d+):(-?\d+)$")


@dataclass(frozen=True)
class Finding:
    """One disagreement. `fixable`: `--fix` repairs it from the hold records."""

    partition: int
    kind: str
    message: str
    fixable: bool
    sku: str | None = None
    location: str | None = None
    hold: str | None = None
    index: str | None = None
    stored: Any = None
    expected: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Snapshot:
    """One partition as `audit_snapshot.lua` read it, parsed."""

    holds: dict[str, dict[str, str]]
    expiry: dict[str, int]
    skus_set: set[str]
    positions: dict[str, dict[str, str]]  # sku -> location -> "on_hand:held:committed:safety"
    hx: dict[str, dict[str, float]]  # sku -> member -> score (COMMITTED: a committed line)
    events: dict[tuple[str, str], dict[str, str]]  # newest event per (sku, location)
    events_scanned: int

    @classmethod
    def parse(cls, raw: bytes | str) -> Snapshot:
        doc = orjson.loads(raw)
        return cls(
            holds={k: dict(v) for k, v in _map(doc["holds"]).items()},
            expiry=_scored(doc["expiry"]),
            skus_set=set(as_list(doc["skus_set"])),
            positions={sku: _pairs(flat) for sku, flat in _map(doc["positions"]).items()},
            hx={sku: _floats(flat) for sku, flat in _map(doc["hx"]).items()},
            events={
                tuple(key.split("|", 1)): {"id": row[0], **_pairs(row[1:])}  # type: ignore[misc]
                for key, row in _map(doc["events"]).items()
            },
            events_scanned=int(doc["events_scanned"]),
        )


def as_list(value: Any) -> list[Any]:
    return [] if value == {} else list(value)  # cjson writes an empty table as {}


def _map(value: Any) -> dict[str, Any]:
    return {} if value == [] else dict(value)


def _pairs(flat: Any) -> dict[str, str]:
    items = as_list(flat)
    return dict(zip(items[0::2], items[1::2], strict=True))


def _scored(flat: Any) -> dict[str, int]:
    return {member: int(float(score)) for member, score in _pairs(flat).items()}


def _floats(flat: Any) -> dict[str, float]:
    return {member: float(score) for member, score in _pairs(flat).items()}


def line_orders(record: dict[str, str], n: int) -> list[str]:
    """The order of each of a record's `n` lines, as its index members carry it: its `orders`,
    or for a record written before them its created_at's for every line (hold_orders in
    lua/includes/hold.lua)."""
    if "orders" in record:
        return re.findall(r"\d+", record["orders"])
    created = record.get("created_at", "0")
    return [f"{int(created) if is_int(created) else 0}000"] * n


@dataclass
class _Line:
    sku: str
    location: str
    quantity: int

    def member(self, order: str, hold_id: str) -> str:
        return f"{order}|{hold_id}|{self.location}|{self.quantity}"


def _readable_lines(record: dict[str, str]) -> list[_Line] | None:
    """The lines of a record the audit can reason about (as audit_readable in
    lua/includes/audit.lua decides), else None."""
    status = record.get("status")
    if status not in STATUSES:
        return None
    if status in HELD and not is_int(record.get("count_until")):
        return None
    try:
        lines = orjson.loads(record.get("lines", ""))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(lines, list):
        return None
    out = []
    for line in lines:
        if not (
            isinstance(line, dict)
            and isinstance(line.get("sku"), str)
            and isinstance(line.get("location"), str)
            and isinstance(line.get("quantity"), int)
            and line["quantity"] > 0
        ):
            return None
        out.append(_Line(line["sku"], line["location"], line["quantity"]))
    if "orders" in record and len(line_orders(record, len(out))) != len(out):
        return None  # its lines' index members cannot be named
    return out


def is_int(value: str | None) -> bool:
    try:
        int(value or "")
    except ValueError:
        return False
    return True


def _position(raw: str) -> tuple[int, int, int, int] | None:
    match = _POSITION.match(raw)
    if not match:
        return None
    o, h, c, s = (int(x) for x in match.groups())
    return o, h, c, s


def check_partition(p: int, snap: Snapshot) -> list[Finding]:
    """Every disagreement in one partition's snapshot. Pure: no store, no clock."""
    out: list[Finding] = []

    def add(kind: str, message: str, fixable: bool, **data: Any) -> None:
        out.append(Finding(p, kind, message, fixable, **data))

    # What the hold records say.
    want: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # held, committed
    want_hx: dict[str, dict[str, float]] = defaultdict(dict)
    want_expiry: dict[str, int] = {}
    unreadable: set[str] = set()
    for hold_id, record in sorted(snap.holds.items()):
        lines = _readable_lines(record)
        if lines is None:
            unreadable.add(hold_id)
            add("hold_unreadable", f"hold {hold_id}: record cannot be read", False, hold=hold_id)
            continue
        status = record["status"]
        if status not in OPEN:
            continue
        if status in HELD:  # a pending part is due at its deadline (settled then)
            want_expiry[hold_id] = int(
                record["deadline"]
                if status == "pending" and is_int(record.get("deadline"))
                else record["count_until"]
            )
        orders = line_orders(record, len(lines))
        for line, order in zip(lines, orders, strict=True):
            want[(line.sku, line.location)][0 if status in HELD else 1] += line.quantity
            want_hx[line.sku][line.member(order, hold_id)] = (
                int(record["count_until"]) if status in HELD else COMMITTED
            )

    # Counters.
    stored: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    for sku, fields in sorted(snap.positions.items()):
        for loc, raw in sorted(fields.items()):
            value = _position(raw)
            if value is None:
                add(
                    "position_unreadable",
                    f"{sku} @ {loc}: position value {raw!r} cannot be read",
                    False,
                    sku=sku,
                    location=loc,
                    stored=raw,
                )
                continue
            stored[(sku, loc)] = value
        if fields and sku not in snap.skus_set:
            add("sku_unlisted", f"{sku}: has positions but is not in the skus set", True, sku=sku)
    unparsed = {(sku, loc) for sku, f in snap.positions.items() for loc in f} - set(stored)
    for sku, loc in sorted(set(stored) | set(want)):
        if (sku, loc) in unparsed:
            continue
        held, committed = want.get((sku, loc), [0, 0])
        if (sku, loc) not in stored:
            add(
                "position_missing",
                f"{sku} @ {loc}: holds have {held} held, {committed} committed, "
                "but there is no position",
                True,
                sku=sku,
                location=loc,
                expected={"held": held, "committed": committed},
            )
            continue
        _, s_held, s_committed, _ = stored[(sku, loc)]
        if (s_held, s_committed) != (held, committed):
            add(
                "counter_drift",
                f"{sku} @ {loc}: stored held {s_held}, committed {s_committed}; "
                f"hold records say held {held}, committed {committed}",
                True,
                sku=sku,
                location=loc,
                stored={"held": s_held, "committed": s_committed},
                expected={"held": held, "committed": committed},
            )

    # Indexes.
    def check_index(
        name: str,
        have: Mapping[str, float],
        wanted: Mapping[str, float],
        sku: str | None,
        member_hold: Callable[[str], str | None],
    ) -> None:
        where = f"{name}:{sku}" if sku else name
        for member, score in sorted(have.items()):
            hold_id = member_hold(member)
            if hold_id in unreadable:
                continue
            if member not in wanted:
                if hold_id is None or hold_id not in snap.holds:
                    kind, why = "index_orphan", "has no hold record"
                else:
                    status = snap.holds[hold_id].get("status")
                    kind, why = "index_stale", f"is not a live line of hold {hold_id} ({status})"
                add(kind, f"{where}: {member} {why}", True, sku=sku, hold=hold_id, index=name)
            elif wanted[member] != score:
                add(
                    "index_score",
                    f"{where}: {member} has score {score}, the hold says {wanted[member]}",
                    True,
                    sku=sku,
                    hold=hold_id,
                    index=name,
                    stored=score,
                    expected=wanted[member],
                )
        for member in sorted(set(wanted) - set(have)):
            add(
                "index_missing",
                f"{where}: {member} is missing",
                True,
                sku=sku,
                hold=member_hold(member),
                index=name,
            )

    def line_hold(member: str) -> str | None:
        match = _MEMBER.match(member)
        return match.group(2) if match else None

    check_index("expiry", snap.expiry, want_expiry, None, lambda member: member)
    for sku in sorted(set(snap.hx) | set(want_hx)):
        check_index("hx", snap.hx.get(sku, {}), want_hx.get(sku, {}), sku, line_hold)

    # The newest event of each position shows its current counters (its `held` without the
    # live lines that had lapsed at the event's time). Positions whose counters drifted are
    # reported above already: their event shows what the records say.
    drifted = {(f.sku, f.location) for f in out if f.kind == "counter_drift"}
    for (sku, loc), event in sorted(snap.events.items()):
        if (sku, loc) not in stored or (sku, loc) in drifted:
            continue
        on_hand, held, committed, safety = stored[(sku, loc)]
        at = int(event.get("at", "0"))
        lapsed = sum(
            int(m.group(4))
            for member, score in want_hx.get(sku, {}).items()
            if score <= at and (m := _MEMBER.match(member)) and m.group(3) == loc
        )
        expected = {
            "on_hand": on_hand,
            "held": held - lapsed,
            "committed": committed,
            "safety_stock": safety,
        }
        shown = {name: _int_or_none(event.get(name)) for name in expected}
        if shown != expected:
            add(
                "event_mismatch",
                f"{sku} @ {loc}: newest event {event['id']} ({event.get('type')}) shows "
                f"{shown}, the position is {expected}",
                False,
                sku=sku,
                location=loc,
                stored=shown,
                expected=expected,
            )
    return out


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and is_int(value) else None
