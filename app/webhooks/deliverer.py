"""The deliverer: one per deployment, whatever the number of workers and hosts.

Every worker runs a `WebhookDeliverer`; the one holding the lease (`SET NX PX` on
`os:{wh}:lease`, renewed every third of its life by its holder only) delivers, the others try
to take it every third of a lease. A dead holder's lease lapses, so another worker delivers
within `webhook_lease_seconds`.

Per enabled subscription one task reads the event log after the subscription's cursor (the
same pages as /v1/events/log: one total order, on one server and on a cluster) and POSTs each
matching delivery, one at a time, until a 2xx: in order, at-least-once. The cursor moves (in
the store, fenced by the lease and the subscription's epoch) only once every delivery of an
event was acknowledged, so a restart or a takeover resumes at the first unacknowledged event
and never skips one. A failed attempt is retried after exponential waits; after
`webhook_max_attempts` failures of one delivery the subscription is disabled (re-enable it
with PATCH: delivery resumes at that event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

import httpx
import orjson
from prometheus_client import Counter, Histogram

from app.domain.clock import iso
from app.domain.config import ConfigService
from app.domain.tasks import cancel_and_wait
from app.events.filters import EventFilter
from app.events.hub import EventHub
from app.events.ids import EventId, parse_event_id
from app.events.log import Source, read_page
from app.settings import Settings
from app.webhooks.model import Delivery, Matcher
from app.webhooks.registry import Record, WebhookRegistry
from app.webhooks.verify import HEADER, sign

log = logging.getLogger("omnistock.webhooks")

BACKOFF_FACTOR = 5
PAGE = 200
ATTEMPTS = Counter("omnistock_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
for _outcome in ("ok", "failed"):
    ATTEMPTS.labels(_outcome)  # both series from the start (0), for rate() and alerts
DELAY = Histogram(
    "omnistock_webhook_delay_seconds",
    "From an event's store time to its delivery's acknowledgement",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
)


def backoff(attempt: int, initial: float, cap: float) -> float:
    """The wait after failed attempt number `attempt` (1-based)."""
    return float(min(cap, initial * BACKOFF_FACTOR ** (attempt - 1)))


class WebhookDeliverer:
    def __init__(
        self,
        registry: WebhookRegistry,
        source: Source,
        config: ConfigService | None,
        settings: Settings,
        hub: EventHub | None = None,
    ) -> None:
        self._registry = registry
        self._hub = hub  # wakes idle subscriptions at once; without it they poll
        self._source = source
        self._config = config
        self._settings = settings
        self.token = secrets.token_hex(16)
        self._lease_ms = int(settings.webhook_lease_seconds * 1000)
        self._task: asyncio.Task[None] | None = None
        # The leader's delivery tasks (and its watcher), also known here so that `stop` can
        # wait for them (see `stop`).
        self._children: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.leading = False
        self._unlogged: dict[str, list[dict[str, Any]]] = {}  # acknowledged attempts by sub
        self._wakers: set[asyncio.Event] = set()  # one per idle-waiting subscription task

    def start(self) -> None:
        self._http = httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_seconds, follow_redirects=False
        )
        self._task = asyncio.create_task(self._loop(), name="webhook-deliverer")

    async def stop(self, release: bool = True) -> None:
        """Stop; `release=False` leaves the lease to lapse, as a crashed worker would."""
        await cancel_and_wait(self._task)
        # `_lead` cancels its tasks on the way out, but cancel_and_wait cancels the loop again
        # every 0.5 s, and such a cancel can cut that clean-up short: a delivery task slow to
        # end (a contended machine) then lived on past the closed HTTP client below, failed
        # every attempt and disabled its subscription with a write the lease still allowed.
        for task in list(self._children):
            await cancel_and_wait(task)
        if release:
            try:
                await self._registry.release(self.token)
            except Exception as exc:  # the lease lapses on its own
                log.warning("webhooks: releasing the lease failed: %s", exc)
        if self._http is not None:
            await self._http.aclose()

    async def _loop(self) -> None:
        pause = self._lease_ms / 3000
        while True:
            try:
                # No subscription, no lease: a deployment without webhooks writes nothing.
                if await self._registry.count() and await self._registry.acquire(
                    self.token, self._lease_ms
                ):
                    await self._lead()
            except Exception as exc:  # the store may be down: try again
                log.warning("webhooks: deliverer pass failed: %s", exc)
            await asyncio.sleep(pause)

    def _adopt(self, task: asyncio.Task[None]) -> None:
        self._children.add(task)
        task.add_done_callback(self._children.discard)

    async def _lead(self) -> None:
        log.info("webhooks: this worker delivers (lease %s)", self.token[:8])
        tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self.leading = True
        watcher = asyncio.create_task(self._watch(), name="webhook-watch") if self._hub else None
        if watcher is not None:
            self._adopt(watcher)
        try:
            while await self._registry.renew(self.token, self._lease_ms):
                wanted = {r.sub.id: r for r in await self._registry.all() if r.sub.enabled}
                for sub_id, (epoch, task) in list(tasks.items()):
                    record = wanted.get(sub_id)
                    if record is None or record.epoch != epoch or task.done():
                        await cancel_and_wait(task)
                        del tasks[sub_id]
                for sub_id, record in wanted.items():
                    if sub_id not in tasks:
                        task = asyncio.create_task(self._run(record), name=f"webhook-{sub_id}")
                        self._adopt(task)
                        tasks[sub_id] = (record.epoch, task)
                await asyncio.sleep(min(self._lease_ms / 3000, 1.0))
        finally:
            self.leading = False
            await cancel_and_wait(watcher)
            for _, task in tasks.values():
                await cancel_and_wait(task)

    async def _watch(self) -> None:
        """Wake the idle subscriptions whenever this process's event hub (the one blocking
        reader of the streams) sees events: delivery then starts within milliseconds instead
        of a poll interval. The hub's queue is only a signal here; pages come from the log."""
        assert self._hub is not None
        while True:
            sub = await self._hub.subscribe(EventFilter())
            try:
                while not sub.overflowed and not sub.closed:
                    await sub.queue.get()
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    for waker in self._wakers:
                        waker.set()
            finally:
                self._hub.unsubscribe(sub)

    def _sees(self, channel: str, sku: str, location: str) -> bool:
        found = self._config.channels.get(channel) if self._config else None
        return found is not None and found.sees(sku, location)

    async def _run(self, record: Record) -> None:
        """Deliver one subscription from its cursor on; ends when it is disabled or changed
        (its fenced writes fail), or when this worker lost the lease."""
        self._unlogged.pop(record.sub.id, None)
        try:
            await self._deliver_all(record)
        except Exception as exc:  # restarted from the stored cursor by the next pass
            log.warning("webhooks: subscription %s stopped: %s", record.sub.id, exc)

    async def _deliver_all(self, record: Record) -> None:
        sub, settings = record.sub, self._settings
        matcher = Matcher(sub, self._sees)
        only_sku = sub.skus[0] if sub.skus is not None and len(sub.skus) == 1 else None
        flt = EventFilter(sku=only_sku)
        cursor: EventId = parse_event_id(sub.cursor, "cursor")
        retention_ms = settings.event_retention_seconds * 1000
        waker = asyncio.Event()
        self._wakers.add(waker)
        try:
            await self._follow(record, matcher, flt, cursor, retention_ms, waker)
        finally:
            self._wakers.discard(waker)

    async def _follow(
        self,
        record: Record,
        matcher: Matcher,
        flt: EventFilter,
        cursor: EventId,
        retention_ms: int,
        waker: asyncio.Event,
    ) -> None:
        while True:
            waker.clear()  # before the read: an event written during it wakes the wait below
            page = await read_page(self._source, cursor, PAGE, flt, retention_ms)
            saved = cursor
            for event in page.events:
                deliveries = matcher.deliveries(event.doc)
                for delivery in deliveries:
                    if not await self._deliver(record, delivery):
                        return
                if deliveries:
                    DELAY.observe(max(0.0, time.time() - event.id.ms / 1000))
                    if not await self._save(record, event.id):
                        return
                    saved = event.id
            if page.next != saved and not await self._save(record, page.next):
                return
            cursor = page.next
            if page.complete and len(page.events) < PAGE:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waker.wait(), self._settings.webhook_poll_seconds)

    async def _save(self, record: Record, cursor: EventId) -> bool:
        """Store the cursor, with the acknowledged attempts since the last save (one call)."""
        attempts = self._unlogged.pop(record.sub.id, [])
        keep = self._settings.webhook_log_size
        written = await self._registry.fenced_set(
            self.token, record, attempts, keep, cursor=str(cursor)
        )
        return written == 1

    async def _deliver(self, record: Record, delivery: Delivery) -> bool:
        """POST until acknowledged (True), or disable the subscription (False)."""
        settings, sub = self._settings, record.sub
        assert self._http is not None
        body = orjson.dumps(delivery.payload)
        error = ""
        for attempt in range(1, settings.webhook_max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Omnistock-Webhooks/1",
                HEADER: sign(record.secret, body, int(time.time())),
                "Omnistock-Event-Id": delivery.id,
                "Omnistock-Event-Type": delivery.type,
                "Omnistock-Subscription": sub.id,
                "Omnistock-Attempt": str(attempt),
            }
            started = time.monotonic()
            status: int | None = None
            try:
                response = await self._http.post(sub.url, content=body, headers=headers)
                status = response.status_code
                error = "" if 200 <= status < 300 else f"HTTP {status}"
            except Exception as exc:  # any failure to deliver is a failed attempt
                error = f"{type(exc).__name__}: {exc}"[:300]
            entry: dict[str, Any] = {
                "event": delivery.id,
                "type": delivery.type,
                "attempt": attempt,
                "at": iso(int(time.time() * 1000)),
                "status": status,
                "latency_ms": round((time.monotonic() - started) * 1000, 1),
                "error": error or None,
            }
            ATTEMPTS.labels("ok" if not error else "failed").inc()
            unlogged = self._unlogged.setdefault(sub.id, [])
            unlogged.append(entry)
            if not error:
                return True  # logged with the cursor
            del self._unlogged[sub.id]
            await self._registry.log_attempts(sub.id, unlogged, settings.webhook_log_size)
            if attempt < settings.webhook_max_attempts:
                await asyncio.sleep(
                    backoff(
                        attempt,
                        settings.webhook_retry_initial_seconds,
                        settings.webhook_retry_max_seconds,
                    )
                )
        tries = settings.webhook_max_attempts
        reason = f"{tries} failed attempts to deliver {delivery.id}: {error}"
        log.warning("webhooks: disabling %s: %s", sub.id, reason)
        await self._registry.fenced_set(
            self.token, record, [], settings.webhook_log_size, enabled="0", disabled_reason=reason
        )
        return False
