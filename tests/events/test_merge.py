"""The page merge against a brute-force sort, on an in-memory store with many partitions,
equal stream ids across partitions, entries stamped at or after t0, and filters. The store's
clock moves 1 ms per round read with TIME, so a page that meets entries at or after its t0
reads again once t0 has passed them (read your writes, app/events/log.py)."""

from __future__ import annotations

import bisect
import random
from typing import Any

import pytest

from app import keys
from app.events.filters import EventFilter
from app.events.ids import EventId, parse_stream_id
from app.events.log import SCAN_BUDGET, read_page
from app.events.source import Batch

T0 = 1_000_000
LOCATIONS = ["dc", "store-a", "store-b"]


class FakeSource:
    margin_ms = 0

    def __init__(self, streams: dict[int, list[tuple[str, dict[str, str]]]]) -> None:
        self.streams = streams
        self.ids = {p: [parse_stream_id(sid) for sid, _ in e] for p, e in streams.items()}
        self.entries_read = 0
        self.rounds = 0
        self.now = T0  # the store's TIME, ms: 1 ms later at each round that reads it

    async def ranges(
        self, starts: dict[int, str], count: int, with_time: bool
    ) -> tuple[int | None, Batch]:
        self.rounds += 1
        out: Batch = {}
        for p, start in starts.items():
            low = (0, 0) if start == "-" else parse_stream_id(start)
            i = bisect.bisect_left(self.ids.get(p, []), low)
            out[p] = self.streams.get(p, [])[i : i + count]
            self.entries_read += len(out[p])
        if not with_time:
            return None, out
        self.now += 1
        return self.now - 1, out

    async def stream_info(self, partitions: list[int]) -> dict[int, dict[str, Any]]:
        return {}


def make_streams(seed: int, n: int, span_ms: int) -> FakeSource:
    rng = random.Random(seed)
    skus = [f"sku-{i}" for i in range(40)]
    rows: dict[int, list[tuple[int, dict[str, str]]]] = {}
    for _ in range(n):
        sku = rng.choice(skus)
        fields = {"type": "stock.set", "sku": sku, "location": rng.choice(LOCATIONS)}
        ms = T0 - span_ms + rng.randrange(span_ms + 3)  # a few at or after t0
        rows.setdefault(keys.partition_of(sku), []).append((ms, fields))
    streams: dict[int, list[tuple[str, dict[str, str]]]] = {}
    for p, items in rows.items():
        items.sort(key=lambda r: r[0])
        seq: dict[int, int] = {}
        out = []
        for ms, fields in items:
            seq[ms] = seq.get(ms, -1) + 1
            out.append((f"{ms}-{seq[ms]}", fields))
        streams[p] = out
    return FakeSource(streams)


def expected(source: FakeSource, flt: EventFilter, below: int) -> list[str]:
    """Every event stamped below `below` that passes the filter, in the feed's order."""
    keys_ = [
        EventId.of(sid, p)
        for p, entries in source.streams.items()
        for sid, f in entries
        if flt.matches(f["sku"], f["location"])
    ]
    return [str(k) for k in sorted(keys_) if k.ms < below]


async def read_all(source: FakeSource, flt: EventFilter, limit: int) -> tuple[list[str], int]:
    """Every event the pages deliver until one is complete, and that page's t0."""
    out: list[str] = []
    after = None
    for _ in range(10_000):
        page = await read_page(source, after, limit, flt, 10**9)
        assert not page.reset
        out += [str(e.id) for e in page.events]
        assert page.complete or len(page.events) == limit or page.next != after
        after = page.next
        if page.complete:
            return out, page.t0
    raise AssertionError("never complete")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("limit", "n"), [(1, 200), (7, 1500), (100, 1500)])
async def test_pages_equal_brute_force(seed: int, limit: int, n: int) -> None:
    source = make_streams(seed, n, n // 7)  # ~7 entries per ms: many equal stream ids
    flt = EventFilter()
    delivered, t0 = await read_all(source, flt, limit)
    assert delivered == expected(source, flt, t0)


@pytest.mark.parametrize(
    "flt",
    [
        EventFilter(sku="sku-3"),
        EventFilter(location="store-b"),
        EventFilter(sku="sku-7", location="dc"),
    ],
    ids=["sku", "location", "sku+location"],
)
async def test_filtered_pages_equal_brute_force(flt: EventFilter) -> None:
    source = make_streams(99, 2000, 300)
    delivered, t0 = await read_all(source, flt, 9)
    assert delivered == expected(source, flt, t0)


async def test_resume_from_any_cursor() -> None:
    source = make_streams(5, 800, 50)
    flt = EventFilter()
    for i in range(0, len(expected(source, flt, T0)), 37):
        cursor = expected(source, flt, T0)[i]
        page = await read_page(source, EventId(*map(int, cursor.split("-"))), 20, flt, 10**9)
        everything = expected(source, flt, page.t0)
        assert [str(e.id) for e in page.events] == everything[i + 1 : i + 21]


async def test_first_page_does_not_read_limit_from_every_partition() -> None:
    source = make_streams(1, 50_000, 5_000)  # every partition busy, evenly
    assert len(source.streams) > 30
    page = await read_page(source, None, 100, EventFilter(), 10**9)
    assert len(page.events) == 100
    # 100 from each of the busy streams would be > 3000 entries.
    assert source.entries_read < 1000, source.entries_read


async def test_selective_filter_is_bounded_per_page() -> None:
    source = make_streams(2, 30_000, 5_000)
    flt = EventFilter(location="nowhere")  # matches nothing, over every partition
    page = await read_page(source, None, 10, flt, 10**9)
    assert page.events == [] and not page.complete
    assert source.entries_read <= 2 * SCAN_BUDGET
    assert (await read_all(source, flt, 10))[0] == []


async def test_old_cursor_resets() -> None:
    source = make_streams(3, 100, 50)
    page = await read_page(source, EventId(T0 - 61_000, 0, 0), 10, EventFilter(), 60_000)
    assert page.reset and [e.type for e in page.events] == ["reset"]
    assert page.next == EventId.before(page.t0) and page.events[0].id == page.next


async def test_an_event_stamped_in_the_millisecond_of_the_read_is_in_the_page() -> None:
    """Read your writes on one server: a change acknowledged in the same millisecond as the
    page's first read has its entry at that read's t0; the page reads again once the store's
    clock has passed it, so the change is in the page."""
    fields = {"type": "stock.set", "sku": "sku-1", "location": "dc"}
    source = FakeSource({1: [(f"{T0 - 1}-0", fields), (f"{T0}-0", fields)]})
    page = await read_page(source, None, 10, EventFilter(), 10**9)
    assert [str(e.id) for e in page.events] == [f"{T0 - 1}-0-001", f"{T0}-0-001"]
    assert page.t0 > T0 and page.complete
