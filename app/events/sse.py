"""One SSE client's stream: catch up from the store after its resume point, then follow the
hub, with no gap and no duplicate.

The subscription is taken first, so the hub queues every event after `sub.start`; the
catch-up then reads pages until one is complete. A complete page has examined every event
stamped before its TIME, which was taken after the subscription, so it covers everything up
to `sub.start`: together with the queue nothing is missed, and queued events at or below the
last id sent are dropped. A subscription that overflowed (a slow client) is left and the
stream catches up again the same way from the last id it sent.

Catch-up pages are read through `hub.catch_up` (`log.SharedReads`): a few at once per process,
and one read for every stream asking for the same page at the same time. A shared page may
have been read before this stream subscribed, so the catch-up ends only at a complete page
whose TIME is not older than the subscription. A store error while streaming (a node down, a
timeout) is a wait, not the end of the stream: a warning, a keep-alive, and the read is
retried from the last id sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from app.events.filters import EventFilter
from app.events.hub import EventHub, Subscription
from app.events.ids import EventId
from app.events.model import Event
from app.events.source import StreamSource

CATCH_UP_PAGE = 500
LIVE_BATCH = 256  # events written to the socket at once when the queue has a backlog
KEEP_ALIVE = b": keep-alive\n\n"
RETRY_SECONDS = (0.1, 2.0)  # backoff after a failed catch-up read: first, longest

log = logging.getLogger("omnistock.events")


async def event_stream(
    hub: EventHub,
    source: StreamSource,
    flt: EventFilter,
    resume: EventId | None,
    retention_ms: int,
    keepalive_seconds: float,
) -> AsyncIterator[bytes]:
    last = resume
    # Subscribed before the first byte: a client that has read it misses nothing after.
    sub = await hub.subscribe(flt)
    try:
        yield b"retry: 1000\n\n"  # reconnect after a second; also flushes the headers
        while True:
            if last is None:
                last = sub.start
            else:
                backoff = RETRY_SECONDS[0]
                while True:
                    try:
                        page = await hub.catch_up.page(
                            source, last, CATCH_UP_PAGE, flt, retention_ms
                        )
                    except RedisError as exc:
                        log.warning("event stream: catch-up read failed (%s); retrying", exc)
                        yield KEEP_ALIVE
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, RETRY_SECONDS[1])
                        continue
                    backoff = RETRY_SECONDS[0]
                    last = page.next
                    if page.events:
                        yield b"".join(event.frame for event in page.events)
                    if page.complete and EventId.before(page.t0) >= sub.start:
                        break
            # Queued events after `last`, until the subscription overflows (and is drained)
            # or closes; a keep-alive comment whenever nothing came for a while.
            while not sub.closed and not (sub.overflowed and sub.queue.empty()):
                try:
                    async with asyncio.timeout(keepalive_seconds):
                        first = await sub.queue.get()
                except TimeoutError:
                    yield KEEP_ALIVE
                    continue
                chunk, last = _frames(first, sub, last)
                if chunk:
                    yield chunk
            if sub.closed:
                return
            hub.unsubscribe(sub)  # overflowed: catch up from the store, then follow again
            sub = await hub.subscribe(flt)
    finally:
        hub.unsubscribe(sub)


def _frames(first: Event | None, sub: Subscription, last: EventId) -> tuple[bytes, EventId]:
    """The frames of `first` and whatever else is queued (up to LIVE_BATCH), skipping events
    at or below `last` (already sent by the catch-up); and the new last id sent."""
    batch = [first]
    while len(batch) < LIVE_BATCH and not sub.queue.empty():
        batch.append(sub.queue.get_nowait())
    frames = []
    for event in batch:
        if event is not None and event.id > last:
            frames.append(event.frame)
            last = event.id
    return b"".join(frames), last
