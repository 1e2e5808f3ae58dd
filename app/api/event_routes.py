"""Outgoing events: live as Server-Sent Events, and as JSON pages for pollers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse

from app.api import auth
from app.api.deps import ServicesDep
from app.api.responses import JSONResponse
from app.events.filters import EventFilter
from app.events.ids import parse_event_id
from app.events.log import read_page
from app.events.schema import EventPage
from app.events.sse import event_stream

router = APIRouter(prefix="/v1", tags=["events"])

_ID = r"^[A-Za-z0-9._:-]{1,128}$"
Sku = Annotated[str | None, Query(pattern=_ID, max_length=128, description="Only this sku")]
Location = Annotated[
    str | None, Query(pattern=_ID, max_length=128, description="Only this location")
]
Channel = Annotated[
    str | None,
    Query(pattern=_ID, max_length=128, description="Only the channel's eligible locations"),
]
Cursor = Annotated[str | None, Query(max_length=64, description="An event id to resume after")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "`channel_not_found` or `location_not_found`"},
    422: {"description": "`invalid_request`: a malformed cursor, limit or filter"},
}


async def _filter(
    services: ServicesDep, sku: str | None, location: str | None, channel: str | None
) -> EventFilter:
    if location is not None:
        await services.config.location(location)
    if channel is not None:
        await services.config.channel(channel)
    return EventFilter(services.config, sku=sku, location=location, channel=channel)


@router.get("/events/log", response_model=EventPage, responses=_ERRORS, dependencies=[auth.READ])
async def events_log(
    services: ServicesDep,
    after: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per page")] = 100,
    sku: Sku = None,
    location: Location = None,
    channel: Channel = None,
) -> Response:
    """Events after the cursor `after` (from the oldest retained without it), oldest first:
    `{"events": [...], "next": "<cursor>"}`. Pass `next` as `after` for the next page. A
    cursor older than the retention answers a single `reset` event: refetch availability and
    go on from its id."""
    flt = await _filter(services, sku, location, channel)
    cursor = parse_event_id(after) if after else None
    page = await read_page(
        services.events.source,
        cursor,
        limit,
        flt,
        services.settings.event_retention_seconds * 1000,
    )
    return JSONResponse({"events": [e.doc for e in page.events], "next": str(page.next)})


@router.get(
    "/events",
    responses={**_ERRORS, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
    dependencies=[auth.READ],
)
async def events_live(
    services: ServicesDep,
    sku: Sku = None,
    location: Location = None,
    channel: Channel = None,
    last_event_id: Cursor = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64, include_in_schema=False)
    ] = None,
) -> Response:
    """Server-Sent Events: `id:` (the event id), `event:` (its type), `data:` (the event
    JSON). Resume with the `Last-Event-ID` header (or `last_event_id`): the events after it
    come first, then the live ones, with no gap and no duplicate; a resume point older than
    the retention gets an `event: reset` first. A `: keep-alive` comment comes when idle."""
    flt = await _filter(services, sku, location, channel)
    # The header wins: a browser reconnecting keeps the first URL but sends its latest id.
    raw = last_event_id_header or last_event_id
    resume = parse_event_id(raw, "Last-Event-ID") if raw else None
    settings = services.settings
    stream = event_stream(
        services.events,
        services.events.source,
        flt,
        resume,
        settings.event_retention_seconds * 1000,
        settings.sse_keepalive_seconds,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
