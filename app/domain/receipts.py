"""Receipts of supply: a `receipt` stock event with a `supply_id` moves its units from that
supply line to on_hand, and the units promised from the line become on-hand units of the
same holds (lua/supply_receive.lua, one atomic step per receipt).

The script must be given the record of every hold promised from the line (every key is in
KEYS), so the service reads the line's promises first; a hold promised in between makes the
script answer "retry" having changed nothing, and the service reads again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from app import keys
from app.domain.clock import Clock
from app.domain.errors import StoreUnavailable
from app.domain.stock import StockService
from app.settings import Settings
from app.store import calls
from app.store.calls import Reply, StockEvent
from app.store.scripts import Scripts

if TYPE_CHECKING:
    from app.domain.stock_events import Accepted

ATTEMPTS = 5


@dataclass(eq=False)  # a service, compared by identity
class Receipts:
    _redis: Redis
    _scripts: Scripts
    _stock: StockService
    _settings: Settings
    _clock: Clock

    async def receive(self, event: Accepted, channels: bytes) -> list[Any]:
        """supply_receive.lua's reply: the stock_events.lua row shape, or {"unknown_supply"}."""
        assert event.supply_id is not None
        p = keys.partition_of(event.sku)
        suffix = f"|{event.location}|{event.supply_id}"
        for _ in range(ATTEMPTS):
            fields = [str(f) for f in await self._redis.hkeys(keys.promises(p, event.sku))]
            holds = sorted({f.removesuffix(suffix) for f in fields if f.endswith(suffix)})
            call = calls.supply_receive(
                StockEvent(
                    event.event_id,
                    event.type,
                    event.sku,
                    event.location,
                    event.quantity,
                    event.fingerprint,
                ),
                event.supply_id,
                holds,
                retention_ms=self._stock.event_retention_ms,
                dedupe_seconds=self._settings.event_dedupe_seconds,
                channels=channels,
                offset_ms=self._clock.offset_ms(),
            )
            reply: list[Any] = await self._scripts.run(call)
            if reply[0] != Reply.RETRY:
                return reply
        raise StoreUnavailable("the supply line kept changing while receiving; retry the event")
