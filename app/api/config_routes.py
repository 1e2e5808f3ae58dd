"""Locations and channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from app.api import auth
from app.api.deps import ChannelPath, LocationPath, Services, ServicesDep
from app.domain.idempotency import Claim
from app.domain.models import Channel, ChannelIn, Location, LocationIn

router = APIRouter(prefix="/v1", tags=["configuration"])


async def _saved(
    request: Request,
    services: Services,
    save: Callable[[Claim | None], Awaitable[BaseModel]],
) -> Response:
    """200 with what `save(claim)` stored, under the request's Idempotency-Key."""

    async def op(claim: Claim | None) -> tuple[int, object]:
        return 200, (await save(claim)).model_dump()

    return await services.idempotency.run(request, op)


@router.put("/locations/{location}", response_model=Location, dependencies=[auth.ADMIN])
async def put_location(
    location: LocationPath, body: LocationIn, request: Request, services: ServicesDep
) -> Response:
    """Register or update a location (store, warehouse/DC, 3PL, drop-ship source)."""

    async def op(claim: Claim | None) -> tuple[int, object]:
        saved = await services.config.put_location(location, body, claim)
        return 200, saved.public()

    return await services.idempotency.run(request, op)


@router.get(
    "/locations",
    response_model=dict[str, list[Location]],
    response_model_exclude_none=True,  # `geo` only where a location has coordinates
    dependencies=[auth.READ],
)
async def list_locations(services: ServicesDep) -> dict[str, object]:
    """Every registered location, lowest sourcing priority first."""
    await services.config.refresh()
    order = services.config.sourcing_order(None)
    return {"locations": [services.config.locations[loc].public() for loc in order]}


@router.put("/channels/{channel}", response_model=Channel, dependencies=[auth.ADMIN])
async def put_channel(
    channel: ChannelPath, body: ChannelIn, request: Request, services: ServicesDep
) -> Response:
    """Register or update a channel: the locations it sells from and its low-stock threshold."""
    return await _saved(request, services, lambda c: services.config.put_channel(channel, body, c))


@router.get("/channels", response_model=dict[str, list[Channel]], dependencies=[auth.READ])
async def list_channels(services: ServicesDep) -> dict[str, object]:
    await services.config.refresh()
    return {"channels": [c.model_dump() for _, c in sorted(services.config.channels.items())]}
