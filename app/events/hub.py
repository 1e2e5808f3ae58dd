"""One reader of the streams per process, fanned out to every SSE client of the process.

The reader follows all partitions from the position it starts at, delivering in global order
by the TIME rule (see the package doc). Each subscriber has a bounded queue: when it is full
the subscriber is marked `overflowed` and gets nothing more from the hub, so a slow client
never slows the reader or the others and never holds more than its queue. Its stream then
catches up from the store by itself (see `sse`).

The reader runs while there are subscribers: the first one starts it at the store's current
time; it stops after LINGER_SECONDS without any.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time

from prometheus_client import Counter, Gauge, Histogram

from app import keys
from app.events.filters import EventFilter
from app.events.ids import EventId, parse_stream_id, predecessor, stream_id
from app.events.log import SharedReads
from app.events.model import Event, from_entry
from app.events.source import StreamSource

log = logging.getLogger("omnistock.events")

SSE_CLIENTS = Gauge(
    "omnistock_sse_clients",
    "Server-Sent Events streams subscribed to this process's hub right now.",
    multiprocess_mode="livesum",
)
EVENT_LAG = Histogram(
    "omnistock_event_delivery_lag_seconds",
    "Time from the store stamping an event to this process handing it to its SSE clients.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SSE_OVERFLOWS = Counter(
    "omnistock_sse_overflows_total",
    "SSE subscriptions whose queue filled up (a slow client); each then catches up from the store.",
)

LINGER_SECONDS = 10.0
READ_COUNT = 1000  # entries per stream per read
CATCH_UP_READS = 4  # SSE catch-up page reads a process runs at once (see `log.SharedReads`)


class Subscription:
    def __init__(self, flt: EventFilter, size: int, start: EventId) -> None:
        self.filter = flt
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        self.start = start  # every event after this id comes through the queue, in order
        self.overflowed = False  # the queue filled up: it holds a gapless prefix, then nothing
        self.closed = False  # the hub is stopping

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            SSE_OVERFLOWS.inc()

    def wake(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class EventHub:
    def __init__(self, source: StreamSource, queue_size: int, block_ms: int) -> None:
        self.source = source
        self._queue_size = queue_size
        self._block_ms = block_ms
        self._by_sku: dict[str, set[Subscription]] = {}
        self._others: set[Subscription] = set()
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopped = False
        self.position = EventId(0, 0, 0)  # every event up to here has been fanned out
        self.catch_up = SharedReads(CATCH_UP_READS)

    @property
    def subscribers(self) -> int:
        return self._count

    async def subscribe(self, flt: EventFilter) -> Subscription:
        async with self._lock:
            if self._stopped:
                raise RuntimeError("the event hub is stopped")
            if self._task is None or self._task.done():
                # The reader stops only without subscribers; should it ever have died with
                # some, their feed has a break: they read on from the store.
                for sub in self._all():
                    sub.overflowed = True
                    sub.wake()
                self.position = EventId.before(await self.source.time_ms())
                self._task = asyncio.create_task(self._run(self.position), name="event-hub")
            # No await from here on: `position` and the registration are one step, so the
            # queue gets exactly the events after `start`.
            sub = Subscription(flt, self._queue_size, self.position)
            if flt.skus is not None:  # a kit's reader: under each of its components
                for sku in flt.skus:
                    self._by_sku.setdefault(sku, set()).add(sub)
            else:
                self._others.add(sub)
            self._count += 1
            SSE_CLIENTS.inc()
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        skus = sub.filter.skus
        if skus is None:
            found = sub in self._others
            self._others.discard(sub)
        else:
            found = False
            for sku in skus:
                group = self._by_sku.get(sku)
                if group is not None and sub in group:
                    found = True
                    group.discard(sub)
                    if not group:
                        del self._by_sku[sku]
        if found:
            self._count -= 1
            SSE_CLIENTS.dec()

    async def stop(self) -> None:
        self._stopped = True
        task = self._task
        if task is not None:
            # A cancel can be lost inside the store client's blocking read (a race of
            # redis-py's read timeout with asyncio on Python 3.11, about 1 in 100 here): the
            # reader also stops on `_stopped` after each read, and the cancel is repeated.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            if not task.cancelled() and task.exception() is not None:
                log.error("event reader failed: %r", task.exception())
        for sub in self._all():
            sub.closed = True
            sub.wake()

    def _all(self) -> list[Subscription]:
        # A kit's reader is in the group of each of its components: list it once.
        by_sku = {sub for group in self._by_sku.values() for sub in group}
        return [*self._others, *by_sku]

    # -- the reader ------------------------------------------------------------------------

    async def _run(self, start: EventId) -> None:
        after = {
            p: stream_id(predecessor(*start.first_stream_id(p))) for p in range(keys.PARTITIONS)
        }
        pending: list[tuple[EventId, str, dict[str, str]]] = []  # read, not yet delivered
        idle_since: float | None = None
        backoff = 0.05
        while not self._stopped:
            if self._count == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= LINGER_SECONDS:
                    return  # synchronously after the check: a subscribe() starts a new one
            else:
                idle_since = None
            try:
                t0, batch = await self.source.tail(after, READ_COUNT)
                frontier = EventId.before(t0)
                for p, entries in batch.items():
                    last = self._take(p, entries, after, pending)
                    if len(entries) >= READ_COUNT:  # this stream may hold more below t0
                        frontier = min(frontier, last)
                ready = []
                while pending and pending[0][0] <= frontier:
                    key, sid, fields = heapq.heappop(pending)
                    ready.append(from_entry(key.partition, sid, fields))
                await self._deliver(ready)
                self.position = max(self.position, frontier)
                if pending:
                    if frontier == EventId.before(t0):
                        # Stamped at t0 or later: wait for the clock (of the slowest node, on
                        # a cluster) to pass the oldest.
                        gap_ms = pending[0][0].ms - t0 + 1
                        await asyncio.sleep(min(max(gap_ms, 1), self._block_ms) / 1000)
                    continue
                batch = await self.source.wait(after, READ_COUNT, self._block_ms)
                for p, entries in batch.items():
                    self._take(p, entries, after, pending)
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event reader: %s; retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    @staticmethod
    def _take(
        p: int,
        entries: list[tuple[str, dict[str, str]]],
        after: dict[int, str],
        pending: list[tuple[EventId, str, dict[str, str]]],
    ) -> EventId:
        key = EventId(0, 0, p)
        for sid, fields in entries:
            ms, seq = parse_stream_id(sid)
            key = EventId(ms, seq, p)
            heapq.heappush(pending, (key, sid, fields))
        after[p] = entries[-1][0]
        return key

    async def _deliver(self, events: list[Event]) -> None:
        """Fan out in slices of half a queue, letting the clients' streams drain their
        queues in between: a burst (one POS batch is up to 1000 events) overflows only the
        clients that really do not keep up. `position` moves with each slice, so a client
        subscribing in between gets exactly the events after it."""
        step = max(1, self._queue_size // 2)
        for i in range(0, len(events), step):
            if i:
                await asyncio.sleep(0)
            part = events[i : i + step]
            self._fan_out(part)
            self.position = max(self.position, part[-1].id)

    def _fan_out(self, events: list[Event]) -> None:
        if events:
            now_ms = time.time_ns() // 1_000_000  # the store's clock stamped the ids
            for event in events:
                EVENT_LAG.observe(max(0, now_ms - event.id.ms) / 1000)
        for event in events:
            for group in (self._others, self._by_sku.get(event.sku, ())):
                for sub in group:
                    if not sub.overflowed and sub.filter.matches(event.sku, event.location):
                        sub.offer(event)
