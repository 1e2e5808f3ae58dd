"""Which events a reader wants: by sku, location and channel (the channel's eligible
locations, looked up in the config cache on every event so a channel edit applies at once)."""

from __future__ import annotations

from app import keys
from app.domain.config import ConfigService
from app.domain.models import Channel


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
        self._channel_seen: Channel | None = None
        self._channel_locations: frozenset[str] = frozenset()

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
        return self.channel is None or location in self._eligible()

    def _eligible(self) -> frozenset[str]:
        assert self._config is not None and self.channel is not None
        channel = self._config.channels.get(self.channel)
        if channel is None:
            return frozenset()
        if channel is not self._channel_seen:  # the cache replaced it: a new version
            self._channel_seen = channel
            self._channel_locations = frozenset(channel.locations)
        return self._channel_locations
