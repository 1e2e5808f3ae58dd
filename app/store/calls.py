"""Typed store calls: one builder per script, the one Python place that lays out its KEYS and
ARGV as the header of its `lua/` file documents them, and the reply kinds as enums.

A builder returns a `Call` (script, keys, args); `Scripts.run(call)` sends it. Benchmarks
that send raw EVALSHA (or feed redis-benchmark) use `Call.argv()`. Replies compare equal to
the strings the scripts send (StrEnum), so a decoded reply's first element is checked
against `Reply.OK`, never against a literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from app import keys


class Script(StrEnum):
    """Every script of `lua/` the service calls (the fields of app/store/scripts.Scripts)."""

    STOCK_SET = "stock_set"
    STOCK_EVENTS = "stock_events"
    EVENT_CLAIM = "event_claim"
    AVAILABILITY = "availability"
    HOLD_READ = "hold_read"
    HOLD_DUE = "hold_due"
    HOLD_RESERVE = "hold_reserve"
    HOLD_COMMIT = "hold_commit"
    HOLD_FULFIL = "hold_fulfil"
    HOLD_RELEASE = "hold_release"
    HOLD_EXTEND = "hold_extend"
    HOLD_CONFIRM = "hold_confirm"
    HOLD_ABORT = "hold_abort"
    HOLD_ROLLBACK = "hold_rollback"
    HOLD_EXPIRE = "hold_expire"
    HOLD_LINES = "hold_lines"
    HOLD_LIST = "hold_list"
    HOLD_INDEX_SWEEP = "hold_index_sweep"
    HOLD_METADATA = "hold_metadata"
    IDEMPOTENCY_CLAIM = "idempotency_claim"
    IDEMPOTENCY_COMPLETE = "idempotency_complete"
    CONFIG_PUT = "config_put"
    STOCK_IMPORT = "stock_import"
    AUDIT_SNAPSHOT = "audit_snapshot"
    AUDIT_REPAIR = "audit_repair"
    SUPPLY_PUT = "supply_put"
    SUPPLY_READ = "supply_read"
    HOLD_BACKORDER = "hold_backorder"
    SUPPLY_RECEIVE = "supply_receive"
    AUDIT_SUPPLY = "audit_supply"
    WEBHOOK_FENCED_SET = "webhook_fenced_set"
    WEBHOOK_LEASE_RENEW = "webhook_lease_renew"
    WEBHOOK_LEASE_RELEASE = "webhook_lease_release"


class Reply(StrEnum):
    """The first element of a script's reply (each script's header lists its own)."""

    OK = "ok"
    INSUFFICIENT = "insufficient"
    EXISTS = "exists"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    KEYS_MISMATCH = "keys_mismatch"
    NOT_DUE = "not_due"
    UNDECIDED = "undecided"
    STALE = "stale"
    IDEM = "idem"  # the Idempotency-Key claim's answer (lua/includes/idempotency.lua)
    CLAIMED = "claimed"
    STORED = "stored"
    RELEASED = "released"
    NOT_CLAIMED = "not_claimed"
    ETA_PAST = "eta_past"
    ETA_BEYOND = "eta_beyond"
    NEEDED_BY_PAST = "needed_by_past"
    UNKNOWN_SUPPLY = "unknown_supply"
    RETRY = "retry"
    UNKNOWN_LINE = "unknown_line"  # hold_lines.lua
    OVER_QUANTITY = "over_quantity"
    PROMISE_NOT_RECEIVED = "promise_not_received"  # hold_fulfil.lua
    TOO_MANY = "too_many"  # hold_metadata.lua


class IdemReply(StrEnum):
    """The second element of an {"idem", ...} reply."""

    DONE = "done"
    REUSED = "reused"
    IN_USE = "in_use"


class EventStatus(StrEnum):
    """stock_events.lua's status of each event."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    ID_REUSED = "id_reused"


class HoldStatus(StrEnum):
    """A hold record's `status` (and what a transition moves it to)."""

    PENDING = "pending"
    ACTIVE = "active"
    COMMITTED = "committed"
    FULFILLED = "fulfilled"
    RELEASED = "released"
    EXPIRED = "expired"


class Transition(StrEnum):
    """The scripts with the transition layout (lua/includes/transition.lua)."""

    CONFIRM = Script.HOLD_CONFIRM.value
    COMMIT = Script.HOLD_COMMIT.value
    FULFIL = Script.HOLD_FULFIL.value
    RELEASE = Script.HOLD_RELEASE.value
    EXTEND = Script.HOLD_EXTEND.value
    ABORT = Script.HOLD_ABORT.value
    ROLLBACK = Script.HOLD_ROLLBACK.value
    EXPIRE = Script.HOLD_EXPIRE.value
    LINES = Script.HOLD_LINES.value  # partial release or fulfil (no settle step uses it)

    @property
    def script(self) -> Script:
        return Script(self.value)

    @property
    def target(self) -> HoldStatus | None:
        """The status this transition leaves a part in (a step that finds it there is a
        no-op); None for abort (the record is deleted)."""
        return _TARGETS.get(self)


_TARGETS = {
    Transition.CONFIRM: HoldStatus.ACTIVE,
    Transition.COMMIT: HoldStatus.COMMITTED,
    Transition.FULFIL: HoldStatus.FULFILLED,
    Transition.RELEASE: HoldStatus.RELEASED,
    Transition.EXTEND: HoldStatus.ACTIVE,
    Transition.ROLLBACK: HoldStatus.EXPIRED,
    Transition.EXPIRE: HoldStatus.EXPIRED,
}


# The records every request builds (a call, a new hold, a claim) are NamedTuples: immutable as
# a frozen dataclass, made for a quarter of its cost (a frozen dataclass sets each field
# through object.__setattr__: 37k instructions for NewHold's 18, 5 % of a flash hold;
# docs/benchmarks.md, "Session 7, the hold's Python").


class Idem(NamedTuple):
    """The Idempotency-Key claim a keyed script takes first: its record is the last key, and
    (fingerprint, lease ms, retention s) the last three ARGV (lua/includes/idempotency.lua)."""

    record: str
    fingerprint: str
    lease_ms: int
    ttl_seconds: int

    def args(self) -> list[Any]:
        return [self.fingerprint, self.lease_ms, self.ttl_seconds]


def _idem_keys(idem: Idem | None) -> list[str]:
    return [] if idem is None else [idem.record]


def _idem_args(idem: Idem | None) -> list[Any]:
    return [] if idem is None else idem.args()


class Call(NamedTuple):
    script: Script
    keys: list[str]
    args: list[Any]

    def argv(self, sha: str) -> list[str]:
        """EVALSHA's arguments after the command name, as strings (redis-benchmark, raw
        pipelines)."""
        args = [a.decode() if isinstance(a, bytes) else str(a) for a in self.args]
        return [sha, str(len(self.keys)), *self.keys, *args]


def _sku_keys(p: int, skus: Sequence[str]) -> list[str]:
    out: list[str] = []
    for sku in skus:
        out += keys.sku_keys(p, sku)
    return out


# -- holds ---------------------------------------------------------------------------------


class NewHold(NamedTuple):
    """One partition's part of a new hold (the whole hold when it has one partition), as
    hold_reserve.lua and hold_backorder.lua both take it; each lays it out in its own ARGV
    order (their headers). `lines`: [{"s": sku index (1-based), "q": quantity, "l"?}];
    `metadata`: a JSON object, "" for none."""

    partition: int
    hold_id: str
    status: HoldStatus
    ttl_ms: int
    pending_ttl_ms: int  # a pending part's deadline is now + this
    pending_grace_ms: int  # a pending part's lines count until its deadline + this
    channel: str
    reference: str
    parts: str  # every partition of the hold, comma-separated, its home first
    retention_ms: int
    lines: list[dict[str, Any]]
    skus: list[str]
    candidates: list[str]
    channels: bytes
    owner: str
    metadata: bytes | str = ""
    offset_ms: int = 0
    idem: Idem | None = None


def hold_reserve(hold: NewHold, *, allow_split: bool, max_locations: int | None = None) -> Call:
    """hold_reserve.lua; a line may also carry "g", the kit line a component line belongs to
    (a group is sourced at one location)."""
    h, p = hold, hold.partition
    return Call(
        Script.HOLD_RESERVE,
        [
            keys.hold(p, h.hold_id),
            keys.expiry_index(p),
            keys.events(p),
            *_sku_keys(p, h.skus),
            keys.holds_index(p),
            *_idem_keys(h.idem),
        ],
        [
            h.offset_ms,
            h.hold_id,
            h.status.value,
            h.ttl_ms,
            h.pending_ttl_ms,
            h.channel,
            h.reference,
            h.parts,
            "1" if allow_split else "0",
            h.retention_ms,
            orjson.dumps(h.lines),
            orjson.dumps(h.skus),
            orjson.dumps(h.candidates),
            max_locations or "",
            h.channels,
            h.owner,
            h.pending_grace_ms,
            h.metadata,
            *_idem_args(h.idem),
        ],
    )


def transition(
    script: Transition,
    *,
    partition: int,
    hold_id: str,
    skus: list[str],
    retention_ms: int,
    finished_ttl_seconds: int,
    channels: bytes,
    op_digest: str | None = None,
    marker_ttl_seconds: int = 0,
    offset_ms: int = 0,
    ttl_ms: int | None = None,
    tombstone: bytes | None = None,
    lines_op: tuple[str, bytes] | None = None,
    idem: Idem | None = None,
    promise_skus: Sequence[str] = (),
    promised_elsewhere: bool = False,
) -> Call:
    """The transition layout (lua/includes/transition.lua) of `script`; `ttl_ms` is
    hold_extend.lua's ARGV[8], `tombstone` hold_rollback.lua's, `lines_op` (operation, lines
    JSON) hold_lines.lua's ARGV[8..9], `promised_elsewhere` (another part of the hold has
    promised units not received) hold_fulfil.lua's ARGV[8]. `promise_skus`: the skus the hold
    has promises on (record field `promises`): their px keys go after the sku pairs
    (lua/includes/promise.lua finds them by shape)."""
    if (lines_op is not None) != (script is Transition.LINES):
        raise ValueError("lines_op goes with hold_lines, and only with it")
    if (ttl_ms is not None) != (script is Transition.EXTEND):
        raise ValueError("ttl_ms goes with hold_extend, and only with it")
    if tombstone is not None and script is not Transition.ROLLBACK:
        raise ValueError("a tombstone goes with hold_rollback only")
    if promised_elsewhere and script is not Transition.FULFIL:
        raise ValueError("promised_elsewhere goes with hold_fulfil only")
    p = partition
    extra: list[Any] = [ttl_ms] if ttl_ms is not None else []
    if script is Transition.FULFIL:
        extra = [1 if promised_elsewhere else 0]
    if tombstone is not None:
        extra = [tombstone]
    if lines_op is not None:
        extra = list(lines_op)
    return Call(
        script.script,
        [
            keys.hold(p, hold_id),
            keys.expiry_index(p),
            keys.events(p),
            keys.op_marker(p, op_digest or "-"),
            *_sku_keys(p, skus),
            *(keys.promises(p, sku) for sku in promise_skus),
            *_idem_keys(idem),
        ],
        [
            offset_ms,
            hold_id,
            retention_ms,
            finished_ttl_seconds,
            orjson.dumps(skus),
            marker_ttl_seconds if op_digest else 0,
            channels,
            *extra,
            *_idem_args(idem),
        ],
    )


def hold_backorder(hold: NewHold, *, needed_by_ms: int) -> Call:
    """hold_backorder.lua: a hold that may promise future supply, or (`status` pending) one
    part of a multi-partition one; `needed_by_ms` 0: any eta."""
    h, p = hold, hold.partition
    ks = [keys.hold(p, h.hold_id), keys.expiry_index(p), keys.events(p)]
    for sku in h.skus:
        ks += [*keys.sku_keys(p, sku), keys.supply(p, sku), keys.promises(p, sku)]
    return Call(
        Script.HOLD_BACKORDER,
        [*ks, keys.holds_index(p), *_idem_keys(h.idem)],
        [
            h.offset_ms,
            h.hold_id,
            h.ttl_ms,
            h.channel,
            h.reference,
            h.parts,
            h.retention_ms,
            orjson.dumps(h.lines),
            orjson.dumps(h.skus),
            orjson.dumps(h.candidates),
            h.channels,
            h.owner,
            needed_by_ms,
            h.metadata,
            h.status.value,
            h.pending_ttl_ms,
            h.pending_grace_ms,
            *_idem_args(h.idem),
        ],
    )


def hold_read(partition: int, hold_id: str, offset_ms: int = 0) -> Call:
    return Call(Script.HOLD_READ, [keys.hold(partition, hold_id)], [offset_ms])


def hold_list(partition: int, members: Sequence[str], offset_ms: int = 0) -> Call:
    """hold_list.lua: the records named by `members` of the partition's listing index
    (lua/includes/hold_index.lua: "<owner> <created_at> <hold id>")."""
    records = [keys.hold(partition, m.rsplit(" ", 1)[1]) for m in members]
    return Call(Script.HOLD_LIST, [keys.holds_index(partition), *records], [offset_ms, *members])


def hold_index_sweep(partition: int, members: Sequence[str]) -> Call:
    """hold_index_sweep.lua: drop the members whose hold record has gone."""
    records = [keys.hold(partition, m.rsplit(" ", 1)[1]) for m in members]
    return Call(Script.HOLD_INDEX_SWEEP, [keys.holds_index(partition), *records], list(members))


def hold_metadata(
    partition: int,
    hold_id: str,
    updates: bytes,
    max_keys: int,
    offset_ms: int = 0,
    idem: Idem | None = None,
) -> Call:
    """hold_metadata.lua on the hold's home record: `updates` a JSON object ("" removes)."""
    return Call(
        Script.HOLD_METADATA,
        [keys.hold(partition, hold_id), *_idem_keys(idem)],
        [offset_ms, updates, max_keys, *_idem_args(idem)],
    )


def hold_due(partition: int, limit: int, offset_ms: int = 0) -> Call:
    return Call(Script.HOLD_DUE, [keys.expiry_index(partition)], [offset_ms, limit])


# -- stock ---------------------------------------------------------------------------------


def availability(
    partition: int,
    skus: Sequence[str],
    locations: Sequence[str] = (),
    offset_ms: int = 0,
    supply: bool = False,
) -> Call:
    """availability.lua: `skus` all of `partition`; no `locations`: every location; `supply`:
    with what each sku's supply lines add (incoming, next eta)."""
    ks: list[str] = []
    if supply:
        for sku in skus:
            ks += [
                keys.position(partition, sku),
                keys.hold_line_index(partition, sku),
                keys.supply(partition, sku),
                keys.promises(partition, sku),
            ]
    else:
        for sku in skus:
            ks += [keys.position(partition, sku), keys.hold_line_index(partition, sku)]
    return Call(Script.AVAILABILITY, ks, [offset_ms, 1 if supply else 0, *locations])


def stock_set(
    *,
    sku: str,
    location: str,
    on_hand: int,
    safety_stock: int | None,
    retention_ms: int,
    channels: bytes,
    op_digest: str | None = None,
    marker_ttl_seconds: int = 0,
    offset_ms: int = 0,
    idem: Idem | None = None,
) -> Call:
    p = keys.partition_of(sku)
    return Call(
        Script.STOCK_SET,
        [
            *keys.sku_keys(p, sku),
            keys.events(p),
            keys.skus(p),
            keys.op_marker(p, op_digest or "-"),
            *_idem_keys(idem),
        ],
        [
            offset_ms,
            sku,
            location,
            on_hand,
            "" if safety_stock is None else safety_stock,
            retention_ms,
            marker_ttl_seconds if op_digest else 0,
            channels,
            *_idem_args(idem),
        ],
    )


@dataclass(frozen=True)
class StockEvent:
    """One event of a stock_events.lua call (validated by the caller)."""

    event_id: str
    type: str
    sku: str
    location: str
    quantity: int
    fingerprint: str


def stock_events(
    partition: int,
    events: Sequence[StockEvent],
    *,
    retention_ms: int,
    dedupe_seconds: int,
    channels: bytes,
    offset_ms: int = 0,
) -> Call:
    p = partition
    skus = list(dict.fromkeys(e.sku for e in events))
    index = {sku: i + 1 for i, sku in enumerate(skus)}
    ks = [keys.events(p), keys.skus(p), *_sku_keys(p, skus)]
    for e in events:
        ks += keys.event_seen_keys(p, e.location, e.event_id)
    payload = [
        {
            "i": e.event_id,
            "t": e.type,
            "s": index[e.sku],
            "l": e.location,
            "q": e.quantity,
            "f": e.fingerprint,
        }
        for e in events
    ]
    return Call(
        Script.STOCK_EVENTS,
        ks,
        [
            offset_ms,
            retention_ms,
            dedupe_seconds,
            channels,
            orjson.dumps(skus),
            orjson.dumps(payload),
        ],
    )


# -- supply ---------------------------------------------------------------------------------


def supply_put(
    *,
    sku: str,
    location: str,
    supply_id: str,
    type: str,
    quantity: int,
    eta_ms: int,
    reference: str,
    retention_ms: int,
    horizon_ms: int,
    offset_ms: int = 0,
    idem: Idem | None = None,
) -> Call:
    """supply_put.lua: create, update or (quantity 0) cancel one supply line."""
    p = keys.partition_of(sku)
    return Call(
        Script.SUPPLY_PUT,
        [
            keys.supply(p, sku),
            keys.promises(p, sku),
            keys.position(p, sku),
            keys.hold_line_index(p, sku),
            keys.events(p),
            *_idem_keys(idem),
        ],
        [
            offset_ms,
            sku,
            location,
            supply_id,
            type,
            quantity,
            eta_ms,
            reference,
            retention_ms,
            horizon_ms,
            *_idem_args(idem),
        ],
    )


def supply_receive(
    event: StockEvent,
    supply_id: str,
    hold_ids: Sequence[str],
    *,
    retention_ms: int,
    dedupe_seconds: int,
    channels: bytes,
    offset_ms: int = 0,
) -> Call:
    """supply_receive.lua: one receipt naming a supply line; `hold_ids`: the holds promised
    from that line (the script answers "retry" if one is missing)."""
    p = keys.partition_of(event.sku)
    return Call(
        Script.SUPPLY_RECEIVE,
        [
            keys.events(p),
            keys.skus(p),
            *keys.sku_keys(p, event.sku),
            keys.supply(p, event.sku),
            keys.promises(p, event.sku),
            *keys.event_seen_keys(p, event.location, event.event_id),
            *(keys.hold(p, hold_id) for hold_id in hold_ids),
        ],
        [
            offset_ms,
            retention_ms,
            dedupe_seconds,
            channels,
            event.event_id,
            event.sku,
            event.location,
            event.quantity,
            event.fingerprint,
            supply_id,
            orjson.dumps(list(hold_ids)),
        ],
    )


def supply_read(partition: int, skus: Sequence[str], offset_ms: int = 0) -> Call:
    """supply_read.lua: `skus` all of `partition`."""
    ks: list[str] = []
    for sku in skus:
        ks += [keys.supply(partition, sku), keys.promises(partition, sku)]
    return Call(Script.SUPPLY_READ, ks, [offset_ms])


def event_claim(location: str, event_id: str, fingerprint: str, keep_seconds: int) -> Call:
    return Call(
        Script.EVENT_CLAIM, [keys.event_claim(location, event_id)], [fingerprint, keep_seconds]
    )


# -- idempotency and configuration ---------------------------------------------------------


def idempotency_claim(
    idem: Idem, offset_ms: int = 0, status: int | str = "", body: str | bytes = b""
) -> Call:
    """Claim by itself; with `status` (and `body`), claim and store that response at once."""
    return Call(Script.IDEMPOTENCY_CLAIM, [idem.record], [offset_ms, status, body, *idem.args()])


def idempotency_complete(idem: Idem, status: int | str, body: str | bytes) -> Call:
    """Store the response (`status` "": give the claim up)."""
    return Call(Script.IDEMPOTENCY_COMPLETE, [idem.record], [status, body, *idem.args()])


def config_put(
    hash_key: str,
    item_id: str,
    doc: bytes | str,
    offset_ms: int = 0,
    idem: Idem | None = None,
    geo: str = "",
) -> Call:
    """config_put.lua. `doc` "" deletes the item; `geo` (locations): "-" no coordinates,
    "<lon> <lat>" its place in the geo index, "" (channels, kits) leaves the index alone."""
    return Call(
        Script.CONFIG_PUT,
        [hash_key, keys.CONFIG_VERSION, keys.GEO, *_idem_keys(idem)],
        [item_id, doc, offset_ms, geo, *_idem_args(idem)],
    )


# -- audit ---------------------------------------------------------------------------------


def _audit_keys_args(p: int, hold_ids: list[str], skus: list[str]) -> tuple[list[str], list[Any]]:
    """The layout both audit scripts share: KEYS[1..3], a hold key per id, then the sku keys;
    ARGV[1..2] the ids and skus as JSON."""
    ks = [keys.expiry_index(p), keys.skus(p), keys.events(p)]
    ks += [keys.hold(p, hold_id) for hold_id in hold_ids]
    return ks + _sku_keys(p, skus), [orjson.dumps(hold_ids), orjson.dumps(skus)]


def audit_snapshot(
    partition: int, hold_ids: list[str], skus: list[str], max_events: int, offset_ms: int = 0
) -> Call:
    ks, args = _audit_keys_args(partition, hold_ids, skus)
    return Call(Script.AUDIT_SNAPSHOT, ks, [*args, max_events, offset_ms])


def audit_repair(
    partition: int,
    hold_ids: list[str],
    skus: list[str],
    *,
    retention_ms: int,
    channels: bytes,
    offset_ms: int = 0,
    legacy: Sequence[str] = (),
) -> Call:
    """audit_repair.lua; `legacy`: skus whose `ho` index (from before the one line index) the
    repair drops."""
    ks, args = _audit_keys_args(partition, hold_ids, skus)
    ks += [keys.hold_open_by_sku_before_one_index(partition, sku) for sku in legacy]
    return Call(
        Script.AUDIT_REPAIR,
        ks,
        [*args, offset_ms, retention_ms, channels, orjson.dumps(list(legacy))],
    )


def audit_supply(partition: int, hold_ids: list[str], skus: list[str], offset_ms: int = 0) -> Call:
    """audit_supply.lua: a hold key per id, then the supply and promise keys of each sku."""
    ks = [keys.hold(partition, hold_id) for hold_id in hold_ids]
    for sku in skus:
        ks += [keys.supply(partition, sku), keys.promises(partition, sku)]
    return Call(Script.AUDIT_SUPPLY, ks, [orjson.dumps(hold_ids), orjson.dumps(skus), offset_ms])
