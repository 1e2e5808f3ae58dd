"""Two versions of the hold scripts on the same random operations:
`python -m benchmarks.hold_equivalence [--ops N] [--seed S] [--old head|git:REV|DIR]`
(old: git HEAD's lua/ by default; new: lua/ as it is now). tests/lua/test_hold_equivalence.py
runs it at small size against a pinned revision, in `make test`. A version given as plain
sources runs by EVALSHA (the reference); one given as expanded scripts runs as the service
runs it, each script a function library called by FCALL (app/store/functions.py).

Two private stores, one per version; each step runs on both and their replies and every key's
contents must match: positions, hold records, expiry indexes, idempotency records, the streams'
entries (fields only: entry ids come from each store's clock, and so do the line orders made
from them, so those compare by rank only). Steps: random position values (held, committed,
safety stock, negative availability), and holds of 1..4 lines over 3 skus, pinned or not, with
and without split, over random candidates and 0..3 channels with random thresholds and
locations, some lapsed at once, some reusing a hold id, some with an Idempotency-Key (reused:
replays, other requests under the same key, claims still in flight, completions stored); and,
on recent holds, the transitions (commit, fulfil, release, extend, expire, confirm, abort,
rollback) and stock_set (mostly where recent holds took units, and below them: shortfalls
naming holds newest first). An event's `channels` compare as JSON: the same entries in the same
order, their keys in any order.

The hold lines of a sku. Since the one line index (docs/benchmarks.md, session 7) they are one
sorted set, `hx:<sku>`: member "<order>|<hold>|<location>|<qty>", score count_until, +inf once
committed; before it, two: `hx:<sku>` (active and pending lines, member "<hold>|<location>|
<qty>", score count_until) and `ho:<sku>` (every open line, score its order). A version with
two indexes gets each call's keys with `ho:<sku>` after each `hx:<sku>` (its layout), and both
versions' indexes compare as one view, `line_view`: per sku, the open lines newest first
(order, then member, descending: what the shortfall walks), each with whether it is
committed. Orders and count_until are instants, so they compare by that rank and that flag
only; the record's `orders` (one per line, the members' orders) is left out with the instants,
and a record whose `orders` named other members than its transitions' would leave them in the
view.

The clock. Every script reads its store's TIME (lua/includes/clock.lua), and two stores never
agree on it to the ms, so a decision taken at a boundary (a hold that lapses exactly between
the two calls) would differ for no fault of the code. The steps make every such decision
independent of the real time that passes: the clock offset moves in whole hours and every
TTL, lease and deadline is a multiple of half an hour, so "lapsed yet?" compares figures at
least 30 minutes apart while the real time elapsed in a run is seconds; events are never
trimmed (a retention of ~30,000 years), and instants themselves (created_at, `at`, ...) are
left out of the comparison.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from app import keys
from app.store import calls
from app.store.calls import HoldStatus, Idem, Transition
from app.store.functions import Library
from app.store.scripts import Expanded
from benchmarks import harness as h
from benchmarks.lua_micro import variant_expanded, variant_sources

Sources = Mapping[str, str] | Mapping[str, Expanded]  # by EVALSHA, or as functions by FCALL

LOCS = ["dc-1", "store-1", "store-2", "store-3", "store-4"]
SKUS = ["SKU-A", "SKU-B", "SKU-C"]
P = 7
HOUR = 3_600_000
HALF = HOUR // 2
RETENTION_MS = 10**15  # never trims: MINID is the store's real ms, the offset runs ahead of it
# lapsed at once (count_until before, or equal to, now), lapsing at the next hour's step, later
TTLS = (-HALF, 0, HALF, 5 * HALF, 5 * HALF, 5 * HALF)
STEPS = (0, 0, 0, HOUR)  # the clock offset's move per step

# Instants the script takes from its store's TIME: left out of the comparison.
CLOCK_FIELDS = {
    b"created_at",
    b"updated_at",
    b"expires_at",
    b"count_until",
    b"deadline",
    b"at",
    b"lease_until",
    b"orders",  # the lines' orders: instants (ms * 1000 + seq), checked through line_view
}

# The whole-hold transitions (hold_lines.lua, partial release and fulfil, came later: its own
# tests cover it, and a reference before it has nothing to compare it with).
TRANSITIONS = tuple(t for t in Transition if t is not Transition.LINES)

SCRIPTS = (
    "hold_reserve",
    "stock_set",
    "idempotency_complete",
    *(t.value for t in TRANSITIONS),
)


# The commands that run a script, as INFO commandstats names them (cmdstat_<name>).
SCRIPT_COMMANDS = ("evalsha", "eval", "fcall", "evalsha_ro", "eval_ro", "fcall_ro")


class Divergence(AssertionError):
    """The two versions answered or stored differently."""


@dataclass(frozen=True)
class Outcome:
    """A run without divergence: the replies counted by script and kind, and each side's
    script commands ({"old" | "new": {command: calls}}) from its store's INFO commandstats,
    reset before the run: what each side really ran its scripts by."""

    kinds: Counter[str]
    commands: dict[str, dict[str, int]]


def script_commands(r: Any) -> dict[str, int]:
    """{command: calls} of the script commands since the store's last CONFIG RESETSTAT."""
    stats = r.info("commandstats")
    return {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in SCRIPT_COMMANDS}


def two_line_indexes(sources: Sources) -> bool:
    """Does this version keep a sku's hold lines in two sorted sets (hx and ho, before the
    one line index)? Its hold_reserve.lua names the second."""
    source = sources["hold_reserve"]
    text = source if isinstance(source, str) else source.text
    return ":ho:<sku>" in text


def with_ho_keys(ks: list[str]) -> list[str]:
    """A call's keys in the layout of a version with two line indexes: each sku's `ho` key
    after its `hx` key."""
    out: list[str] = []
    for k in ks:
        out.append(k)
        if ":hx:" in k:
            out.append(k.replace(":hx:", ":ho:", 1))
    return out


COMMITTED = "committed"
COUNTING = "counting"


def line_view(out: dict[bytes, Any]) -> None:
    """Replace the line index keys of a dump (`dump` keeps their scores) by one view per sku,
    under the `hx` key: [(member "<hold>|<location>|<qty>", COUNTING | COMMITTED), ...],
    newest first. Two indexes: the `ho` members by (score, member) descending, COUNTING where
    `hx` has them; a line in `hx` alone shows as ("hx only", member). One index: the members
    descending (their order leads), COMMITTED where the score is +inf."""
    hx = {k: v for k, v in out.items() if b":hx:" in k}
    ho = {k: v for k, v in out.items() if b":ho:" in k}
    for k in [*hx, *ho]:
        del out[k]
    if ho:
        for k_ho, lines in ho.items():
            k = k_ho.replace(b":ho:", b":hx:", 1)
            counting = {m for m, _ in hx.get(k, [])}
            newest = sorted(lines, key=lambda ms: (ms[1], ms[0]), reverse=True)
            view: list[Any] = [(m, COUNTING if m in counting else COMMITTED) for m, _ in newest]
            view += [("hx only", m) for m in sorted(counting - {m for m, _ in lines})]
            out[k] = view
        for k in set(hx) - {k.replace(b":ho:", b":hx:", 1) for k in ho}:
            out[k] = [("hx only", m) for m, _ in hx[k]]
        return
    for k, lines in hx.items():
        out[k] = [
            (m.split(b"|", 1)[1], COMMITTED if score == float("inf") else COUNTING)
            for m, score in sorted(lines, reverse=True)
        ]


def dump(r: Any) -> dict[bytes, Any]:
    """Every key's contents without its instants, read in two pipelined round trips; the hold
    line indexes as `line_view`."""
    names = sorted(r.keys("*"))
    pipe = r.pipeline(transaction=False)
    for k in names:
        pipe.type(k)
    types = pipe.execute()
    readers = {
        b"hash": pipe.hgetall,
        b"zset": lambda k: pipe.zrange(k, 0, -1, withscores=True),  # scores are instants
        b"stream": pipe.xrange,
        b"string": pipe.get,
    }
    for k, t in zip(names, types, strict=True):
        readers.get(t, pipe.type)(k)
    out: dict[bytes, Any] = {}
    for k, t, value in zip(names, types, pipe.execute(), strict=True):
        if t == b"hash":
            out[k] = sorted((f, v) for f, v in value.items() if f not in CLOCK_FIELDS)
        elif t == b"zset" and (b":hx:" in k or b":ho:" in k):
            out[k] = value
        elif t == b"zset":
            out[k] = sorted(m for m, _ in value)
        elif t == b"stream":
            out[k] = [
                {
                    f: orjson.loads(v) if f == b"channels" else v
                    for f, v in fields.items()
                    if f not in CLOCK_FIELDS
                }
                for _, fields in value
            ]
        else:
            out[k] = value
    line_view(out)
    return out


def random_channels(rnd: random.Random) -> bytes:
    return orjson.dumps(
        {
            f"ch{c}": [rnd.randint(0, 10), rnd.sample(LOCS, rnd.randint(1, len(LOCS)))]
            for c in range(rnd.randint(0, 3))
        }
    )


class Pair:
    """The two stores, each with its version's scripts loaded, and the replies by kind."""

    def __init__(
        self,
        old: redis.Redis,
        new: redis.Redis,
        sources: dict[str, Sources],
        ignore: frozenset[bytes] = frozenset(),
    ):
        self.stores = {"old": old, "new": new}
        self.ignore = ignore
        self.loaded = {
            v: {n: _load(self.stores[v], n, sources[v][n]) for n in SCRIPTS} for v in self.stores
        }
        self.kinds: Counter[str] = Counter()
        # each version's key layout: two line indexes take each sku's `ho` key too
        self.layout = {
            v: with_ho_keys if two_line_indexes(sources[v]) else list for v in self.stores
        }

    def run(self, step: int, call: calls.Call) -> Any:
        name = call.script.value
        replies = {}
        for v, r in self.stores.items():
            command, what = self.loaded[v][name]
            ks = self.layout[v](call.keys)
            try:
                replies[v] = r.execute_command(command, what, len(ks), *ks, *call.args)
            except redis.ResponseError as e:  # compared, not handled
                replies[v] = ("error", str(e).split(" script:")[0])
        old, new = replies["old"], replies["new"]
        self.kinds[f"{name}:{_kind(old)}"] += 1
        # hold_reserve's ok reply ends with two instants (created_at, expires_at)
        same = old[:2] == new[:2] if name == "hold_reserve" and _kind(old) == "ok" else old == new
        if not same:
            raise Divergence(f"step {step}: {name} replies differ\n{call.args}\n{replies}")
        return old

    def compare_stores(self, step: int) -> None:
        a, b = (
            {k: v for k, v in dump(self.stores[side]).items() if k not in self.ignore}
            for side in ("old", "new")
        )
        if a != b:
            diff = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
            where = [(k, a.get(k), b.get(k)) for k in diff[:2]]
            raise Divergence(f"step {step}: stores differ at {where}")


def _load(r: redis.Redis, name: str, source: str | Expanded) -> tuple[str, str]:
    """(command, sha or function name) of script `name`: a plain source by SCRIPT LOAD, an
    expanded script as its function library."""
    if isinstance(source, Expanded):
        lib = Library.of(name, source.text, source.origins)
        r.execute_command("FUNCTION", "LOAD", "REPLACE", lib.text)
        return "FCALL", lib.function
    return "EVALSHA", str(r.script_load(source))


def _kind(reply: Any) -> str:
    head = reply[0] if isinstance(reply, list | tuple) and reply else reply
    kind = head.decode() if isinstance(head, bytes) else str(head)
    if kind == "idem" and len(reply) > 1:
        kind += "-" + reply[1].decode()
    return kind


def transition(rnd: random.Random, now: int, skus_of: dict[str, list[str]]) -> calls.Call:
    """One transition script on a recent hold, with a marker sometimes."""
    hold_id = rnd.choice(list(skus_of)[-6:])
    script = rnd.choice(TRANSITIONS)
    return calls.transition(
        script,
        partition=P,
        hold_id=hold_id,
        skus=skus_of[hold_id],
        retention_ms=RETENTION_MS,
        finished_ttl_seconds=3600,
        channels=random_channels(rnd),
        op_digest=rnd.choice([None, None, f"op-{hold_id}"]),
        marker_ttl_seconds=3600,
        offset_ms=now,
        ttl_ms=rnd.choice([HALF, 5 * HALF]) if script is Transition.EXTEND else None,
    )


def stock_set(rnd: random.Random, now: int, lines: list[tuple[str, str]]) -> calls.Call:
    """A new on_hand; mostly at a place recent holds took units from (`lines`: their (sku,
    location)s), and below what its lines hold: a shortfall naming holds newest first."""
    sku, loc = rnd.choice(SKUS), rnd.choice(LOCS)
    if lines and rnd.random() < 0.7:
        sku, loc = rnd.choice(lines[-8:])
    ks = [*keys.sku_keys(P, sku), keys.events(P), keys.skus(P), keys.op_marker(P, "-")]
    argv = [now, sku, loc, rnd.randint(-2, 30) // 6, rnd.choice(["", "1"]), RETENTION_MS, 0]
    return calls.Call(calls.Script.STOCK_SET, ks, [*argv, random_channels(rnd)])


def reserve(rnd: random.Random, step: int, now: int, ids: list[str], idem: Idem | None) -> Any:
    nlines = rnd.choice([1, 1, 1, 2, 3, 4])
    skus = rnd.sample(SKUS, rnd.randint(1, min(nlines, 3)))
    lines = []
    for i in range(nlines):
        line: dict[str, Any] = {"s": 1 + (i % len(skus)), "q": rnd.randint(1, 8)}
        if rnd.random() < 0.3:
            line["l"] = rnd.choice(LOCS)
        lines.append(line)
    hold_id = rnd.choice(ids) if ids and rnd.random() < 0.05 else f"h{step}"
    ids.append(hold_id)
    # Drawn in the order the operation sequence has always drawn them (same seed, same ops).
    status = rnd.choice([HoldStatus.ACTIVE, HoldStatus.PENDING])
    ttl_ms, pending_ttl_ms = rnd.choice(TTLS), rnd.choice([0, HALF, 3 * HALF])
    channel, reference = rnd.choice(["web", ""]), rnd.choice(["", "ref-1"])
    allow_split = rnd.choice([False, True])
    hold = calls.NewHold(
        partition=P,
        hold_id=hold_id,
        status=status,
        ttl_ms=ttl_ms,
        pending_ttl_ms=pending_ttl_ms,
        channel=channel,
        reference=reference,
        parts=str(P),
        retention_ms=RETENTION_MS,
        lines=lines,
        skus=skus,
        candidates=rnd.sample(LOCS, rnd.randint(0, len(LOCS))),
        channels=random_channels(rnd),
        owner="web-shop",
        pending_grace_ms=rnd.choice([0, HOUR]),
        offset_ms=now,
        idem=idem,
    )
    return calls.hold_reserve(hold, allow_split=allow_split)


def random_idem(rnd: random.Random, used: list[str]) -> Idem | None:
    """No key (most holds), a fresh one, or a recent one again: same or another request."""
    if rnd.random() < 0.7:
        return None
    digest = rnd.choice(used[-4:]) if used and rnd.random() < 0.5 else f"k{len(used)}"
    used.append(digest)
    return Idem(
        keys.idempotency(keys.tag(P), digest),
        rnd.choice(["fp-a", "fp-b"]),
        rnd.choice([HALF, 3 * HALF]),
        86_400,
    )


def compare(
    old: Sources,
    new: Sources,
    ops: int,
    seed: int,
    ignore: frozenset[str] = frozenset(),
) -> Outcome:
    """Run `ops` random steps on both versions ({script name: expanded source, run by
    EVALSHA, or expanded script, run as a function}), each on its own store; raise
    Divergence at the first difference; return the replies counted by script and kind and
    the script commands each store ran. `ignore`: keys left out of the store comparison
    (outputs an older version does not have, named by the caller)."""
    with (
        h.store(fsync="no") as s1,
        h.store(fsync="no") as s2,
        h.client(s1) as r1,
        h.client(s2) as r2,
    ):
        pair = Pair(r1, r2, {"old": old, "new": new}, frozenset(k.encode() for k in ignore))
        for r in pair.stores.values():
            r.config_resetstat()
        walk(pair, random.Random(seed), ops)
        commands = {side: script_commands(r) for side, r in pair.stores.items()}
        return Outcome(pair.kinds, commands)


def walk(pair: Pair, rnd: random.Random, ops: int) -> None:
    now = 0  # the clock offset: each store's TIME moves on by itself
    ids: list[str] = []
    digests: list[str] = []
    skus_of: dict[str, list[str]] = {}
    lines: list[tuple[str, str]] = []  # (sku, location) of the lines reserved, in order
    for step in range(ops):
        now += rnd.choice(STEPS)
        if skus_of and rnd.random() < 0.3:
            pair.run(step, transition(rnd, now, skus_of))
        elif rnd.random() < 0.05:
            pair.run(step, stock_set(rnd, now, lines))
        elif rnd.random() < 0.15:
            sku, loc = rnd.choice(SKUS), rnd.choice(LOCS)
            value = ":".join(str(rnd.randint(0, n)) for n in (30, 10, 3, 3))
            for r in pair.stores.values():
                r.hset(keys.position(P, sku), loc, value)
        else:
            idem = random_idem(rnd, digests)
            call = reserve(rnd, step, now, ids, idem)
            reply = pair.run(step, call)
            kind = _kind(reply)
            if kind == "ok":
                skus_of[call.args[1]] = orjson.loads(call.args[11])
                lines += [(x["sku"], x["location"]) for x in orjson.loads(reply[1])]
            # The reference's service stores the response of a request that got through (not
            # always here: a worker can die before it does, and the claim's lease runs out).
            # A created hold's is always stored: since 2026-12-03 hold_reserve.lua stores it
            # with the change, and this completion then writes the same record fields.
            if idem is not None and (
                kind == "ok" or (kind == "insufficient" and rnd.random() < 0.7)
            ):
                body = orjson.dumps([kind])
                pair.run(step, calls.idempotency_complete(idem, 201, body))
        if step % 50 == 0 or step == ops - 1:
            pair.compare_stores(step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--old", default="head", help="head (git HEAD's lua/), git:REV, or a directory like lua/"
    )
    parser.add_argument(
        "--ignore", action="append", default=[], help="a key left out of the comparison"
    )
    args = parser.parse_args()
    try:
        outcome = compare(
            variant_sources(args.old, SCRIPTS),
            variant_expanded("work", SCRIPTS),
            args.ops,
            args.seed,
            frozenset(args.ignore),
        )
    except Divergence as e:
        sys.exit(str(e))
    print(f"{args.ops} steps, same replies and stores; replies by kind: {dict(outcome.kinds)}")
    print(f"script commands by side (INFO commandstats): {outcome.commands}")


if __name__ == "__main__":
    main()
