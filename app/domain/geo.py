"""Distances between locations and a point: the one home of the distance rule.

The geo part of a nearby query and of `ship_to` sourcing is configuration: every process
computes it from its cached copy of the locations (app/domain/config.py), refreshed with the
rest of the configuration, so it costs the store nothing. The store keeps the same coordinates
in a geo index (`os:{cfg}:geo`, written by config_put.lua with the location's record) for
tools and operators (`GEOSEARCH os:{cfg}:geo FROMLONLAT ...`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
_KM_PER_DEGREE_LAT = math.pi * EARTH_RADIUS_KM / 180


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Placed:
    lat: float
    lon: float
    location: str


class GeoIndex:
    """The locations with coordinates, sorted by latitude: a radius query measures only those
    in the latitude band the radius allows (a few dozen of 1,000 stores for a city radius)."""

    def __init__(self, placed: Iterable[Placed]) -> None:
        self._placed = sorted(placed, key=lambda p: (p.lat, p.location))
        self._lats = [p.lat for p in self._placed]

    def within(self, lat: float, lon: float, radius_km: float) -> list[tuple[float, str]]:
        """(distance km, location) of every location within the radius, nearest first (ties
        by id)."""
        band = radius_km / _KM_PER_DEGREE_LAT
        lo = bisect.bisect_left(self._lats, lat - band)
        hi = bisect.bisect_right(self._lats, lat + band)
        found = []
        for p in self._placed[lo:hi]:
            d = haversine_km(lat, lon, p.lat, p.lon)
            if d <= radius_km:
                found.append((d, p.location))
        found.sort()
        return found

    def distances(self, lat: float, lon: float) -> dict[str, float]:
        """Distance km of every location with coordinates."""
        return {p.location: haversine_km(lat, lon, p.lat, p.lon) for p in self._placed}
