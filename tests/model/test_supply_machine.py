"""Model-based test of future supply: a Hypothesis state machine drives the real service (the
ASGI app with a ManualClock, on the suite's real store) and a small model of supply lines,
backorder holds and receipts side by side (the same harness as test_state_machine.py).

Steps: stock set, supply lines created / updated / delayed / cancelled, backorder holds (with
or without needed_by, short or long TTL), commit, release, fulfil, receipts (partial, larger
than the line, of unknown lines), the clock moved past expiries. After every step:

- every supply line's quantity and promised units are the model's, and promised <= quantity;
- no unit is promised twice: the promises stored for each line sum to what it shows promised,
  and each hold's promised units are the model's;
- the position's counters and availability are the model's (receipts move promised units to
  held without a jump);
- every answer (201 / 409 and the exact allocation, broken promises, fulfil refused while a
  promise waits) is the model's.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
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

from app import keys
from app.api.main import create_app
from app.domain.clock import ManualClock
from app.store.embedded import EmbeddedStore
from tests.conftest import make_settings

T = TypeVar("T")
SKU = "pre-1"
LOCATIONS = ["dc", "store-a"]  # sourcing order: dc (priority 1) first
SUPPLY_IDS = ["a", "b", "c"]
Line = tuple[str, str]  # (location, supply id)


@dataclass
class MHold:
    id: str
    status: str
    expires_at: int  # clock offset ms
    on_hand: dict[str, int] = field(default_factory=dict)
    backed: dict[Line, int] = field(default_factory=dict)  # promised units still backed
    waiting: dict[Line, int] = field(default_factory=dict)  # promised, not received (record)
    created: int = 0
    needed_by: int | None = None  # eta day

    def counts(self, now: int) -> bool:
        return self.status == "committed" or (self.status == "active" and self.expires_at > now)


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

    def ordered_lines(self) -> list[Line]:
        return sorted(self.supply, key=lambda line: (self.supply[line][1], f"{line[0]}|{line[1]}"))


def day(n: int) -> str:
    return (BASE + timedelta(days=n)).isoformat().replace("+00:00", "Z")


BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


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
        self.model = Model()
        self.ids = itertools.count(1)

    def teardown(self) -> None:
        try:
            self.run(self.client.aclose())
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

    @rule(pick=st.integers(0, 5), change=st.sampled_from(["cancel", "reduce", "delay"]))
    def change_promised_supply(self, pick: int, change: str) -> None:
        """Cancel, reduce or delay a line (one with promises, when there is one)."""
        m = self.model
        lines = sorted(m.supply, key=lambda line: (-m.promised(line), line))
        if not lines:
            return
        line = lines[pick % 2] if len(lines) > 1 else lines[0]
        q, eta = m.supply[line]
        if change == "cancel":
            self.send_supply(line, 0, eta)
        elif change == "reduce":
            self.send_supply(line, max(1, q // 2), eta)
        else:
            self.send_supply(line, q, min(eta + 12, 60))

    def send_supply(self, line: Line, qty: int, eta: int) -> None:
        loc, sid = line
        body = {"type": "purchase_order", "quantity": qty, "eta": day(eta)}
        r = self.call("PUT", f"/v1/supply/{SKU}/{loc}/{sid}", json=body)
        m = self.model
        if qty == 0 and line not in m.supply:
            assert r.status_code == 404, r.text
            return
        assert r.status_code == 200, r.text
        expected: list[tuple[str, int]] = []
        left = qty
        for h in m.live():
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

    # -- holds ----------------------------------------------------------------------------

    @rule(
        target=holds,
        qty=st.integers(1, 5),
        needed_by=st.sampled_from([None, None, 10, 20]),
        ttl=st.sampled_from([60, 600]),
    )
    def backorder_hold(self, qty: int, needed_by: int | None, ttl: int) -> str:
        body: dict[str, Any] = {
            "channel": "web",
            "allow_backorder": True,
            "ttl_seconds": ttl,
            "lines": [{"sku": SKU, "quantity": qty}],
        }
        if needed_by is not None:
            body["needed_by"] = day(needed_by)
        r = self.call("POST", "/v1/holds", json=body)
        plan = self.plan(qty, needed_by)
        if plan is None:
            assert r.status_code == 409, r.text
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
        self, qty: int, needed_by: int | None
    ) -> tuple[dict[str, int], dict[Line, int]] | None:
        m = self.model
        left, on_hand, promised = qty, {}, {}
        whole = next((loc for loc in LOCATIONS if m.available(loc) >= qty), None)
        if whole is not None:
            return {whole: qty}, {}
        for loc in LOCATIONS:
            n = min(left, m.available(loc))
            if n:
                on_hand[loc] = n
                left -= n
        for line in m.ordered_lines():
            q, eta = m.supply[line]
            if left and (needed_by is None or eta <= needed_by):
                n = min(left, q - m.promised(line))
                if n > 0:
                    promised[line] = n
                    left -= n
        return None if left else (on_hand, promised)

    def transition(self, hold_id: str, action: str) -> httpx.Response | None:
        if hold_id == "none":
            return None
        return self.call("POST", f"/v1/holds/{hold_id}/{action}")

    @rule(hold_id=holds)
    def commit(self, hold_id: str) -> None:
        r = self.transition(hold_id, "commit")
        if r is None:
            return
        h = self.model.holds[hold_id]
        if h.counts(self.model.now) and h.status == "active":
            assert r.status_code == 200, r.text
            h.status = "committed"
        else:
            assert r.status_code == 409, r.text
            if h.status == "active":
                h.status = "expired"

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        r = self.transition(hold_id, "release")
        if r is None:
            return
        h = self.model.holds[hold_id]
        if h.counts(self.model.now):
            assert r.status_code == 200, r.text
            h.status = "released"
        else:
            assert r.status_code == 409, r.text
            if h.status == "active":
                h.status = "expired"

    @rule(hold_id=holds)
    def fulfil(self, hold_id: str) -> None:
        r = self.transition(hold_id, "fulfil")
        if r is None:
            return
        h = self.model.holds[hold_id]
        if h.status == "committed" and any(h.waiting.values()):
            assert r.status_code == 409 and r.json()["code"] == "promise_not_received", r.text
        elif h.status == "committed":
            assert r.status_code == 200, r.text
            h.status = "fulfilled"
            for loc, q in h.on_hand.items():
                self.model.on_hand[loc] -= q
        else:
            assert r.status_code == 409, r.text

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
        for h in m.live():
            n = min(left, h.backed.get(line, 0))
            if n:
                h.backed[line] -= n
                h.waiting[line] -= n
                h.on_hand[loc] = h.on_hand.get(loc, 0) + n
                left -= n
        q, eta = m.supply[line]
        if q > qty:
            m.supply[line] = (q - qty, eta)
        else:
            del m.supply[line]

    @rule(seconds=st.sampled_from([30, 60, 300]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.model.now += seconds * 1000

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
        p = keys.partition_of(SKU)
        stored: dict[str, str] = self.raw.hgetall(keys.promises(p, SKU))  # type: ignore[assignment]
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

    @invariant()
    def positions_agree(self) -> None:
        positions = self.call("GET", f"/v1/stock/{SKU}").json()["positions"]
        for pos in positions:
            loc = pos["location"]
            m = self.model
            assert (pos["on_hand"], pos["held"], pos["committed"], pos["available"]) == (
                m.on_hand.get(loc, 0),
                m.held(loc),
                m.committed(loc),
                m.available(loc),
            ), (pos, m)


CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = int(os.environ.get("OMNISTOCK_MODEL_EXAMPLES", "15"))
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
