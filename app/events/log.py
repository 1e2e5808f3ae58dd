"""One page of the merged feed: the events after a cursor, oldest first.

The partitions are merged lazily: a first round reads a few entries from each stream (after
TIME, in the same pipeline); an entry is delivered only when no stream that still has unread
entries could hold a smaller id (it is at or below every such stream's last read id), and
later rounds read more, with growing counts, only from streams whose last read id is below
the events still to deliver. A page reads at most SCAN_BUDGET entries, so a selective filter
over a busy feed answers in bounded time with a cursor to go on from.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from dataclasses import dataclass
from typing import Any, Protocol

from app.events.filters import EventFilter
from app.events.ids import EventId, parse_stream_id, stream_id, successor
from app.events.model import Event, from_entry, reset_event
from app.events.source import Batch

MAX_READ_COUNT = 1000  # entries per stream per XRANGE
SCAN_BUDGET = 10_000  # entries examined per page, matching or not
# Scripts trim with MINID = the store's clock - retention (lua/includes/clock.lua), the clock
# that stamps the entry ids. A cursor younger than retention by less than this margin is also
# checked against what the streams really lost (XINFO): on a cluster each primary trims by its
# own clock, and an in-process test's clock offset moves MINID too.
TRIM_CHECK_MARGIN_MS = 3_600_000


class Source(Protocol):
    margin_ms: int  # t0's hold-back behind the slowest node's clock (0 on one server)

    async def ranges(
        self, starts: dict[int, str], count: int, with_time: bool
    ) -> tuple[int | None, Batch]: ...

    async def stream_info(self, partitions: list[int]) -> dict[int, dict[str, Any]]: ...


@dataclass
class Page:
    events: list[Event]
    next: EventId  # resume after this: the last event examined (delivered or filtered out)
    complete: bool  # every event stamped before t0 was examined
    t0: int  # the store's TIME when the page was read
    reset: bool = False


async def read_page(
    source: Source, after: EventId | None, limit: int, flt: EventFilter, retention_ms: int
) -> Page:
    partitions = flt.partitions()
    starts = {p: "-" if after is None else stream_id(after.first_stream_id(p)) for p in partitions}
    count = _first_count(limit, len(partitions))
    t0, batch = await source.ranges(starts, count, with_time=True)
    assert t0 is not None
    # Read your writes: the entries of changes acknowledged just before this request can sit
    # at t0 (on one server, a change made in the same millisecond as this read) or above it
    # (on a cluster t0 trails the slowest node's clock by the hold-back margin). Read again
    # once t0 has passed them (a wait of at most the margin, or the rest of the millisecond
    # on one server, and only when such entries exist): a page then holds every change
    # acknowledged before it was asked for, as long as the nodes' clocks agree within the
    # margin.
    newest = max((parse_stream_id(e[-1][0])[0] for e in batch.values() if e), default=None)
    if newest is not None and newest >= t0:
        target = min(newest, t0 + source.margin_ms)
        while t0 <= target:
            await asyncio.sleep((target - t0 + 1) / 1000)
            t0, batch = await source.ranges(starts, count, with_time=True)
            assert t0 is not None
    if after is not None:
        reason = await _lost(source, after, partitions, t0, retention_ms)
        if reason:
            cursor = EventId.before(t0)
            return Page([reset_event(cursor, t0, reason)], cursor, True, t0, reset=True)

    merge = _Merge(t0)
    merge.add(batch, count)
    out: list[Event] = []
    consumed: EventId | None = None
    scanned = 0
    while True:
        frontier = min((merge.last[p] for p in merge.open), default=None)
        while merge.pending and (frontier is None or merge.pending[0][0] <= frontier):
            key, sid, fields = heapq.heappop(merge.pending)
            consumed = key
            scanned += 1
            if flt.matches(fields.get("sku", ""), fields.get("location", "")):
                out.append(from_entry(key.partition, sid, fields))
                if len(out) == limit:
                    return Page(out, key, False, t0)
        cursor = consumed or after or EventId.before(t0)
        if not merge.open:
            return Page(out, cursor, True, t0)
        if scanned >= SCAN_BUDGET:
            return Page(out, cursor, False, t0)
        # Read on only from streams that could still hold an event before the ones we'd
        # deliver from what is already read.
        bound = merge.kth_match(limit - len(out), flt)
        refill = [p for p in merge.open if bound is None or merge.last[p] < bound]
        share = math.ceil((SCAN_BUDGET - scanned) / len(refill))
        count = max(8, min(count * 4, MAX_READ_COUNT, share))
        _, batch = await source.ranges(
            {p: stream_id(successor(merge.last[p].ms, merge.last[p].seq)) for p in refill},
            count,
            False,
        )
        merge.add(batch, count)


class _Merge:
    """Entries read but not yet delivered, and which streams may hold more before t0."""

    def __init__(self, t0: int) -> None:
        self.t0 = t0
        self.pending: list[tuple[EventId, str, dict[str, str]]] = []  # a heap
        self.last: dict[int, EventId] = {}  # last id read, for streams still open
        self.open: set[int] = set()

    def add(self, batch: Batch, count: int) -> None:
        """Take one read of each stream in `batch` (every stream asked, even if empty)."""
        for p, entries in batch.items():
            self.open.discard(p)
            self.last.pop(p, None)
            key: EventId | None = None
            for sid, fields in entries:
                ms, seq = parse_stream_id(sid)
                if ms >= self.t0:
                    break  # this and everything after wait for a later read
                key = EventId(ms, seq, p)
                heapq.heappush(self.pending, (key, sid, fields))
            else:
                if len(entries) == count and key is not None:
                    self.open.add(p)  # a full read: the stream may hold more
                    self.last[p] = key

    def kth_match(self, k: int, flt: EventFilter) -> EventId | None:
        """The k-th smallest pending id that passes the filter, if there are k."""
        if k <= 0:
            return None
        ids = [
            key
            for key, _, fields in self.pending
            if flt.matches(fields.get("sku", ""), fields.get("location", ""))
        ]
        if len(ids) < k:
            return None
        return heapq.nsmallest(k, ids)[-1]


class SharedReads:
    """The pages a process reads for SSE catch-ups: at most `concurrency` reads at once, and
    streams that ask for the same page (same cursor and filter) while it is being read share
    that one read. Many clients resuming from one old id at once (after a deploy, say) then
    cost one merge per page instead of one per client; unbounded, they starved the event loop
    until their store reads timed out. A shared page may have been read before a joiner
    subscribed: the joiner checks `t0` (see `sse`)."""

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._reading: dict[tuple[object, ...], asyncio.Future[Page]] = {}

    async def page(
        self, source: Source, after: EventId, limit: int, flt: EventFilter, retention_ms: int
    ) -> Page:
        key = (after, limit, flt.sku, flt.location, flt.channel, retention_ms)
        future = self._reading.get(key)
        if future is None:
            future = asyncio.ensure_future(self._read(source, after, limit, flt, retention_ms))
            self._reading[key] = future
            future.add_done_callback(lambda done: self._done(key, done))
        # Shielded: a client leaving does not cancel the read the others wait for.
        return await asyncio.shield(future)

    async def _read(
        self, source: Source, after: EventId, limit: int, flt: EventFilter, retention_ms: int
    ) -> Page:
        async with self._slots:
            return await read_page(source, after, limit, flt, retention_ms)

    def _done(self, key: tuple[object, ...], future: asyncio.Future[Page]) -> None:
        if self._reading.get(key) is future:
            del self._reading[key]
        if not future.cancelled():
            future.exception()  # retrieved: every waiter may have left


def _first_count(limit: int, partitions: int) -> int:
    if partitions == 1:
        return min(MAX_READ_COUNT, max(2 * limit, 16))
    return min(MAX_READ_COUNT, max(math.ceil(2 * limit / partitions), 8))


async def _lost(
    source: Source, after: EventId, partitions: list[int], t0: int, retention_ms: int
) -> str | None:
    """Why events after the cursor may be gone (None if they are all still there)."""
    if after.ms < t0 - retention_ms:
        return "cursor_expired"
    if after.ms >= t0 - retention_ms + TRIM_CHECK_MARGIN_MS:
        return None
    for p, info in (await source.stream_info(partitions)).items():
        start = after.first_stream_id(p)
        if parse_stream_id(str(info.get("max-deleted-entry-id") or "0-0")) >= start:
            return "trimmed"  # XDEL removed an entry at or after the cursor
        removed = int(info.get("entries-added") or 0) > int(info.get("length") or 0)
        first = info.get("first-entry")
        first_id = parse_stream_id(first[0]) if first else None
        last_id = parse_stream_id(str(info.get("last-generated-id") or "0-0"))
        # Trimming cuts the oldest entries: if some were cut and the oldest left is past the
        # cursor (or none is left though ids past it were made), the cut may have taken
        # entries after the cursor.
        if removed and (first_id > start if first_id else last_id >= start):
            return "trimmed"
    return None
