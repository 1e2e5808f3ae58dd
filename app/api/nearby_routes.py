"""Find in store: nearby availability of a sku or a cart, and kit definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api import auth
from app.api.deps import ServicesDep, SkuPath
from app.api.responses import JSONResponse
from app.domain.models import (
    ID_PATTERN,
    Kit,
    KitIn,
    Kits,
    Latitude,
    Longitude,
    Nearby,
    NearbyCart,
    NearbyLimit,
    NearbyQuery,
    Quantity,
    RadiusKm,
)

router = APIRouter(prefix="/v1", tags=["find in store"])


@router.get("/availability/{sku}/nearby", response_model=Nearby, dependencies=[auth.READ])
async def get_nearby(
    sku: SkuPath,
    services: ServicesDep,
    lat: Annotated[Latitude, Query(description="latitude, degrees")],
    lon: Annotated[Longitude, Query(description="longitude, degrees")],
    radius_km: Annotated[RadiusKm, Query(description="search radius, km (0 < r <= 20000)")],
    quantity: Annotated[Quantity, Query()] = 1,
    channel: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=128)] = None,
    limit: Annotated[NearbyLimit | None, Query(description="at most this many (20)")] = None,
) -> Response:
    """Locations within `radius_km` of (lat, lon) — of the channel, if given — with at least
    `quantity` available (a kit: whole kits), nearest first, with their distance."""
    ch = await services.config.channel(channel) if channel else None
    result = await services.nearby.sku(sku, lat, lon, radius_km, quantity, ch, limit)
    return JSONResponse(result)


@router.post("/availability/nearby", response_model=NearbyCart, dependencies=[auth.READ])
async def post_nearby(body: NearbyQuery, services: ServicesDep) -> Response:
    """Locations within the radius that can serve every line of a cart, nearest first."""
    ch = await services.config.channel(body.channel) if body.channel else None
    return JSONResponse(await services.nearby.cart(body, ch))


@router.put("/kits/{sku}", response_model=Kit, dependencies=[auth.ADMIN])
async def put_kit(sku: SkuPath, body: KitIn, request: Request, services: ServicesDep) -> Response:
    """Make `sku` a kit of `components` (each a sku or another kit, with its units per kit)."""
    return await services.idempotency.answer(
        request, lambda claim: services.kits.put(sku, body, claim)
    )


@router.get("/kits", response_model=Kits, dependencies=[auth.READ])
async def list_kits(services: ServicesDep) -> Response:
    return JSONResponse({"kits": await services.kits.list()})


@router.get("/kits/{sku}", response_model=Kit, dependencies=[auth.READ])
async def get_kit(sku: SkuPath, services: ServicesDep) -> Response:
    return JSONResponse(await services.kits.get(sku))


@router.delete("/kits/{sku}", response_model=Kit, dependencies=[auth.ADMIN])
async def delete_kit(sku: SkuPath, request: Request, services: ServicesDep) -> Response:
    """Delete a kit definition (its components' stock is untouched); answers what it was."""
    return await services.idempotency.answer(
        request, lambda claim: services.kits.delete(sku, claim)
    )
