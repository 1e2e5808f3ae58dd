"""Which events a reader wants: by sku, location and channel (the channel's eligible
locations, less the skus it excludes, looked up in the config cache on every event so a
channel edit applies at once)."""

from __future__ import annotations

from app import keys
from app.domain.config import ConfigService


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
        self.location = location
        self.channel = channel
        self._config = config

    def partitions(self) -> list[int]:
        """The streams that can hold a matching event: one when filtering by sku."""
        if self.sku is not None:
            return [keys.partition_of(self.sku)]
        return list(range(keys.PARTITIONS))

    def matches(self, sku: str, location: str) -> bool:
        if self.sku is not None and sku != self.sku:
            return False
        if self.location is not None and location != self.location:
            return False
        if self.channel is None:
            return True
        assert self._config is not None
        channel = self._config.channels.get(self.channel)
        return channel is not None and channel.sees(sku, location)
