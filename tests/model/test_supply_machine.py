"""Model-based test of future supply: a Hypothesis state machine drives the real service (the
ASGI app with a ManualClock, on the suite's real store) and a small model of supply lines,
backorder holds and receipts side by side (the same harness as test_state_machine.py).

Steps: stock set; supply lines created, updated (quantity, eta), delayed, reduced and
cancelled, on purpose the ones that back promises (broken promises); backorder holds, sourced
or pinned, with or without needed_by, short or long TTL; commit, release, fulfil (refused
while a promise waits), extend; partial release of on-hand and promised lines and partial
fulfil (one unit, all, one too many); receipts (partial, larger than the line, of unknown
lines); the store's clock moved past expiries, and reaper passes. After every step:

- promised <= quantity on every supply line, and every line's quantity and promised units
  are the model's;
- no unit is promised twice: the promises stored for each line (lapsed holds' left out) sum to
  what the line shows promised, and each hold's backed units are the model's;
- position arithmetic: on_hand, held, committed and available are the model's; the stored
  held and committed equal the sums over the hold records in those statuses and the expiry
  index; available = max(0, on_hand - live held - committed);
- `omnistock audit` of the partition is clean (its supply rules included);
- availability (channel, each location) has the model's `available`, `incoming` and
  `next_available_at`, and the timeline the model's windows;
- every open hold reads (GET) as the model says: status, open on-hand units, open promises;
- every answer (201 / 409 and the exact allocation, broken promises, transitions refused,
  fulfil refused while a promise waits, line quantities exceeded) is the model's.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app import keys
from app.api.main import create_app
from app.domain.audit import Auditor
from app.domain.clock import ManualClock
from app.store.embedded import EmbeddedStore
from app.store.scripts import Scripts
from tests.api.helpers import parse_ts
from tests.conftest import make_settings

T = TypeVar("T")
SKU = "pre-1"
P = keys.partition_of(SKU)
LOCATIONS = ["dc", "store-a"]  # sourcing order: dc (priority 1) first
SUPPLY_IDS = ["a", "b", "c"]
Line = tuple[str, str]  # (location, supply id)
TIMELINE_UNTIL = 45  # days: some etas (up to 60 once delayed) fall beyond it


@dataclass
class MHold:
    id: str
    status: str  # active, committed, fulfilled, released, expired (as marked in the store)
    expires_at: int  # clock offset ms
    on_hand: dict[str, int] = field(default_factory=dict)  # open on-hand units by location
    backed: dict[Line, int] = field(default_factory=dict)  # promised units still backed (px)
    waiting: dict[Line, int] = field(default_factory=dict)  # promised, not received (record)
    created: int = 0
    needed_by: int | None = None  # eta day

    def counts(self, now: int) -> bool:
        return self.status == "committed" or (self.status == "active" and self.expires_at > now)

    def visible(self, now: int) -> str:
        """What GET answers: an active hold whose time is up is expired, reaped or not."""
        return "expired" if self.status == "active" and self.expires_at <= now else self.status

    def open_units(self) -> int:
        return sum(self.on_hand.values()) + sum(self.waiting.values())


@dataclass
class Model:
    now: int = 0
    on_hand: dict[str, int] = field(default_factory=dict)
    supply: dict[Line, tuple[int, int]] = field(default_factory=dict)  # line -> (qty, eta day)
    holds: dict[str, MHold] = field(default_factory=dict)

    def live(self) -> list[MHold]:
        return sorted(
            (h for h in self.holds.values() if h.counts(self.now)), key=lambda h: h.created
        )

    def held(self, loc: str) -> int:
        return sum(h.on_hand.get(loc, 0) for h in self.live() if h.status == "active")

    def committed(self, loc: str) -> int:
        return sum(h.on_hand.get(loc, 0) for h in self.live() if h.status == "committed")

    def available(self, loc: str) -> int:
        return max(0, self.on_hand.get(loc, 0) - self.held(loc) - self.committed(loc))

    def promised(self, line: Line) -> int:
        return sum(h.backed.get(line, 0) for h in self.live())

    def free(self, line: Line) -> int:
        return max(0, self.supply[line][0] - self.promised(line))

    def ordered_lines(self) -> list[Line]:
        """Earliest eta first, then "location|supply id": the order promises consume."""
        return sorted(self.supply, key=lambda line: (self.supply[line][1], f"{line[0]}|{line[1]}"))

    def availability(self, scope: list[str]) -> tuple[int, int, str | None]:
        """(available, incoming, next_available_at as an eta day's instant) over `scope`."""
        available = sum(self.available(loc) for loc in scope)
        free = [line for line in self.ordered_lines() if line[0] in scope and self.free(line)]
        incoming = sum(self.free(line) for line in free)
        first = day(self.supply[free[0]][1]) if free and available == 0 else None
        return available, incoming, first

    def timeline(self, until: int) -> list[tuple[str | None, int]]:
        """The channel's windows after the first (from = now: None here): each eta day with
        unpromised units before `until` opens one, with what can be promised from then on."""
        level = sum(self.available(loc) for loc in LOCATIONS)
        windows: list[tuple[str | None, int]] = [(None, level)]
        adds: dict[int, int] = defaultdict(int)
        for line in self.ordered_lines():
            eta = self.supply[line][1]
            if self.free(line) and eta < until:
                adds[eta] += self.free(line)
        for eta in sorted(adds):
            level += adds[eta]
            windows.append((day(eta), level))
        return windows


BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def day(n: int) -> str:
    return (BASE + timedelta(days=n)).isoformat().replace("+00:00", "Z")


def instant(text: str | None) -> datetime | None:
    return None if text is None else parse_ts(text)


class SupplyVersusModel(RuleBasedStateMachine):
    store_url: str = ""
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.raw = SyncRedis.from_url(self.store_url, decode_responses=True)
        self.raw.flushall()
        self.clock = ManualClock()
        self.app = create_app(make_settings(self.store_url), self.clock)
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self.lifespan.__aenter__())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://omnistock"
        )
        self.store = Redis.from_url(self.store_url, decode_responses=True)
        self.auditor = Auditor(self.store, Scripts.register(self.store), self.clock)
        self.model = Model()
        self.ids = itertools.count(1)

    def teardown(self) -> None:
        try:
            self.run(self.client.aclose())
            self.run(self.store.aclose())
            self.run(self.lifespan.__aexit__(None, None, None))
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self.raw.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.run(self.client.request(method, path, **kw))
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        return r

    @initialize(stock=st.lists(st.integers(0, 2), min_size=2, max_size=2))
    def configure(self, stock: list[int]) -> None:
        for loc, priority in zip(LOCATIONS, (1, 10), strict=True):
            assert self.call("PUT", f"/v1/locations/{loc}", json={"priority": priority}).is_success
        body = {"locations": LOCATIONS, "low_stock_threshold": 0}
        assert self.call("PUT", "/v1/channels/web", json=body).is_success
        for loc, on_hand in zip(LOCATIONS, stock, strict=True):
            self.put_stock(loc, on_hand)
        # Supply from the start, so that holds promise from the first steps on.
        self.send_supply(("dc", "a"), 6, 5)
        self.send_supply(("store-a", "b"), 4, 15)

    def put_stock(self, loc: str, on_hand: int) -> None:
        r = self.call("PUT", f"/v1/stock/{SKU}/{loc}", json={"on_hand": on_hand})
        assert r.status_code == 200, r.text
        self.model.on_hand[loc] = on_hand

    @rule(loc=st.sampled_from(LOCATIONS), on_hand=st.integers(0, 3))
    def set_stock(self, loc: str, on_hand: int) -> None:
        self.put_stock(loc, on_hand)

    # -- supply ---------------------------------------------------------------------------

    @rule(
        loc=st.sampled_from(LOCATIONS),
        sid=st.sampled_from(SUPPLY_IDS),
        qty=st.sampled_from([0, 2, 5, 8, 12]),
        eta=st.integers(1, 25),
    )
    def put_supply(self, loc: str, sid: str, qty: int, eta: int) -> None:
        self.send_supply((loc, sid), qty, eta)

    @rule(
        pick=st.integers(0, 5),
        change=st.sampled_from(["cancel", "reduce", "delay", "grow", "earlier"]),
        answer=st.sampled_from([None, "release", "repromise"]),
        wanted=st.integers(2, 4),
    )
    def change_promised_supply(
        self, pick: int, change: str, answer: str | None, wanted: int
    ) -> None:
        """Cancel, reduce, delay, grow or advance a line (the most promised; when nothing is,
        a backorder hold `wanted` units short of on-hand stock waits for one first):
        cancelling, reducing below what is promised (one unit short: the newest promise keeps
        the rest of its backing) and delaying past a needed_by break promises, and the channel
        may answer each `promise_broken` at once."""
        m = self.model
        if not any(m.promised(line) for line in m.supply):  # a customer waits for one first
            short = sum(m.available(loc) for loc in LOCATIONS) + wanted
            self.backorder_hold(short, None, 600, None)
        lines = sorted(m.supply, key=lambda line: (-m.promised(line), line))
        if not lines:
            return
        line = lines[0] if m.promised(lines[0]) else lines[pick % len(lines)]
        q, eta = m.supply[line]
        promised = m.promised(line)
        new_q, new_eta = {
            "cancel": (0, eta),
            "reduce": (promised - 1 if promised > 1 else max(1, q // 2), eta),  # one unit short
            "delay": (q, min(eta + 12, 60)),
            "grow": (q + 3, eta),
            "earlier": (q, max(1, eta - 4)),
        }[change]
        broken = self.send_supply(line, new_q, new_eta)
        for hold_id, lost in broken if answer else []:
            self.answer_broken_promise(self.model.holds[hold_id], line, lost, answer == "release")

    def answer_broken_promise(self, h: MHold, line: Line, lost: int, release: bool) -> None:
        """What a channel does on `promise_broken`: release the units that lost their backing
        (a partial release of the promised line), or re-promise them (a new backorder hold)
        and release the old hold."""
        if release:
            self.change_lines(h.id, "release", [], {line: lost})
        elif self.backorder_hold(lost, None, 600, None) != "none":
            self.release(h.id)

    def send_supply(self, line: Line, qty: int, eta: int) -> list[tuple[str, int]]:
        """PUT the line; the broken promises (hold, units) the model expects and got."""
        loc, sid = line
        body = {"type": "purchase_order", "quantity": qty, "eta": day(eta)}
        r = self.call("PUT", f"/v1/supply/{SKU}/{loc}/{sid}", json=body)
        m = self.model
        if qty == 0 and line not in m.supply:
            assert r.status_code == 404, r.text
            return []
        assert r.status_code == 200, r.text
        expected: list[tuple[str, int]] = []
        left = qty
        for h in m.live():  # the oldest promises keep their backing
            units = h.backed.get(line, 0)
            if not units:
                continue
            fits = h.needed_by is None or eta <= h.needed_by
            keep = min(units, left) if qty and fits else 0
            left -= keep
            if keep < units:
                expected.append((h.id, units - keep))
                h.backed[line] = keep
        got = [(x["hold"], x["units"]) for x in r.json()["broken_promises"]]
        assert sorted(got) == sorted(expected), (got, expected)
        if qty:
            m.supply[line] = (qty, eta)
        else:
            del m.supply[line]
        return expected

    # -- holds ----------------------------------------------------------------------------

    @rule(
        target=holds,
        qty=st.integers(1, 5),
        needed_by=st.sampled_from([None, None, 10, 20]),
        ttl=st.sampled_from([60, 600]),
        pin=st.sampled_from([None, None, None, *LOCATIONS]),
    )
    def backorder_hold(self, qty: int, needed_by: int | None, ttl: int, pin: str | None) -> str:
        line: dict[str, Any] = {"sku": SKU, "quantity": qty}
        if pin is not None:
            line["location"] = pin
        body: dict[str, Any] = {
            "channel": "web",
            "allow_backorder": True,
            "ttl_seconds": ttl,
            "lines": [line],
        }
        if needed_by is not None:
            body["needed_by"] = day(needed_by)
        r = self.call("POST", "/v1/holds", json=body)
        plan = self.plan(qty, needed_by, pin)
        if plan is None:
            assert r.status_code == 409 and r.json()["code"] == "insufficient_stock", r.text
            return "none"
        assert r.status_code == 201, r.text
        on_hand, promised = plan
        got = r.json()
        got_on_hand = {x["location"]: x["quantity"] for x in got["lines"] if not x.get("supply_id")}
        got_promised = {
            (x["location"], x["supply_id"]): x["quantity"]
            for x in got["lines"]
            if x.get("supply_id")
        }
        assert (got_on_hand, got_promised) == (on_hand, promised), (got, plan)
        for x in got["lines"]:
            if x.get("supply_id"):
                eta = self.model.supply[(x["location"], x["supply_id"])][1]
                assert instant(x["available_from"]) == instant(day(eta)), x
        h = MHold(
            got["id"],
            "active",
            self.model.now + ttl * 1000,
            on_hand,
            dict(promised),
            dict(promised),
            next(self.ids),
            needed_by,
        )
        self.model.holds[h.id] = h
        return h.id

    def plan(
        self, qty: int, needed_by: int | None, pin: str | None
    ) -> tuple[dict[str, int], dict[Line, int]] | None:
        """On hand first (one location with the whole line, best first; else split over the
        candidates in order), then the earliest supply whose eta is not after needed_by; a
        pinned line uses its location only."""
        m = self.model
        candidates = [pin] if pin else LOCATIONS
        left, on_hand, promised = qty, {}, {}
        whole = next((loc for loc in candidates if m.available(loc) >= qty), None)
        if whole is not None:
            return {whole: qty}, {}
        for loc in candidates:
            n = min(left, m.available(loc))
            if n:
                on_hand[loc] = n
                left -= n
        for line in m.ordered_lines():
            eta = m.supply[line][1]
            if left and line[0] in candidates and (needed_by is None or eta <= needed_by):
                n = min(left, m.free(line))
                if n > 0:
                    promised[line] = n
                    left -= n
        return None if left else (on_hand, promised)

    def transition(
        self, hold_id: str, action: str, scripted: bool = True, **kw: Any
    ) -> httpx.Response | None:
        """Act on a hold. `scripted`: the request reaches the hold's script, which marks a
        lapsed hold expired (a request the service refuses before, does not)."""
        if hold_id == "none":
            return None
        r = self.call("POST", f"/v1/holds/{hold_id}/{action}", **kw)
        h = self.model.holds[hold_id]
        if scripted and h.status == "active" and not h.counts(self.model.now):
            h.status = "expired"
        return r

    def refused(self, r: httpx.Response, code: str) -> None:
        assert r.status_code in (409, 422) and r.json()["code"] == code, r.text

    @rule(hold_id=holds)
    def commit(self, hold_id: str) -> None:
        r = self.transition(hold_id, "commit")
        if r is None:
            return
        h = self.model.holds[hold_id]
        if h.status == "active":
            assert r.status_code == 200, r.text
            h.status = "committed"
        else:
            self.refused(r, "invalid_transition")

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        r = self.transition(hold_id, "release")
        if r is None:
            return
        h = self.model.holds[hold_id]
        if h.status in ("active", "committed"):
            assert r.status_code == 200, r.text
            h.status = "released"
        else:
            self.refused(r, "invalid_transition")

    @rule(hold_id=holds)
    def fulfil(self, hold_id: str) -> None:
        """Refused while a promise of an active or committed hold waits (hold_fulfil.lua,
        by the store's clock: a lapsed hold is expired first, and its fulfil is
        invalid_transition); a released hold's fulfil is invalid_transition."""
        if hold_id == "none":
            return
        h = self.model.holds[hold_id]
        r = self.transition(hold_id, "fulfil")  # marks a lapsed hold expired
        assert r is not None
        # (a released or expired hold's record lists its promises too)
        waits = bool(h.waiting) and h.status in ("active", "committed")
        if waits:
            self.refused(r, "promise_not_received")
        elif h.status == "committed":
            assert r.status_code == 200, r.text
            h.status = "fulfilled"
            for loc, q in h.on_hand.items():
                self.model.on_hand[loc] -= q
        else:
            assert r.status_code == 409, r.text

    @rule(hold_id=holds, ttl=st.sampled_from([60, 600]))
    def extend(self, hold_id: str, ttl: int) -> None:
        """A new TTL from now; the hold's promises move with it."""
        r = self.transition(hold_id, "extend", json={"ttl_seconds": ttl})
        if r is None:
            return
        h = self.model.holds[hold_id]
        if h.status == "active":
            assert r.status_code == 200, r.text
            h.expires_at = self.model.now + ttl * 1000
        else:
            self.refused(r, "invalid_transition")

    @rule(
        hold_id=holds,
        op=st.sampled_from(["release", "release", "fulfil"]),
        picks=st.lists(
            st.tuples(st.integers(0, 5), st.sampled_from(["one", "one", "all", "more"])),
            min_size=1,
            max_size=2,
        ),
    )
    def change_lines(
        self,
        hold_id: str,
        op: str,
        picks: list[tuple[int, str]],
        want: dict[Line, int] | None = None,
    ) -> None:
        """Release (or fulfil) some units of some lines, on hand or promised: one unit, every
        open unit, or one more than open (one line asking too much refuses the request).
        `want` names the lines and units itself."""
        if hold_id == "none":
            return
        h = self.model.holds[hold_id]
        names: list[Line] = sorted(
            {(loc, "") for loc in h.on_hand} | {line for line in h.waiting}
        )  # ("dc", "") is an on-hand line; a supply id names a promise
        if not names:
            return
        how = {"one": lambda n: 1, "all": lambda n: max(n, 1), "more": lambda n: n + 1}
        if want is None:
            want = {}
            for i, units in picks:
                name = names[i % len(names)]
                open_now = h.on_hand.get(name[0], 0) if not name[1] else h.waiting.get(name, 0)
                want[name] = how[units](open_now)
        body = {
            "lines": [
                {"sku": SKU, "location": loc, "quantity": q, **({"supply_id": sid} if sid else {})}
                for (loc, sid), q in want.items()
            ]
        }
        early = op == "fulfil" and any(sid for _, sid in want)  # refused before the script
        r = self.transition(hold_id, op, scripted=not early, json=body)
        assert r is not None
        if early:
            return self.refused(r, "promise_not_received")
        allowed = ("committed",) if op == "fulfil" else ("active", "committed")
        if h.status not in allowed:
            return self.refused(r, "invalid_transition")
        over = any(
            q > (h.on_hand.get(loc, 0) if not sid else h.waiting.get((loc, sid), 0))
            for (loc, sid), q in want.items()
        )
        if over:
            return self.refused(r, "line_quantity_exceeded")
        assert r.status_code == 200, r.text
        for (loc, sid), q in want.items():
            if not sid:
                h.on_hand[loc] -= q
                if op == "fulfil":
                    self.model.on_hand[loc] -= q
            else:
                # A promise that lost its backing releases its unbacked units first: the
                # backed ones stay for the units still open.
                h.waiting[(loc, sid)] -= q
                h.backed[(loc, sid)] = min(h.backed.get((loc, sid), 0), h.waiting[(loc, sid)])
        h.on_hand = {loc: q for loc, q in h.on_hand.items() if q}
        h.waiting = {line: q for line, q in h.waiting.items() if q}
        if not h.open_units():
            h.status = "fulfilled" if op == "fulfil" else "released"
        assert r.json()["status"] == h.status, (r.text, h)

    # -- receipts and time ----------------------------------------------------------------

    @rule(loc=st.sampled_from(LOCATIONS), sid=st.sampled_from(SUPPLY_IDS), qty=st.integers(1, 8))
    def receipt(self, loc: str, sid: str, qty: int) -> None:
        event = {
            "id": f"r{next(self.ids)}",
            "type": "receipt",
            "sku": SKU,
            "location": loc,
            "quantity": qty,
            "supply_id": sid,
        }
        r = self.call("POST", "/v1/stock/events", json={"events": [event]})
        (result,) = r.json()["results"]
        m, line = self.model, (loc, sid)
        if line not in m.supply:
            assert result["status"] == "rejected", result
            return
        assert result["status"] == "applied", result
        m.on_hand[loc] = m.on_hand.get(loc, 0) + qty
        left = qty
        for h in m.live():  # the oldest promise first
            n = min(left, h.backed.get(line, 0))
            if n:
                h.backed[line] -= n
                h.waiting[line] -= n
                h.waiting = {x: q for x, q in h.waiting.items() if q}
                h.on_hand[loc] = h.on_hand.get(loc, 0) + n
                left -= n
        q, eta = m.supply[line]
        if q > qty:
            m.supply[line] = (q - qty, eta)
        else:
            del m.supply[line]

    @rule(seconds=st.sampled_from([30, 60, 300]), reap=st.booleans())
    def advance_clock(self, seconds: int, reap: bool) -> None:
        """The store's clock moves (holds lapse: their units and promises stop counting at
        once); then, maybe, a reaper pass marks the lapsed holds expired and tidies up."""
        self.clock.advance(seconds)
        self.model.now += seconds * 1000
        if not reap:
            return
        due = [h for h in self.model.holds.values() if h.visible(self.model.now) == "expired"]
        due = [h for h in due if h.status == "active"]
        expired = self.run(self.app.state.services.reaper.run_once())
        assert expired == len(due), (expired, due)
        for h in due:
            h.status = "expired"

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def supply_lines_agree_and_never_overpromise(self) -> None:
        lines = self.call("GET", f"/v1/supply/{SKU}").json()["lines"]
        got = {(x["location"], x["supply_id"]): (x["quantity"], x["promised"]) for x in lines}
        m = self.model
        want = {line: (q, m.promised(line)) for line, (q, _) in m.supply.items()}
        assert got == want
        for q, promised in got.values():
            assert 0 <= promised <= q

    @invariant()
    def no_unit_is_promised_twice(self) -> None:
        """The stored promises of live holds, per line, sum to what the line shows."""
        stored: dict[str, str] = self.raw.hgetall(keys.promises(P, SKU))  # type: ignore[assignment]
        sums: dict[Line, int] = {}
        for name, value in stored.items():
            hold_id, loc, sid = name.split("|")
            units = int(value.split("|")[0])
            h = self.model.holds.get(hold_id)
            assert h is not None, name
            if h.counts(self.model.now):
                assert h.backed.get((loc, sid), 0) == units, (name, value, h)
                sums[(loc, sid)] = sums.get((loc, sid), 0) + units
        m = self.model
        for line in m.supply:
            assert sums.get(line, 0) == m.promised(line)
        for h in m.live():
            for line, units in h.backed.items():
                assert units <= h.waiting.get(line, 0), h  # backing only for open units

    @invariant()
    def positions_agree(self) -> None:
        positions = self.call("GET", f"/v1/stock/{SKU}").json()["positions"]
        m = self.model
        assert {p["location"] for p in positions} == set(m.on_hand)
        for pos in positions:
            loc = pos["location"]
            assert (pos["on_hand"], pos["held"], pos["committed"], pos["available"]) == (
                m.on_hand[loc],
                m.held(loc),
                m.committed(loc),
                m.available(loc),
            ), (pos, m)
            assert pos["available"] == max(
                0, pos["on_hand"] - pos["held"] - pos["committed"] - pos["safety_stock"]
            )

    @invariant()
    def stored_counters_equal_the_sums_over_hold_records(self) -> None:
        """held / committed as stored (lapsed holds not yet reaped still in held) are the
        sums over the records in that status, and held the sum of the expiry index."""
        ids = sorted(self.model.holds)
        pipe = self.raw.pipeline(transaction=False)
        for hold_id in ids:
            pipe.hgetall(keys.hold(P, hold_id))
        pipe.hgetall(keys.position(P, SKU))
        pipe.zrange(keys.hold_line_index(P, SKU), 0, -1, withscores=True)
        *records, stored, hx = pipe.execute()
        sums: dict[str, dict[str, int]] = {
            "active": defaultdict(int),
            "committed": defaultdict(int),
        }
        for hold_id, record in zip(ids, records, strict=True):
            h = self.model.holds[hold_id]
            if h.status in ("active", "committed"):
                assert record.get("status") == h.status, (record, h)
                for line in orjson.loads(record["lines"]):
                    sums[h.status][line["location"]] += line["quantity"]
        indexed: dict[str, int] = defaultdict(int)  # counting lines (held)
        indexed_committed: dict[str, int] = defaultdict(int)  # committed ones (scored +inf)
        for member, score in hx:
            _, loc, qty = member.rsplit("|", 2)
            (indexed_committed if score == float("inf") else indexed)[loc] += int(qty)
        for loc, value in stored.items():
            on_hand, held, committed, _ = (int(x) for x in value.split(":"))
            assert on_hand == self.model.on_hand[loc]
            assert held == sums["active"][loc] == indexed[loc], (loc, value, sums, indexed)
            assert committed == sums["committed"][loc] == indexed_committed[loc], (loc, value, sums)

    @invariant()
    def the_audit_is_clean(self) -> None:
        report = self.run(self.auditor.audit([P]))
        assert report.clean, report.as_dict()

    @invariant()
    def availability_and_incoming_are_the_models(self) -> None:
        """The channel's, and one location's (each in turn: a request costs)."""
        self.turn = getattr(self, "turn", 0) + 1
        loc = LOCATIONS[self.turn % len(LOCATIONS)]
        for params, scope in (({"channel": "web"}, LOCATIONS), ({"location": loc}, [loc])):
            body = self.call("GET", f"/v1/availability/{SKU}", params=params).json()
            available, incoming, first = self.model.availability(scope)
            got = (body["available"], body["incoming"], instant(body["next_available_at"]))
            assert got == (available, incoming, instant(first)), (params, body)

    @invariant()
    def the_timeline_is_the_models(self) -> None:
        params = {"channel": "web", "until": day(TIMELINE_UNTIL)}
        windows = self.call("GET", f"/v1/availability/{SKU}/timeline", params=params).json()
        got = [
            (instant(w["from"]) if i else None, w["available"])
            for i, w in enumerate(windows["windows"])
        ]
        want = [(instant(d), n) for d, n in self.model.timeline(TIMELINE_UNTIL)]
        assert got == want, windows

    @invariant()
    def open_holds_read_as_the_model_says(self) -> None:
        now = self.model.now
        for hold_id, h in self.model.holds.items():
            if h.visible(now) not in ("active", "committed"):
                continue
            body = self.call("GET", f"/v1/holds/{hold_id}").json()
            on_hand: dict[str, int] = defaultdict(int)
            waiting: dict[Line, int] = {}
            for x in body["lines"]:
                if x.get("supply_id"):
                    units = x["quantity"] - x.get("released", 0)
                    if units:
                        waiting[(x["location"], x["supply_id"])] = units
                else:
                    units = x["quantity"] - x.get("released", 0) - x.get("fulfilled", 0)
                    if units:
                        on_hand[x["location"]] += units
            assert (body["status"], dict(on_hand), waiting) == (
                h.visible(now),
                h.on_hand,
                h.waiting,
            ), (body, h)


CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = int(os.environ.get("OMNISTOCK_MODEL_EXAMPLES", "12"))
STEPS = int(os.environ.get("OMNISTOCK_MODEL_STEPS", "40"))


@pytest.mark.timeout(max(300, EXAMPLES * STEPS // 4))
def test_supply_service_agrees_with_the_model(store_server: EmbeddedStore) -> None:
    SupplyVersusModel.store_url = store_server.url
    run_state_machine_as_test(
        SupplyVersusModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=CI,
            database=None if CI else settings.default.database,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
