"""Request and response shapes of the contract (../shared/api-contract.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    WithJsonSchema,
)

# With Python's re, use .fullmatch(): its `$` also matches before a trailing "\n".
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=128)]

MAX_UNITS = 10**12  # keeps every counter exact in Lua's doubles and in JSON
Quantity = Annotated[int, Field(ge=1, le=10**9)]
TtlSeconds = Annotated[int, Field(ge=1, le=7 * 86400)]

LocationType = Literal["store", "warehouse", "dc", "3pl", "dropship"]
HoldStatus = Literal["active", "committed", "fulfilled", "released", "expired"]
StockStatus = Literal["in_stock", "low_stock", "out_of_stock"]


class Request(BaseModel):
    # Strict: "5" is not 5 and unknown fields are typos worth a 422, not silence.
    model_config = ConfigDict(strict=True, extra="forbid")


class LocationIn(Request):
    type: LocationType = "store"
    name: Annotated[str, Field(max_length=200)] = ""
    ship: bool = False
    pickup: bool = False
    priority: Annotated[int, Field(ge=0, le=1_000_000)] = 100


class Location(LocationIn):
    model_config = ConfigDict(strict=False, extra="ignore")
    id: Identifier


class BufferUnits(Request):
    """Keep this many units of each sku back from the channel's total."""

    units: Annotated[int, Field(ge=0, le=MAX_UNITS)]


class BufferPercent(Request):
    """Keep this percentage of each sku's total back from the channel (rounded up to a unit)."""

    percent: Annotated[int, Field(ge=0, le=100)]


MAX_EXCLUDED_SKUS = 1000  # the rule travels to every script that computes channel figures


class ChannelIn(Request):
    locations: Annotated[list[Identifier], Field(max_length=10_000)]
    low_stock_threshold: Annotated[int, Field(ge=0, le=MAX_UNITS)] = 5
    # Channel rules (docs/architecture.md "Channel rules"; app/domain/channel_rules.py).
    buffer: BufferUnits | BufferPercent | None = None
    exclude_skus: Annotated[list[Identifier], Field(max_length=MAX_EXCLUDED_SKUS)] = []


class Channel(ChannelIn):
    model_config = ConfigDict(strict=False, extra="ignore")
    id: Identifier
    _excluded: frozenset[str] = PrivateAttr(default=frozenset())
    _eligible: frozenset[str] = PrivateAttr(default=frozenset())

    def model_post_init(self, context: Any, /) -> None:
        self._excluded = frozenset(self.exclude_skus)
        self._eligible = frozenset(self.locations)

    def excludes(self, sku: str) -> bool:
        return sku in self._excluded

    def sees(self, sku: str, location: str) -> bool:
        """Is a change of (sku, location) the channel's business (event filters): one of its
        locations, and a sku it does not exclude."""
        return location in self._eligible and sku not in self._excluded


class StockIn(Request):
    on_hand: Annotated[int, Field(ge=-MAX_UNITS, le=MAX_UNITS)]
    safety_stock: Annotated[int, Field(ge=0, le=MAX_UNITS)] | None = None


class Position(BaseModel):
    location: str
    on_hand: int
    held: int
    committed: int
    safety_stock: int
    available: int


class StockOut(BaseModel):
    sku: str
    positions: list[Position]


class LocationAvailability(BaseModel):
    location: str
    available: int


class Availability(BaseModel):
    sku: str
    channel: str | None
    available: int
    status: StockStatus
    locations: list[LocationAvailability]


class AvailabilityQuery(Request):
    skus: Annotated[list[Identifier], Field(min_length=1, max_length=1000)]
    channel: Identifier | None = None
    locations: Annotated[list[Identifier], Field(min_length=1, max_length=1000)] | None = None


class AvailabilityResults(BaseModel):
    results: list[Availability]


StockEventType = Literal[
    "sale",
    "return",
    "receipt",
    "adjustment",
    "count",
    "damage",
    "transfer_out",
    "transfer_in",
]


class StockEventIn(BaseModel):
    """One incoming stock event, identified by (location, id). Documentation only: each event
    of a batch is checked on its own (app/domain/stock_events.py), so a bad one is `rejected`
    with a reason in its result instead of failing the batch with 422."""

    id: Identifier
    type: StockEventType
    sku: Identifier
    location: Identifier
    quantity: int = Field(
        description="Units: >= 1 for most types; adjustment: non-zero (may be negative); "
        "count: >= 0, the units counted"
    )
    occurred_at: str | None = Field(
        default=None, description="RFC 3339 date-time with a zone, e.g. 2025-11-24T10:14:58Z"
    )


# Parsed as any JSON value (see StockEventIn), documented as a StockEventIn.
_StockEventItem = Annotated[
    Any, WithJsonSchema({"$ref": "#/components/schemas/StockEventIn"}, mode="validation")
]


class StockEventsIn(Request):
    """Each event is checked on its own: a bad one is `rejected` with a reason, the rest apply."""

    events: Annotated[list[_StockEventItem], Field(min_length=1, max_length=1000)]


class StockEventResult(BaseModel):
    id: str | None
    status: Literal["applied", "duplicate", "rejected"]
    reason: str | None = None
    position: Position | None = None


class StockEventResults(BaseModel):
    results: list[StockEventResult]


# Stripe's metadata limits: at most 50 keys, a key at most 40 characters, a value at most 500,
# strings only. In an update a value "" removes its key.
METADATA_MAX_KEYS = 50
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(
        max_length=METADATA_MAX_KEYS,
        description="Your own key-value pairs (Stripe's limits: up to 50 keys, a key up to 40 "
        'characters, a value up to 500, strings only); in an update, a key set to "" is '
        "removed",
        examples=[{"order_id": "A-1001"}],
    ),
]


class HoldLineIn(Request):
    sku: Identifier
    quantity: Quantity
    location: Identifier | None = None


class HoldIn(Request):
    channel: Identifier | None = None
    ttl_seconds: TtlSeconds | None = None
    reference: Annotated[str, Field(max_length=256)] | None = None
    allow_split: bool = False
    lines: Annotated[list[HoldLineIn], Field(min_length=1, max_length=1000)]
    metadata: Metadata | None = None


class ExtendIn(Request):
    ttl_seconds: TtlSeconds


class HoldPatchIn(Request):
    """PATCH /v1/holds/{id}: each key given is set, a key given as "" is removed."""

    metadata: Metadata


LineOp = Literal["release", "fulfil"]  # hold_lines.lua's ARGV[8]


class LineChangeIn(Request):
    """Units of one line of the hold (its sku and the location it was sourced at)."""

    sku: Identifier
    location: Identifier
    quantity: Quantity


class LinesIn(Request):
    """Partial release or fulfil: these units of these lines (each line at most once); without
    a body, every open unit of the hold."""

    lines: Annotated[list[LineChangeIn], Field(min_length=1, max_length=1000)]


class HoldLine(BaseModel):
    sku: str
    location: str
    quantity: int = Field(description="Units reserved on this line at creation")
    released: int = Field(
        0, description="Units of it released (partly or with the hold); absent: 0"
    )
    fulfilled: int = Field(
        0, description="Units of it fulfilled (partly or with the hold); absent: 0"
    )


class Hold(BaseModel):
    id: str
    status: HoldStatus
    channel: str | None
    reference: str | None
    created_at: str
    expires_at: str
    lines: list[HoldLine]
    metadata: dict[str, str] = Field(default_factory=dict)


class HoldList(BaseModel):
    """One page of GET /v1/holds, in a stable order; `next`: pass it as `after` for the next
    page (null: there is none)."""

    data: list[Hold]
    next: str | None
