"""Backorder holds over several partitions (docs/architecture.md, "Future supply and
promising"): every part is reserved `pending` by hold_backorder.lua, its lines and promises
counting until its deadline + grace; the two-phase protocol of multi-partition holds then
confirms every part (its promises then count until the hold's expires_at) or undoes every part
(its promises given back), whoever settles it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app import keys
from app.domain.audit import Auditor
from app.domain.clock import ManualClock
from app.domain.errors import StoreUnavailable
from app.domain.holds import HoldService
from app.store.calls import Transition
from app.store.scripts import Scripts
from tests.api.helpers import act, assert_problem, position, skus_in_distinct_partitions
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply, supply_lines

A, B = skus_in_distinct_partitions(2, "bomp")
PA, PB = keys.partition_of(A), keys.partition_of(B)  # PA: the home partition of CART's holds
CART = [{"sku": A, "quantity": 3}, {"sku": B, "quantity": 2}]  # A: 1 on hand + 2 promised
PENDING, GRACE = 30, 600  # settings.pending_ttl_seconds, pending_grace_seconds (defaults)
TTL = 3600  # past the deadline + grace: what counts after that is the confirmed hold


@pytest.fixture(autouse=True)
async def etas(client: httpx.AsyncClient) -> dict[str, str]:
    """A: 1 on hand at dc and 5 on their way (po-a), B: 5 on their way only (po-b)."""
    await seed(client, {(A, "dc"): 1, (B, "dc"): 0})
    out = {A: days(3), B: days(6)}
    await ok_supply(client, A, "dc", "po-a", 5, out[A])
    await ok_supply(client, B, "dc", "po-b", 5, out[B])
    return out


@pytest.fixture
def crash(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """crash(when): the coordinator dies at each confirm `when(partition)` answers True for
    (crash(None): it lives again); the store keeps what was written before, as after a crash."""
    service: HoldService = app.state.services.holds
    real = service.transition_part

    def arm(when: Callable[[int], bool] | None) -> None:
        async def step(hold_id: str, p: int, script: Any, *args: Any, **kw: Any) -> list[Any]:
            if when is not None and script == Transition.CONFIRM and when(p):
                raise StoreUnavailable("coordinator died")
            return await real(hold_id, p, script, *args, **kw)

        monkeypatch.setattr(service, "transition_part", step)

    yield arm
    monkeypatch.setattr(service, "transition_part", real)


async def create(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    r = await backorder(client, CART, ttl_seconds=TTL, **extra)
    assert r.status_code == 201, r.text
    hold: dict[str, Any] = r.json()
    return hold


async def hold_ids(redis: Redis) -> set[str]:
    """The ids of the holds with a part in either partition."""
    found = set()
    for p in (PA, PB):
        found |= {str(k).rsplit(":", 1)[1] async for k in redis.scan_iter(keys.hold(p, "*"))}
    return found


async def keyed(client: httpx.AsyncClient, key: str | None) -> httpx.Response:
    """POST the CART as a backorder hold, with this Idempotency-Key (None: none)."""
    body = {"channel": "web", "allow_backorder": True, "ttl_seconds": TTL, "lines": CART}
    headers = {"Idempotency-Key": key} if key else {}
    return await client.post("/v1/holds", json=body, headers=headers)


def every_part(p: int) -> bool:
    return True


def after_home(p: int) -> bool:
    """Every part but the home part's: the coordinator dies after the home part confirmed."""
    return p != PA


async def create_dies(
    client: httpx.AsyncClient,
    redis: Redis,
    crash: Callable[..., None],
    when: Callable[[int], bool] = every_part,
    key: str | None = None,
) -> str:
    """A create whose coordinator dies at the confirm of each part `when` names: its hold id."""
    crash(when)
    r = await keyed(client, key)
    crash(None)
    assert r.status_code == 503, r.text
    (hold_id,) = await hold_ids(redis)
    return hold_id


async def reaper_settles(app: FastAPI, clock: ManualClock) -> None:
    """The pending parts' deadline passes and the reaper runs: it settles them."""
    clock.advance(PENDING + 1)
    await app.state.services.reaper.run_once()


async def promised(client: httpx.AsyncClient) -> dict[str, int]:
    """Units promised from each sku's supply line (the ones that count)."""
    return {sku: (await supply_lines(client, sku))[0]["promised"] for sku in (A, B)}


async def px_entries(redis: Redis) -> int:
    """Promise entries in both partitions, counting or not (the reaper tidies lapsed ones)."""
    return await redis.hlen(keys.promises(PA, A)) + await redis.hlen(keys.promises(PB, B))


async def statuses(redis: Redis, hold_id: str) -> list[Any]:
    return [await redis.hget(keys.hold(p, hold_id), "status") for p in (PA, PB)]


def lines_of(hold: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    """(sku, location, quantity, supply id: "" on hand), sorted."""
    return sorted(
        (x["sku"], x["location"], x["quantity"], x.get("supply_id", "")) for x in hold["lines"]
    )


async def receive(client: httpx.AsyncClient, sku: str, supply_id: str, quantity: int) -> None:
    event = {
        "id": f"r-{sku}-{quantity}",
        "type": "receipt",
        "sku": sku,
        "location": "dc",
        "quantity": quantity,
        "supply_id": supply_id,
    }
    r = await client.post("/v1/stock/events", json={"events": [event]})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "applied", r.text


async def test_a_cart_over_two_partitions_is_promised_in_each_with_each_line_dated(
    client: httpx.AsyncClient, etas: dict[str, str]
) -> None:
    hold = await create(client)
    assert hold["status"] == "active"
    assert lines_of(hold) == [(A, "dc", 1, ""), (A, "dc", 2, "po-a"), (B, "dc", 2, "po-b")]
    for x in hold["lines"]:
        if x.get("supply_id"):
            assert x["available_from"][:16] == etas[x["sku"]][:16]
    assert await promised(client) == {A: 2, B: 2}
    assert (await position(client, A, "dc"))["held"] == 1


async def test_confirmed_parts_promise_until_the_hold_expires_not_until_the_pending_grace(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await create(client)
    clock.advance(PENDING + GRACE + 60)
    assert await promised(client) == {A: 2, B: 2}
    clock.advance(TTL)
    assert await promised(client) == {A: 0, B: 0}


async def test_a_shortage_in_one_partition_leaves_nothing_reserved_or_promised_anywhere(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    r = await backorder(client, [{"sku": A, "quantity": 3}, {"sku": B, "quantity": 9}])
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"] == [{"sku": B, "requested": 9, "available": 5}]
    assert await promised(client) == {A: 0, B: 0}
    assert await px_entries(redis) == 0
    assert (await position(client, A, "dc"))["held"] == 0
    assert await hold_ids(redis) == set()


async def test_a_needed_by_the_store_finds_past_is_422_and_nothing_is_reserved(
    client: httpx.AsyncClient, clock: ManualClock, redis: Redis
) -> None:
    clock.advance(2 * 86400)  # the store's now is 2 days ahead of the request's
    r = await backorder(client, CART, needed_by=days(1))
    assert_problem(r, 422, "invalid_request")
    assert await px_entries(redis) == 0
    assert (await position(client, A, "dc"))["held"] == 0


async def test_parts_pending_past_the_deadline_are_rolled_back_and_promisable_again(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    hold_id = await create_dies(client, redis, crash)
    assert await statuses(redis, hold_id) == ["pending", "pending"]
    assert await promised(client) == {A: 2, B: 2}  # pending: counting until settled
    await reaper_settles(app, clock)
    assert await statuses(redis, hold_id) == ["expired", "expired"]
    assert await px_entries(redis) == 0
    assert await promised(client) == {A: 0, B: 0}
    assert (await position(client, A, "dc"))["held"] == 0
    r = await backorder(client, [{"sku": A, "quantity": 6}, {"sku": B, "quantity": 5}])
    assert r.status_code == 201, r.text


async def test_pending_parts_promises_stop_counting_with_their_lines_at_deadline_plus_grace(
    client: httpx.AsyncClient, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    await create_dies(client, redis, crash)
    clock.advance(PENDING + GRACE - 1)  # no reaper ran: still counting, as its lines
    assert await promised(client) == {A: 2, B: 2}
    assert (await position(client, A, "dc"))["available"] == 0
    clock.advance(2)  # before the hold's expires_at (TTL), but the parts never confirmed
    assert await promised(client) == {A: 0, B: 0}
    assert (await position(client, A, "dc"))["available"] == 1


async def test_a_part_left_pending_after_the_home_confirm_is_confirmed_with_its_promises(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    hold_id = await create_dies(client, redis, crash, after_home)
    assert await statuses(redis, hold_id) == ["active", "pending"]
    await reaper_settles(app, clock)
    assert await statuses(redis, hold_id) == ["active", "active"]
    clock.advance(GRACE)  # past the pending part's count_until: its promise counts on
    assert await promised(client) == {A: 2, B: 2}
    hold = (await client.get(f"/v1/holds/{hold_id}")).json()
    assert lines_of(hold) == [(A, "dc", 1, ""), (A, "dc", 2, "po-a"), (B, "dc", 2, "po-b")]


async def test_commit_keeps_every_parts_promises_past_the_ttl(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    hold = await create(client)
    assert (await act(client, hold["id"], "commit")).status_code == 200
    clock.advance(TTL + 60)
    assert await promised(client) == {A: 2, B: 2}


async def test_release_gives_every_parts_promises_back(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    hold = await create(client)
    assert (await act(client, hold["id"], "release")).status_code == 200
    assert await promised(client) == {A: 0, B: 0}
    assert await px_entries(redis) == 0
    assert (await position(client, A, "dc"))["held"] == 0


async def test_expiry_gives_every_parts_promises_back(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis
) -> None:
    hold = await create(client)
    clock.advance(TTL + 1)
    assert await promised(client) == {A: 0, B: 0}  # at once, before the reaper
    assert (await client.get(f"/v1/holds/{hold['id']}")).json()["status"] == "expired"
    await app.state.services.reaper.run_once()
    assert await px_entries(redis) == 0
    assert (await position(client, A, "dc"))["held"] == 0


async def test_fulfilling_a_multi_partition_hold_with_promised_units_is_409(
    client: httpx.AsyncClient,
) -> None:
    hold = await create(client)
    assert (await act(client, hold["id"], "commit")).status_code == 200
    assert_problem(await act(client, hold["id"], "fulfil"), 409, "promise_not_received")


async def test_fulfilling_a_lapsed_multi_partition_backorder_hold_is_409_invalid_transition(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """By the store's clock the hold is expired (no reaper has been): its fulfil answers
    invalid_transition as for any lapsed hold, not promise_not_received."""
    hold = await create(client)
    clock.advance(TTL + 1)
    assert_problem(await act(client, hold["id"], "fulfil"), 409, "invalid_transition")
    assert (await client.get(f"/v1/holds/{hold['id']}")).json()["status"] == "expired"


async def test_a_hold_whose_other_part_alone_waits_for_supply_is_not_fulfilled_in_part(
    client: httpx.AsyncClient,
) -> None:
    """The home part (A: on hand only) could be fulfilled by itself; B's part waits for its
    supply: the fulfil is refused as a whole, and nothing moves."""
    r = await backorder(client, [{"sku": A, "quantity": 1}, {"sku": B, "quantity": 2}])
    assert r.status_code == 201, r.text
    hold = r.json()
    assert {x["sku"] for x in hold["lines"] if x.get("supply_id")} == {B}
    assert (await act(client, hold["id"], "commit")).status_code == 200
    assert_problem(await act(client, hold["id"], "fulfil"), 409, "promise_not_received")
    assert (await client.get(f"/v1/holds/{hold['id']}")).json()["status"] == "committed"
    pos = await position(client, A, "dc")
    assert (pos["on_hand"], pos["committed"]) == (1, 1)


async def test_a_promised_line_of_one_part_is_released_on_its_own(
    client: httpx.AsyncClient,
) -> None:
    hold = await create(client)
    line = {"sku": B, "location": "dc", "quantity": 1, "supply_id": "po-b"}
    r = await act(client, hold["id"], "release", json={"lines": [line]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert await promised(client) == {A: 2, B: 1}


async def test_releasing_every_open_unit_of_every_part_closes_the_hold(
    client: httpx.AsyncClient,
) -> None:
    hold = await create(client)
    lines = [
        {"sku": sku, "location": "dc", "quantity": q, **({"supply_id": s} if s else {})}
        for sku, _, q, s in lines_of(hold)
    ]
    r = await act(client, hold["id"], "release", json={"lines": lines[:2]})
    assert r.json()["status"] == "active", r.text  # B's promise still waits
    r = await act(client, hold["id"], "release", json={"lines": lines[2:]})
    assert r.json()["status"] == "released", r.text
    assert await promised(client) == {A: 0, B: 0}


async def test_a_receipt_into_a_multi_partition_hold_becomes_held_units_of_its_part(
    client: httpx.AsyncClient,
) -> None:
    hold = await create(client)
    await receive(client, B, "po-b", 2)
    after = (await client.get(f"/v1/holds/{hold['id']}")).json()
    assert lines_of(after) == [(A, "dc", 1, ""), (A, "dc", 2, "po-a"), (B, "dc", 2, "")]
    pos = await position(client, B, "dc")
    assert (pos["on_hand"], pos["held"], pos["available"]) == (2, 2, 0)
    assert (await act(client, hold["id"], "release")).status_code == 200
    assert (await position(client, B, "dc"))["available"] == 2


async def test_a_receipt_into_a_pending_part_is_held_and_returned_when_it_is_rolled_back(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    hold_id = await create_dies(client, redis, crash)
    await receive(client, B, "po-b", 2)
    pos = await position(client, B, "dc")
    assert (pos["held"], pos["committed"], pos["available"]) == (2, 0, 0)
    await reaper_settles(app, clock)
    assert await statuses(redis, hold_id) == ["expired", "expired"]
    pos = await position(client, B, "dc")
    assert (pos["on_hand"], pos["held"], pos["available"]) == (2, 0, 2)


async def test_a_receipt_into_a_pending_part_counts_until_the_hold_expires_once_confirmed(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, redis: Redis, crash: Any
) -> None:
    hold_id = await create_dies(client, redis, crash, after_home)
    await receive(client, B, "po-b", 2)
    await reaper_settles(app, clock)
    clock.advance(GRACE)  # past the pending part's count_until
    pos = await position(client, B, "dc")
    assert (pos["held"], pos["available"]) == (2, 0)
    hold = (await client.get(f"/v1/holds/{hold_id}")).json()
    assert (hold["status"], lines_of(hold)[-1]) == ("active", (B, "dc", 2, ""))


async def test_a_keyed_create_is_replayed_as_the_same_hold(client: httpx.AsyncClient) -> None:
    first = await keyed(client, "bomp-1")
    again = await keyed(client, "bomp-1")
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content
    assert await promised(client) == {A: 2, B: 2}


async def test_a_keyed_retry_resumes_the_create_its_first_attempt_left_pending(
    client: httpx.AsyncClient, redis: Redis, crash: Any
) -> None:
    hold_id = await create_dies(client, redis, crash, key="bomp-2")
    r = await keyed(client, "bomp-2")
    assert r.status_code == 201, r.text
    assert (r.json()["id"], r.json()["status"]) == (hold_id, "active")
    assert await promised(client) == {A: 2, B: 2}


async def test_the_audit_is_clean_with_parts_pending_and_once_confirmed(
    client: httpx.AsyncClient, redis: Redis, clock: ManualClock, crash: Any
) -> None:
    auditor = Auditor(redis, Scripts.register(redis), clock, parts_grace=0.2)
    await create_dies(client, redis, crash)
    report = await auditor.audit([PA, PB])
    assert report.clean, report.as_dict()
    await create(client)
    report = await auditor.audit([PA, PB])
    assert report.clean, report.as_dict()


async def web_rules(client: httpx.AsyncClient, **rules: Any) -> None:
    body = {"locations": ["dc", "store-a", "store-b"], "low_stock_threshold": 2, **rules}
    r = await client.put("/v1/channels/web", json=body)
    assert r.status_code == 200, r.text


async def test_a_channel_buffer_keeps_each_skus_on_hand_units_back_in_its_part(
    client: httpx.AsyncClient,
) -> None:
    await client.put(f"/v1/stock/{B}/dc", json={"on_hand": 2})
    await web_rules(client, buffer={"units": 1})
    hold = await create(client)
    # A: its 1 on hand kept back, all 3 promised; B: 1 of its 2 on hand, 1 promised.
    assert lines_of(hold) == [(A, "dc", 3, "po-a"), (B, "dc", 1, ""), (B, "dc", 1, "po-b")]


async def test_a_sku_the_channel_excludes_refuses_the_whole_cart(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await web_rules(client, exclude_skus=[B])
    r = await backorder(client, CART)
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["lines"] == [{"sku": B, "requested": 2, "available": 0}]
    assert await px_entries(redis) == 0
    assert (await position(client, A, "dc"))["held"] == 0


async def test_a_part_read_before_a_receipt_gave_it_a_new_line_is_still_moved_whole(
    client: httpx.AsyncClient, app: FastAPI, redis: Redis
) -> None:
    hold = await create(client)
    # B's part as read before the receipt: promised units only, no line of B
    before = {str(k): str(v) for k, v in (await redis.hgetall(keys.hold(PB, hold["id"]))).items()}
    await receive(client, B, "po-b", 2)  # now an on-hand line of B too
    service: HoldService = app.state.services.holds
    reply = await service.transition_part(hold["id"], PB, Transition.COMMIT, record=before)
    assert reply[:2] == ["ok", "committed"]
    pos = await position(client, B, "dc")
    assert (pos["held"], pos["committed"]) == (0, 2)
