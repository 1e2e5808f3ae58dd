"""Holds (reservations)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api import auth
from app.api.deps import HoldIdPath, ServicesDep
from app.api.fast_path import FastPathRoute, fast_path
from app.api.idempotency import Operation
from app.api.metrics import HOLD_OUTCOMES, incrementer
from app.api.responses import JSONResponse
from app.domain.errors import DomainError, InsufficientStock, InvalidTransition
from app.domain.hold_list import DEFAULT_LIMIT, MAX_LIMIT, HoldQuery
from app.domain.idempotency import Claim
from app.domain.models import (
    ID_PATTERN,
    ExtendIn,
    Hold,
    HoldIn,
    HoldList,
    HoldPatchIn,
    HoldStatus,
    LineOp,
    LinesIn,
)

router = APIRouter(prefix="/v1/holds", tags=["holds"], route_class=FastPathRoute)

_HOLD_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "`insufficient_stock`, `invalid_transition`, `line_quantity_exceeded` or "
        "`idempotency_key_in_use`"
    },
    404: {
        "description": "`hold_not_found` (also for another client's hold), `channel_not_found` "
        "or `location_not_found`"
    },
    422: {"description": "`invalid_request`, `unknown_hold_line` or `idempotency_key_reused`"},
}

# Every route that changes a hold answers with it, and may meet any of these errors.
_CHANGE: dict[str, Any] = {
    "response_model": Hold,
    "responses": _HOLD_ERRORS,
    "dependencies": [auth.RESERVE],
}
Change = Callable[[Claim | None], Awaitable[object]]


@cache
def _outcome(label: str) -> Callable[[], None]:
    """The increment of one outcome's counter (prometheus_client's `labels` look-up, once per
    label)."""
    return incrementer(HOLD_OUTCOMES.labels(label))


def _counted(
    change: Change, outcome: str, refusal: type[DomainError], status: int = 200
) -> Operation:
    """`change(claim)` answering `status`, its outcome counted: `outcome` when it answers,
    the refusal's code when it raises `refusal`."""

    async def op(claim: Claim | None) -> tuple[int, object]:
        try:
            hold = await change(claim)
        except refusal:
            _outcome(refusal.code)()
            raise
        _outcome(outcome)()
        return status, hold

    return op


@router.get(
    "",
    response_model=HoldList,
    responses={422: {"description": "`invalid_request` (a bad filter, limit or cursor)"}},
    dependencies=[auth.HOLD_READ],
)
async def list_holds(
    request: Request,
    services: ServicesDep,
    reference: Annotated[str | None, Query(max_length=256)] = None,
    status: Annotated[HoldStatus | None, Query()] = None,
    sku: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Holds per page, at most {MAX_LIMIT}")
    ] = DEFAULT_LIMIT,
    after: Annotated[
        str | None, Query(max_length=1024, description="The `next` of the previous page")
    ] = None,
) -> Response:
    """Your holds (admin: every hold), filtered by reference, status (by the store's clock: an
    expired hold is `expired` before the reaper has run) and sku, in pages of `limit` in a
    stable order (oldest first; for admin by owner, then oldest first). Follow `next` until it
    is null; a page may hold fewer than `limit` holds when filters skip many."""
    query = HoldQuery(
        viewer=auth.hold_viewer(request),
        reference=reference,
        status=status,
        sku=sku,
        limit=limit,
        after=after,
    )
    return JSONResponse(await services.hold_list.page(query))


@router.post("", status_code=201, **_CHANGE)
@fast_path
async def create_hold(body: HoldIn, request: Request, services: ServicesDep) -> Response:
    """Reserve every line, or none: 201 with the hold, or 409 `insufficient_stock` with the
    short lines. Lines without a location are sourced from the channel's eligible locations."""
    create = _counted(
        lambda claim: services.holds.create(body, claim, auth.hold_owner(request)),
        "created",
        InsufficientStock,
        201,
    )
    return await services.idempotency.run(request, create)


@router.get(
    "/{hold_id}",
    response_model=Hold,
    responses={404: _HOLD_ERRORS[404]},
    dependencies=[auth.HOLD_READ],
)
async def get_hold(hold_id: HoldIdPath, request: Request, services: ServicesDep) -> Response:
    """The hold with its status, expiry and sourced lines. Another client's hold is 404
    `hold_not_found`, as one that does not exist; `admin` sees every hold."""
    return JSONResponse(await services.holds.get(hold_id, auth.hold_viewer(request)))


@router.patch("/{hold_id}", **_CHANGE)
async def update_hold(
    hold_id: HoldIdPath, body: HoldPatchIn, request: Request, services: ServicesDep
) -> Response:
    """Update the hold's metadata: each key given is set, a key given as "" is removed, the
    others stay (at most 50 keys after the update). Any status."""
    return await _transition(
        request,
        services,
        "updated",
        lambda v, d: services.holds.update_metadata(hold_id, v, body.metadata, d),
    )


async def _transition(
    request: Request,
    services: ServicesDep,
    outcome: str,
    action: Callable[[str | None, Claim | None], Awaitable[dict[str, Any]]],
) -> Response:
    """Run `action(viewer, claim)`: the caller acts only on its own holds (admin: any)."""
    viewer = auth.hold_viewer(request)
    change = _counted(lambda claim: action(viewer, claim), outcome, InvalidTransition)
    return await services.idempotency.run(request, change)


async def _settle(
    hold_id: str, request: Request, services: ServicesDep, body: LinesIn | None, op: LineOp
) -> Response:
    """Fulfil or release the whole hold, or with `body` only those units of its lines."""
    holds = services.holds
    past = "fulfilled" if op == "fulfil" else "released"
    if body is not None:
        lines = body.lines
        return await _transition(
            request,
            services,
            f"{past}_lines",
            lambda v, d: holds.change_lines(hold_id, v, op, lines, d),
        )
    whole = holds.fulfil if op == "fulfil" else holds.release
    return await _transition(request, services, past, lambda v, d: whole(hold_id, v, d))


@router.post("/{hold_id}/commit", **_CHANGE)
async def commit_hold(hold_id: HoldIdPath, request: Request, services: ServicesDep) -> Response:
    """Checkout completed: the hold no longer expires."""
    return await _transition(
        request, services, "committed", lambda v, d: services.holds.commit(hold_id, v, d)
    )


@router.post("/{hold_id}/fulfil", **_CHANGE)
async def fulfil_hold(
    hold_id: HoldIdPath, request: Request, services: ServicesDep, body: LinesIn | None = None
) -> Response:
    """Shipped or picked up: on_hand goes down by the hold's units and the hold is done. With
    `lines`, only those units (all or none): the hold stays committed until no unit is open."""
    return await _settle(hold_id, request, services, body, "fulfil")


@router.post("/{hold_id}/release", **_CHANGE)
async def release_hold(
    hold_id: HoldIdPath, request: Request, services: ServicesDep, body: LinesIn | None = None
) -> Response:
    """Cancelled: the units return to available. With `lines`, only those units (all or
    none): the hold keeps its status until no unit is open."""
    return await _settle(hold_id, request, services, body, "release")


@router.post("/{hold_id}/extend", **_CHANGE)
async def extend_hold(
    hold_id: HoldIdPath, body: ExtendIn, request: Request, services: ServicesDep
) -> Response:
    """An active hold now expires `ttl_seconds` from now."""
    return await _transition(
        request,
        services,
        "extended",
        lambda v, d: services.holds.extend(hold_id, v, body.ttl_seconds, d),
    )
