"""Positions and availability."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api import auth
from app.api.deps import ServicesDep, SkuPath
from app.api.fast_path import FastPathRoute, fast_path
from app.api.responses import JSONResponse
from app.domain.idempotency import Claim
from app.domain.models import (
    ID_PATTERN,
    Availability,
    AvailabilityQuery,
    AvailabilityResults,
    Position,
    StockEventResults,
    StockEventsIn,
    StockIn,
    StockOut,
)

router = APIRouter(prefix="/v1", tags=["stock"], route_class=FastPathRoute)

OptionalId = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=128)]


@router.put("/stock/{sku}/{location}", response_model=Position, dependencies=[auth.ADMIN])
async def put_stock(
    sku: SkuPath, location: SkuPath, body: StockIn, request: Request, services: ServicesDep
) -> Response:
    """Set the absolute on_hand (and optionally safety_stock) of a position, as ERP/WMS
    counted it. Held and committed units are untouched."""
    return await services.idempotency.answer(
        request,
        lambda claim: services.stock.set_position(
            sku, location, body.on_hand, body.safety_stock, claim
        ),
    )


@router.get("/stock/{sku}", response_model=StockOut, dependencies=[auth.READ])
async def get_stock(sku: SkuPath, services: ServicesDep) -> Response:
    """Every position of a sku with all counters."""
    return JSONResponse({"sku": sku, "positions": await services.stock.positions(sku)})


@router.get("/availability/{sku}", response_model=Availability, dependencies=[auth.READ])
@fast_path
async def get_availability(
    sku: SkuPath, services: ServicesDep, channel: OptionalId = None, location: OptionalId = None
) -> Response:
    """Available-to-promise of one sku for a channel (its eligible locations summed), a
    location, or every location the sku is stocked at."""
    ch = await services.config.channel(channel) if channel else None
    if location:
        await services.config.location(location)
    (result,) = await services.stock.availability([sku], ch, [location] if location else None)
    return JSONResponse(result)


@router.post("/availability/query", response_model=AvailabilityResults, dependencies=[auth.READ])
async def query_availability(body: AvailabilityQuery, services: ServicesDep) -> Response:
    """Availability of up to 1000 skus in one round trip to the store, in the order asked."""
    ch = await services.config.channel(body.channel) if body.channel else None
    if body.locations:
        for loc in body.locations:
            await services.config.location(loc)
    results = await services.stock.availability(body.skus, ch, body.locations)
    return JSONResponse({"results": results})


@router.post("/stock/events", response_model=StockEventResults, dependencies=[auth.STOCK_EVENTS])
async def post_stock_events(
    body: StockEventsIn, request: Request, services: ServicesDep
) -> Response:
    """Apply up to 1000 stock events (sale, return, receipt, adjustment, count, damage,
    transfer_out, transfer_in) in order; one result per event: `applied`, `duplicate` (this
    event was applied before) or `rejected` with a reason. An event is identified by its
    location and id: the same id from another location is another event; the same (location,
    id) with another type, sku or quantity is `rejected` with reason `id_reused`. A sale is
    never rejected for lack of stock: on_hand may go negative, and a `shortfall` event names
    the holds it affects."""

    async def op(claim: Claim | None) -> tuple[int, object]:
        # A POS key's events are each checked against its one location (`rejected` else).
        only = auth.caller_of(request).only_location
        return 200, {"results": await services.stock_events.apply(body.events, only, claim)}

    return await services.idempotency.run(request, op)
