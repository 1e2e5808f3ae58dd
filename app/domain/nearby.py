"""Find in store: the locations near a point that can serve a sku, or a whole cart.

The geo part is configuration, computed from the process's cached locations
(app/domain/geo.py): no store time. The stock part is one round trip to the store: one
availability call for a sku (an HMGET of just the locations in range), one pipelined read for
a cart (app/domain/stock.py `units`).
"""

from __future__ import annotations

from typing import Any

from app.domain.config import ConfigService
from app.domain.kits import expand
from app.domain.models import Channel, NearbyQuery
from app.domain.stock import StockService

DEFAULT_LIMIT = 20


class NearbyService:
    def __init__(self, config: ConfigService, stock: StockService) -> None:
        self._config = config
        self._stock = stock

    def _in_range(
        self, lat: float, lon: float, radius_km: float, channel: Channel | None
    ) -> list[tuple[float, str]]:
        found = self._config.geo.within(lat, lon, radius_km)
        if channel is None:
            return found
        eligible = set(channel.locations)
        return [(d, loc) for d, loc in found if loc in eligible]

    def _entry(self, distance: float, loc: str) -> dict[str, Any]:
        return {
            "location": loc,
            "name": self._config.locations[loc].name,
            "distance_km": round(distance, 3),
        }

    async def sku(
        self,
        sku: str,
        lat: float,
        lon: float,
        radius_km: float,
        quantity: int,
        channel: Channel | None,
        limit: int | None,
    ) -> dict[str, Any]:
        """Locations within the radius (of the channel) with at least `quantity` of `sku`
        (a kit: whole kits), nearest first."""
        in_range = self._in_range(lat, lon, radius_km, channel)
        wanted = [loc for _, loc in in_range]
        found = (await self._stock.units([sku], wanted, nothing=not wanted))[sku]
        out = [
            {**self._entry(d, loc), "available": found.get(loc, 0)}
            for d, loc in in_range
            if found.get(loc, 0) >= quantity
        ]
        return {
            "sku": sku,
            "channel": channel.id if channel else None,
            "locations": out[: limit or DEFAULT_LIMIT],
        }

    async def cart(self, body: NearbyQuery, channel: Channel | None) -> dict[str, Any]:
        """Locations within the radius that can serve EVERY line at once, nearest first. Lines
        are checked on their base components together, so a kit and a line of one of its
        components are not both served from the same units."""
        in_range = self._in_range(body.lat, body.lon, body.radius_km, channel)
        wanted = [loc for _, loc in in_range]
        need: dict[str, int] = {}
        for line in body.lines:
            for base, units in expand(self._config.kits, line.sku, line.quantity).items():
                need[base] = need.get(base, 0) + units
        skus = list(dict.fromkeys([line.sku for line in body.lines] + list(need)))
        found = await self._stock.units(skus, wanted, nothing=not wanted)
        out = []
        for d, loc in in_range:
            if all(found[base].get(loc, 0) >= n for base, n in need.items()):
                lines = [
                    {"sku": sku, "available": found[sku].get(loc, 0)}
                    for sku in dict.fromkeys(line.sku for line in body.lines)
                ]
                out.append({**self._entry(d, loc), "lines": lines})
        return {
            "channel": channel.id if channel else None,
            "locations": out[: body.limit or DEFAULT_LIMIT],
        }
