"""Webhook subscriptions (admin): create, list, read, change, delete, the delivery log and
redelivery. Deliveries themselves: app/webhooks/deliverer.py.

Every write accepts an Idempotency-Key. A subscription write is a MULTI of a few commands in
the `{wh}` slot, not one script, so the key is claimed by itself in that slot first (as a
multi-partition hold is, app/domain/idempotency.take), and a keyed create names its
subscription after the key: a retry after a crash between the write and the stored response
writes the same subscription again, never a second one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app import keys
from app.api import auth
from app.api.deps import Services, ServicesDep
from app.domain.idempotency import Claim, take
from app.events.ids import parse_event_id
from app.webhooks.model import (
    AttemptPage,
    Subscription,
    SubscriptionIn,
    SubscriptionPatch,
)
from app.webhooks.registry import WebhookRegistry

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[auth.ADMIN])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "`webhook_not_found`"},
    422: {"description": "`invalid_request`"},
}


async def _registry(request: Request) -> WebhookRegistry:
    registry: WebhookRegistry = request.app.state.webhooks
    return registry


Registry = Annotated[WebhookRegistry, Depends(_registry)]


async def _check_filters(services: ServicesDep, body: SubscriptionPatch) -> None:
    """A filter naming an unknown location or channel is a 404, not a silent no-match."""
    for location in body.locations or ():
        await services.config.location(location)
    for channel in body.channels or ():
        await services.config.channel(channel)


async def _keyed(
    request: Request,
    services: Services,
    change: Callable[[Claim | None], Awaitable[tuple[int, object]]],
) -> Response:
    """Run `change` under the request's Idempotency-Key, claimed first in the `{wh}` slot."""

    async def op(claim: Claim | None) -> tuple[int, object]:
        await take(
            services.scripts, claim, keys.WEBHOOK_TAG, services.idempotency.clock.offset_ms()
        )
        return await change(claim)

    return await services.idempotency.run(request, op)


SubId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$", description="Subscription id")]


class CreatedSubscription(Subscription):
    secret: str


@router.post("", status_code=201, response_model=CreatedSubscription)
async def create_webhook(
    body: SubscriptionIn, request: Request, registry: Registry, services: ServicesDep
) -> Response:
    """Subscribe a URL to the events after now. The answer holds the signing `secret` (given
    or generated); it is not shown again."""

    async def change(claim: Claim | None) -> tuple[int, object]:
        await _check_filters(services, body)
        sub_id = "wh_" + claim.digest[:16] if claim is not None else None
        sub, secret = await registry.create(body, sub_id)
        return 201, {**sub.model_dump(mode="json"), "secret": secret}

    return await _keyed(request, services, change)


@router.get("", response_model=dict[str, list[Subscription]])
async def list_webhooks(registry: Registry) -> dict[str, Any]:
    return {"webhooks": [r.sub.model_dump(mode="json") for r in await registry.all()]}


@router.get("/{sub_id}", response_model=Subscription, responses=_NOT_FOUND)
async def get_webhook(sub_id: SubId, registry: Registry) -> Subscription:
    return (await registry.get(sub_id)).sub


@router.patch("/{sub_id}", response_model=Subscription, responses=_NOT_FOUND)
async def patch_webhook(
    sub_id: SubId,
    body: SubscriptionPatch,
    request: Request,
    registry: Registry,
    services: ServicesDep,
) -> Response:
    """Change some fields; `{"enabled": true}` re-enables a disabled subscription, which
    resumes at the event it failed to deliver."""

    async def change(claim: Claim | None) -> tuple[int, object]:
        await _check_filters(services, body)
        return 200, (await registry.patch(sub_id, body)).model_dump(mode="json")

    return await _keyed(request, services, change)


@router.delete("/{sub_id}", status_code=204, response_class=Response, responses=_NOT_FOUND)
async def delete_webhook(
    sub_id: SubId, request: Request, registry: Registry, services: ServicesDep
) -> Response:
    async def change(claim: Claim | None) -> tuple[int, object]:
        await registry.delete(sub_id)
        return 204, None

    return await _keyed(request, services, change)


@router.get("/{sub_id}/attempts", response_model=AttemptPage, responses=_NOT_FOUND)
async def webhook_attempts(
    sub_id: SubId,
    registry: Registry,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The recent delivery attempts, newest first: event, attempt, status, latency, error."""
    return {"attempts": await registry.attempts(sub_id, limit)}


@router.post("/{sub_id}/redeliver", response_model=Subscription, responses=_NOT_FOUND)
async def redeliver_webhook(
    sub_id: SubId,
    request: Request,
    registry: Registry,
    services: ServicesDep,
    start: Annotated[str, Query(alias="from", max_length=64, description="An event id")],
) -> Response:
    """Deliver again every matching event from the event `from` on, in order."""
    event_id = parse_event_id(start, "from")

    async def change(claim: Claim | None) -> tuple[int, object]:
        return 200, (await registry.redeliver(sub_id, event_id)).model_dump(mode="json")

    return await _keyed(request, services, change)
