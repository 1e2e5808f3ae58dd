"""The outgoing event JSON as pydantic models, for the OpenAPI document (and generated SDKs).

The events are built as plain dicts by app/events/model.py (`from_entry`, `reset_event`) on
the hot path; these models describe exactly those dicts and are never used to build them.
tests/events/test_event_schema.py checks real events against them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.domain.models import BrokenPromise, StockStatus


class EventPosition(BaseModel):
    """The position at the event's location right after the change."""

    on_hand: int
    held: int
    committed: int
    safety_stock: int
    available: int


class ChannelAvailability(BaseModel):
    available: int
    status: StockStatus | None


class AvailabilityChange(BaseModel):
    """A channel whose availability of the sku the change moved."""

    channel: str
    before: ChannelAvailability
    after: ChannelAvailability


class EventCause(BaseModel):
    type: str = Field(description="The change: `sale`, `reserved`, `expired`, `shortfall`, ...")
    hold: str | None = Field(default=None, description="The hold, for hold events")
    source_event: str | None = Field(
        default=None, description="The incoming stock event's id, for stock events"
    )


class SupplyState(BaseModel):
    """The supply line a `supply.*` or `promise_broken` event is about, after the change."""

    location: str
    supply_id: str
    type: str
    quantity: int
    eta: str | None = None
    reference: str | None = None
    promised: int | None = Field(default=None, description="absent on `supply.received`")
    received: int | None = Field(default=None, description="`supply.received` only")


class StockChangeEvent(BaseModel):
    """A change of one position: `stock.*` (sale, receipt, set, imported, ...), `hold.*`
    (reserved, committed, fulfilled, released, expired, aborted), `shortfall`, `supply.*`
    (created, updated, cancelled, received) or `promise_broken`."""

    id: str = Field(description="The event id: the cursor to resume after")
    type: str = Field(examples=["hold.reserved", "stock.sale", "shortfall"])
    sku: str
    location: str
    at: str = Field(description="When it happened, RFC 3339 UTC with milliseconds")
    cause: EventCause
    position: EventPosition
    availability: list[AvailabilityChange]
    holds: list[str] | None = Field(
        default=None, description="`shortfall` only: the holds the missing units were promised to"
    )
    shortfall: int | None = Field(
        default=None, description="`shortfall` only: units promised beyond on_hand"
    )
    supply: SupplyState | None = Field(
        default=None,
        description="`supply.*` and `promise_broken`: the supply line after the change "
        "{location, supply_id, type, quantity, eta, reference, promised}",
    )
    broken: list[BrokenPromise] | None = Field(
        default=None,
        description="`promise_broken` only: each hold whose promised units lost their backing "
        "and how many [{hold, units}] (`holds` names them too)",
    )


class ResetEvent(BaseModel):
    """The resume point is older than the retention: refetch availability, then continue
    after this event's id."""

    id: str
    type: Literal["reset"]
    at: str
    reason: str
    detail: str


Event = StockChangeEvent | ResetEvent


class EventPage(BaseModel):
    """A page of GET /v1/events/log: pass `next` as `after` for the following page."""

    events: list[Event]
    next: str
