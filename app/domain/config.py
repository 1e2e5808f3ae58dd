"""Locations, channels and kits: stored under the `{cfg}` tag, cached in every process.

Scripts never read configuration; the service passes what they need (a channel's eligible
locations, in sourcing order) as ARGV from this cache. Each process re-reads the cache when the
configuration version moves (checked every `config_refresh_seconds`, and at once on a lookup
of an id it does not know), so a change made through one worker is seen by the others within
that interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

import orjson
from redis.asyncio import Redis

from app import keys
from app.domain.channel_rules import script_entry
from app.domain.errors import ChannelNotFound, InvalidRequest, LocationNotFound
from app.domain.geo import GeoIndex, Placed
from app.domain.idempotency import Claim, checked, idem_for
from app.domain.models import Channel, ChannelIn, Geo, Kit, Location, LocationIn
from app.domain.tasks import cancel_and_wait
from app.store import calls
from app.store.scripts import Scripts

log = logging.getLogger("omnistock.config")


_CHANNELS_ARGS_KEPT = 256


class ConfigService:
    def __init__(self, redis: Redis, scripts: Scripts, refresh_seconds: float) -> None:
        self._redis = redis
        self._scripts = scripts
        self._refresh_seconds = refresh_seconds
        self._version = -1
        self.locations: dict[str, Location] = {}
        self.channels: dict[str, Channel] = {}
        self.kits: dict[str, Kit] = {}
        self.geo = GeoIndex([])
        self._by_priority: list[str] = []
        self._channels_args: dict[frozenset[str] | None, bytes] = {}  # see channels_arg
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- cache ---------------------------------------------------------------------------

    async def refresh(self, force: bool = False) -> None:
        async with self._lock:
            version = int(await self._redis.get(keys.CONFIG_VERSION) or 0)
            if version == self._version and not force:
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.LOCATIONS)
                pipe.hgetall(keys.CHANNELS)
                pipe.hgetall(keys.KITS)
                raw_locations, raw_channels, raw_kits = await pipe.execute()
            self.locations = {
                k: Location.model_validate({**orjson.loads(v), "id": k})
                for k, v in raw_locations.items()
            }
            self.channels = {
                k: Channel.model_validate({**orjson.loads(v), "id": k})
                for k, v in raw_channels.items()
            }
            self._channels_args = {}
            self.kits = {
                k: Kit.model_validate({**orjson.loads(v), "sku": k}) for k, v in raw_kits.items()
            }
            self._by_priority = sorted(
                self.locations, key=lambda loc: (self.locations[loc].priority, loc)
            )
            self.geo = GeoIndex(
                Placed(loc.geo.lat, loc.geo.lon, loc.id)
                for loc in self.locations.values()
                if loc.geo is not None
            )
            self._version = version

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_loop(), name="config-refresh")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # the store may be down; keep the last good copy
                log.warning("config refresh failed: %s", exc)

    # -- lookups -------------------------------------------------------------------------

    async def location(self, location_id: str) -> Location:
        if location_id not in self.locations:
            await self.refresh()
        try:
            return self.locations[location_id]
        except KeyError:
            raise LocationNotFound(f"location {location_id!r} is not registered") from None

    async def channel(self, channel_id: str) -> Channel:
        if channel_id not in self.channels:
            await self.refresh()
        try:
            return self.channels[channel_id]
        except KeyError:
            raise ChannelNotFound(f"channel {channel_id!r} is not registered") from None

    def sourcing_order(self, channel: Channel | None, ship_to: Geo | None = None) -> list[str]:
        """Eligible locations, lowest priority first (ties by id); with `ship_to`, nearest
        first (to the metre), priority breaking ties, locations without coordinates last
        (docs/architecture.md, "Sourcing rule")."""
        if channel is None:
            order = list(self._by_priority)
        else:
            eligible = set(channel.locations)
            order = [loc for loc in self._by_priority if loc in eligible]
        if ship_to is not None:
            far = float("inf")
            distance = self.geo.distances(ship_to.lat, ship_to.lon)
            # sorted() is stable: equal distances keep the priority order.
            order.sort(key=lambda loc: round(distance.get(loc, far), 3))
        return order

    def channels_arg(
        self, locations: list[str] | None, skus: Collection[str] | None = None
    ) -> bytes:
        """ARGV for scripts: {channel: [low_stock_threshold, [locations], rule?]}
        (channel_rules.script_entry) for every channel that sees one of `locations` (all
        channels when None); `skus`: the skus the script may touch (None: any)."""
        wanted = None if locations is None else frozenset(locations)
        # The same channels give the same bytes until a refresh replaces them: kept per set
        # of locations (24k instructions a hold made, ~2k found; docs/benchmarks.md, "Session
        # 7"), unless a channel excludes skus (then `skus` matters too).
        known = self._channels_args.get(wanted)
        if known is not None:
            return known
        arg = orjson.dumps(
            {
                ch.id: script_entry(ch, skus)
                for ch in self.channels.values()
                if wanted is None or not wanted.isdisjoint(ch.locations)
            }
        )
        if not any(ch.exclude_skus for ch in self.channels.values()):
            if len(self._channels_args) >= _CHANNELS_ARGS_KEPT:
                self._channels_args.clear()  # pinned locations vary; a few sets repeat
            self._channels_args[wanted] = arg
        return arg

    # -- changes -------------------------------------------------------------------------

    async def put_location(
        self, location_id: str, body: LocationIn, claim: Claim | None = None
    ) -> Location:
        # The geo index changes in the same script as the record (a location that loses its
        # coordinates leaves the index).
        geo = "-" if body.geo is None else f"{body.geo.lon!r} {body.geo.lat!r}"
        doc = orjson.dumps(body.model_dump())
        await self._put(keys.LOCATIONS, location_id, doc, claim, geo=geo)
        await self.refresh(force=True)
        return self.locations[location_id]

    async def put_channel(
        self, channel_id: str, body: ChannelIn, claim: Claim | None = None
    ) -> Channel:
        if claim is not None:
            claim.lives_in(keys.CONFIG_TAG)  # a 422 below is stored there
        await self.refresh()
        unknown = [loc for loc in body.locations if loc not in self.locations]
        if unknown:
            raise InvalidRequest(
                "a channel may only see registered locations",
                errors=[
                    {"loc": ["body", "locations"], "msg": f"unknown location {u!r}"}
                    for u in unknown
                ],
            )
        doc = body.model_dump()
        doc["locations"] = list(dict.fromkeys(body.locations))  # drop repeats, keep order
        doc["exclude_skus"] = list(dict.fromkeys(body.exclude_skus))
        await self._put(keys.CHANNELS, channel_id, orjson.dumps(doc), claim)
        await self.refresh(force=True)
        return self.channels[channel_id]

    async def put_kit(self, sku: str, doc: bytes, claim: Claim | None) -> None:
        """Store a kit definition (app/domain/kits.py validates it); `doc` b"" deletes it."""
        await self._put(keys.KITS, sku, doc, claim)
        await self.refresh(force=True)

    async def _put(
        self, hash_key: str, item_id: str, doc: bytes, claim: Claim | None, geo: str = ""
    ) -> None:
        """config_put.lua, which takes a keyed request's claim in `{cfg}` first."""
        idem = idem_for(claim, keys.CONFIG_TAG)
        # offset 0: the store's clock runs the lease
        call = calls.config_put(hash_key, item_id, doc, 0, idem, geo=geo)
        checked(claim, await self._scripts.run(call))
