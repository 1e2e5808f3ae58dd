"""Which events a reader wants: by sku, location and channel (the channel's eligible
locations, less the skus it excludes, looked up in the config cache on every event so a
channel edit applies at once).

A kit has no events of its own: a filter on a kit's sku follows the events of its base
components (as the kit was defined when the reader subscribed), each carrying the
component's position and channel figures; the reader refetches the kit's availability
(`GET /v1/availability/{kit}`, one store read) when it needs the kit's figure. So no script
knows kits and a component change costs nothing more than before; the price is paid by
kit readers only: more events than kit changes, and a read per change they act on."""

from __future__ import annotations

from app import keys
from app.domain.config import ConfigService
from app.domain.kits import expand


class EventFilter:
    def __init__(
        self,
        config: ConfigService | None = None,
        *,
        sku: str | None = None,
        location: str | None = None,
        channel: str | None = None,
    ) -> None:
        if channel is not None and config is None:
            raise ValueError("a channel filter needs the config cache")
        self.sku = sku
        # The skus whose events match: the sku, and a kit's base components.
        self.skus: frozenset[str] | None = None
        if sku is not None:
            kits = config.kits if config is not None else {}
            self.skus = frozenset({sku, *(expand(kits, sku) if sku in kits else ())})
        self.location = location
        self.channel = channel
        self._config = config

    def partitions(self) -> list[int]:
        """The streams that can hold a matching event: one when filtering by sku."""
        if self.skus is not None:
            return sorted({keys.partition_of(s) for s in self.skus})
        return list(range(keys.PARTITIONS))

    def matches(self, sku: str, location: str) -> bool:
        if self.skus is not None and sku not in self.skus:
            return False
        if self.location is not None and location != self.location:
            return False
        if self.channel is None:
            return True
        assert self._config is not None
        channel = self._config.channels.get(self.channel)
        return channel is not None and channel.sees(sku, location)
