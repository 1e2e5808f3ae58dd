"""Future supply: supply lines, and availability by date (the timeline)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api import auth
from app.api.deps import ServicesDep, SkuPath
from app.api.responses import JSONResponse
from app.domain.idempotency import Claim
from app.domain.models import (
    ID_PATTERN,
    SupplyBatchIn,
    SupplyBatchResults,
    SupplyChange,
    SupplyList,
    SupplyPut,
    Timeline,
)

router = APIRouter(prefix="/v1", tags=["supply"])

OptionalId = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=128)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "`location_not_found`, or `supply_not_found` (cancelling)"},
    422: {"description": "`invalid_request` (eta in the past or beyond the horizon, ...)"},
}
_TIMELINE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "`channel_not_found` or `location_not_found`"}
}
# One supply line: PUT creates or updates it, DELETE cancels it; both answer the change.
_LINE = "/supply/{sku}/{location}/{supply_id}"
_LINE_CHANGE: dict[str, Any] = {
    "response_model": SupplyChange,
    "responses": _ERRORS,
    "dependencies": [auth.ADMIN],
}


@router.post("/supply/batch", response_model=SupplyBatchResults, dependencies=[auth.ADMIN])
async def post_supply_batch(
    body: SupplyBatchIn, request: Request, services: ServicesDep
) -> Response:
    """Up to 1000 supply lines (create, update, quantity 0 cancels), each checked and applied
    on its own: one result per line, in order, `rejected` with a reason for a bad one."""

    async def put_many(claim: Claim | None) -> dict[str, object]:
        return {"results": await services.supply.put_many(body.lines, claim)}

    return await services.idempotency.answer(request, put_many)


@router.put(_LINE, **_LINE_CHANGE)
async def put_supply(
    sku: SkuPath,
    location: SkuPath,
    supply_id: SkuPath,
    body: SupplyPut,
    request: Request,
    services: ServicesDep,
) -> Response:
    """Create or update a supply line (stock on its way to `location`); quantity 0 cancels
    it. Promises it can no longer keep are broken (`broken_promises`, and a `promise_broken`
    event)."""
    return await services.idempotency.answer(
        request, lambda claim: services.supply.put(sku, location, supply_id, body, claim)
    )


@router.delete(_LINE, **_LINE_CHANGE)
async def delete_supply(
    sku: SkuPath, location: SkuPath, supply_id: SkuPath, request: Request, services: ServicesDep
) -> Response:
    """Cancel a supply line: every promise made from it is broken."""
    return await services.idempotency.answer(
        request, lambda claim: services.supply.cancel(sku, location, supply_id, claim)
    )


@router.get("/supply/{sku}", response_model=SupplyList, dependencies=[auth.READ])
async def list_supply(sku: SkuPath, services: ServicesDep) -> Response:
    """The sku's open supply lines, earliest eta first, with what is promised from each."""
    return JSONResponse(await services.supply.list_lines(sku))


@router.get(
    "/availability/{sku}/timeline",
    response_model=Timeline,
    responses=_TIMELINE_ERRORS,
    dependencies=[auth.READ],
)
async def get_timeline(
    sku: SkuPath,
    services: ServicesDep,
    channel: OptionalId = None,
    location: OptionalId = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """What can still be promised for delivery from each date, as windows from now to
    `until` (default 90 days ahead, at most 365)."""
    ch = await services.config.channel(channel) if channel else None
    if location:
        await services.config.location(location)
    return JSONResponse(await services.supply.timeline(sku, ch, location, until))
