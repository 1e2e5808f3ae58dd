"""The hub on the real store: global order across partitions, bursts, overflow, restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app import keys
from app.events import hub as hub_module
from app.events.filters import EventFilter
from app.events.hub import EventHub, Subscription
from app.events.model import Event
from app.events.source import ServerSource
from tests.events.helpers import stream_ids


async def write(redis: Redis, n: int, partitions: list[int], sku: str = "s") -> None:
    """`n` entries spread over `partitions`, pipelined so many share a millisecond."""
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            p = partitions[i % len(partitions)]
            pipe.xadd(keys.events(p), {"type": "stock.set", "sku": sku, "location": f"l{i}"})
        await pipe.execute()


async def drain(sub: Subscription, n: int, within: float = 10) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(within):
        while len(out) < n:
            event = await sub.queue.get()
            if event is not None:
                out.append(event)
    return out


@pytest.fixture
async def hub(redis: Redis) -> AsyncIterator[EventHub]:
    events = EventHub(ServerSource(redis), queue_size=8, block_ms=100)
    yield events
    await events.stop()


async def test_global_order_across_partitions(redis: Redis, hub: EventHub) -> None:
    sub = await hub.subscribe(EventFilter())
    consumer = asyncio.create_task(drain(sub, 600))
    for _ in range(3):
        await write(redis, 200, [0, 7, 42, 255])
    got = await consumer
    assert [str(e.id) for e in got] == await stream_ids(redis)
    assert not sub.overflowed  # bursts of 200 through a queue of 8: sliced, drained
    await hub.stop()


async def test_slow_subscriber_overflows_alone(redis: Redis, hub: EventHub) -> None:
    stuck = await hub.subscribe(EventFilter())
    live = await hub.subscribe(EventFilter())
    consumer = asyncio.create_task(drain(live, 100))
    await write(redis, 100, [1, 2, 3])
    got = await consumer
    assert len(got) == 100 and not live.overflowed
    # The stuck one holds a gapless prefix of what the live one got, then nothing.
    assert stuck.overflowed
    prefix = [stuck.queue.get_nowait() for _ in range(stuck.queue.qsize())]
    assert [e.id for e in prefix if e] == [e.id for e in got[:8]]
    await hub.stop()
    assert live.closed and stuck.closed


async def test_filters_by_sku(redis: Redis, hub: EventHub) -> None:
    mine = await hub.subscribe(EventFilter(sku="a"))
    theirs = await hub.subscribe(EventFilter(sku="b"))
    await write(redis, 3, [keys.partition_of("a")], sku="a")
    assert {e.sku for e in await drain(mine, 3)} == {"a"}
    assert theirs.queue.empty()
    hub.unsubscribe(theirs)
    assert hub.subscribers == 1
    await hub.stop()


async def test_reader_stops_when_idle_and_restarts_at_now(
    redis: Redis, hub: EventHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "LINGER_SECONDS", 0.05)
    sub = await hub.subscribe(EventFilter())
    await write(redis, 2, [5])
    await drain(sub, 2)
    hub.unsubscribe(sub)
    task = hub._task
    assert task is not None
    await asyncio.wait_for(task, 5)  # the reader ends with its last subscriber

    await write(redis, 3, [6])  # written while nobody listens: not delivered
    await asyncio.sleep(0.005)  # ("now" is the store's millisecond: same-ms ones would be)
    again = await hub.subscribe(EventFilter())
    assert hub._task is not task
    await write(redis, 1, [9])
    (event,) = await drain(again, 1)
    assert event.id.partition == 9
    await hub.stop()


async def test_a_kit_filter_gets_its_components_events_once_and_leaves_cleanly(
    redis: Redis, hub: EventHub
) -> None:
    from app.domain.config import ConfigService
    from app.domain.models import Kit, KitComponent

    config = ConfigService(redis, None, 60)  # type: ignore[arg-type]  # only its cache is read
    config.kits = {"bike": Kit(sku="bike", components=[KitComponent(sku="frame", quantity=1)])}
    sub = await hub.subscribe(EventFilter(config, sku="bike"))
    frame_p = keys.partition_of("frame")
    await write(redis, 2, [frame_p], sku="other")
    await write(redis, 3, [frame_p], sku="frame")
    got = await drain(sub, 3)
    assert [e.sku for e in got] == ["frame"] * 3
    assert hub.subscribers == 1
    hub.unsubscribe(sub)
    assert hub.subscribers == 0
