"""Webhook subscriptions (admin): create, list, read, change, delete, the delivery log and
redelivery. Deliveries themselves: app/webhooks/deliverer.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app.api import auth
from app.api.deps import ServicesDep
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


SubId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$", description="Subscription id")]


class CreatedSubscription(Subscription):
    secret: str


@router.post("", status_code=201, response_model=CreatedSubscription)
async def create_webhook(
    body: SubscriptionIn, registry: Registry, services: ServicesDep
) -> dict[str, Any]:
    """Subscribe a URL to the events after now. The answer holds the signing `secret` (given
    or generated); it is not shown again."""
    await _check_filters(services, body)
    sub, secret = await registry.create(body)
    return {**sub.model_dump(), "secret": secret}


@router.get("", response_model=dict[str, list[Subscription]])
async def list_webhooks(registry: Registry) -> dict[str, Any]:
    return {"webhooks": [r.sub.model_dump() for r in await registry.all()]}


@router.get("/{sub_id}", response_model=Subscription, responses=_NOT_FOUND)
async def get_webhook(sub_id: SubId, registry: Registry) -> Subscription:
    return (await registry.get(sub_id)).sub


@router.patch("/{sub_id}", response_model=Subscription, responses=_NOT_FOUND)
async def patch_webhook(sub_id: SubId, body: SubscriptionPatch, registry: Registry) -> Subscription:
    """Change some fields; `{"enabled": true}` re-enables a disabled subscription, which
    resumes at the event it failed to deliver."""
    return await registry.patch(sub_id, body)


@router.delete("/{sub_id}", status_code=204, response_class=Response, responses=_NOT_FOUND)
async def delete_webhook(sub_id: SubId, registry: Registry) -> Response:
    await registry.delete(sub_id)
    return Response(status_code=204)


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
    registry: Registry,
    start: Annotated[str, Query(alias="from", max_length=64, description="An event id")],
) -> Subscription:
    """Deliver again every matching event from the event `from` on, in order."""
    return await registry.redeliver(sub_id, parse_event_id(start, "from"))
