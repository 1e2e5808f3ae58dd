"""Dependencies of the routes: the services built once per process by create_app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from redis.asyncio import Redis

from app.api.idempotency import Idempotency
from app.domain.config import ConfigService
from app.domain.hold_list import HoldLister
from app.domain.holds import HoldService
from app.domain.kit_service import KitService
from app.domain.models import ID_PATTERN
from app.domain.nearby import NearbyService
from app.domain.reaper import Reaper
from app.domain.stock import StockService
from app.domain.stock_events import StockEventService
from app.domain.supply import SupplyService
from app.events.hub import EventHub
from app.settings import Settings
from app.store.durable import Writer
from app.store.mux import Multiplexer
from app.store.scripts import Scripts


@dataclass
class Services:
    settings: Settings
    redis: Redis
    mux: Multiplexer | None  # the hot path's pipelined connection; None in cluster mode
    write_mux: Multiplexer | None  # the scripts that write, on a connection of their own
    writer: Writer | None  # writes that wait for replicas (OMNISTOCK_WAIT_REPLICAS); or None
    scripts: Scripts
    config: ConfigService
    stock: StockService
    holds: HoldService
    kits: KitService
    nearby: NearbyService
    hold_list: HoldLister
    stock_events: StockEventService
    supply: SupplyService
    reaper: Reaper
    idempotency: Idempotency
    events: EventHub


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a thread hop on every
    # request (docs/benchmarks.md, "Tuning").
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _id_path(description: str) -> object:
    return Path(pattern=ID_PATTERN, min_length=1, max_length=128, description=description)


SkuPath = Annotated[str, _id_path("Stock keeping unit")]
LocationPath = Annotated[str, _id_path("Location id")]
ChannelPath = Annotated[str, _id_path("Channel id")]
HoldIdPath = Annotated[str, _id_path("Hold id")]
