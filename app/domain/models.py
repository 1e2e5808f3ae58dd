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


Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# Half the Earth's circumference: a larger radius is no "nearby" (422).
MAX_RADIUS_KM = 20_000.0
RadiusKm = Annotated[float, Field(gt=0, le=MAX_RADIUS_KM, allow_inf_nan=False)]


class Geo(Request):
    """WGS 84 coordinates in degrees (numbers: "48.1" as a string is a 422)."""

    lat: Latitude
    lon: Longitude


class LocationIn(Request):
    type: LocationType = "store"
    name: Annotated[str, Field(max_length=200)] = ""
    ship: bool = False
    pickup: bool = False
    priority: Annotated[int, Field(ge=0, le=1_000_000)] = 100
    geo: Geo | None = None


class Location(LocationIn):
    model_config = ConfigDict(strict=False, extra="ignore")
    id: Identifier

    def public(self) -> dict[str, Any]:
        """As answered: `geo` only for a location that has coordinates."""
        return self.model_dump(exclude={"geo"} if self.geo is None else None)


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
    incoming: int = 0  # units on open supply lines in scope, not promised yet
    next_available_at: str | None = None  # nothing available now: the earliest promisable eta


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
    supply_id: Identifier | None = Field(
        default=None,
        description="receipt only: the supply line these units arrive on (its promised "
        "units become on-hand units of the same holds)",
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
    # Future supply (docs/architecture.md, "Future supply and promising"): may wait for
    # supply lines whose eta is not after needed_by (RFC 3339) once on-hand units run out.
    allow_backorder: bool = False
    needed_by: Annotated[str, Field(max_length=64)] | None = None
    # Sourcing (docs/architecture.md, "Sourcing rule"): nearest eligible location first, and
    # a cap on how many locations a split hold may use.
    ship_to: Geo | None = None
    max_locations: Annotated[int, Field(ge=1, le=100)] | None = None
    metadata: Metadata | None = None


class ExtendIn(Request):
    ttl_seconds: TtlSeconds


class HoldPatchIn(Request):
    """PATCH /v1/holds/{id}: each key given is set, a key given as "" is removed."""

    metadata: Metadata


LineOp = Literal["release", "fulfil"]  # hold_lines.lua's ARGV[8]


class LineChangeIn(Request):
    """Units of one line of the hold (its sku and the location it was sourced at; a promised
    line of a backorder hold also by its `supply_id`: release only)."""

    sku: Identifier
    location: Identifier
    quantity: Quantity
    supply_id: Identifier | None = None


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
    supply_id: str | None = None  # a promised line: the supply line it waits for
    available_from: str | None = None  # ... and that line's eta


class Hold(BaseModel):
    id: str
    status: HoldStatus
    channel: str | None
    reference: str | None
    created_at: str
    expires_at: str
    lines: list[HoldLine]


class NearbyLocation(BaseModel):
    location: str
    name: str
    distance_km: float
    available: int


class Nearby(BaseModel):
    sku: str
    channel: str | None
    locations: list[NearbyLocation]


NearbyLimit = Annotated[int, Field(ge=1, le=1000)]


class NearbyLineIn(Request):
    sku: Identifier
    quantity: Quantity = 1


class NearbyQuery(Request):
    """Locations within `radius_km` of (lat, lon) that can serve every line, nearest first."""

    lines: Annotated[list[NearbyLineIn], Field(min_length=1, max_length=100)]
    lat: Latitude
    lon: Longitude
    radius_km: RadiusKm
    limit: NearbyLimit | None = None
    channel: Identifier | None = None


class NearbyLineAvailability(BaseModel):
    sku: str
    available: int


class NearbyCartLocation(BaseModel):
    location: str
    name: str
    distance_km: float
    lines: list[NearbyLineAvailability]


class NearbyCart(BaseModel):
    channel: str | None
    locations: list[NearbyCartLocation]


class KitComponent(Request):
    sku: Identifier
    quantity: Quantity


class KitIn(Request):
    components: Annotated[list[KitComponent], Field(min_length=1, max_length=50)]


class Kit(BaseModel):
    sku: str
    components: list[KitComponent]


class Kits(BaseModel):
    kits: list[Kit]
    metadata: dict[str, str] = Field(default_factory=dict)


class HoldList(BaseModel):
    """One page of GET /v1/holds, in a stable order; `next`: pass it as `after` for the next
    page (null: there is none)."""

    data: list[Hold]
    next: str | None


# -- future supply -------------------------------------------------------------------------

SupplyType = Literal["purchase_order", "in_transit", "production"]


class SupplyPut(Request):
    type: SupplyType
    quantity: Annotated[int, Field(ge=0, le=10**9)]  # 0 cancels the line
    eta: Annotated[str, Field(max_length=64)] | None = None  # RFC 3339; needed unless 0
    reference: Annotated[str, Field(max_length=256)] | None = None


class SupplyLineIn(SupplyPut):
    """One line of a batch (POST /v1/supply/batch) or of an `omnistock import --supply` file."""

    sku: Identifier
    location: Identifier
    supply_id: Identifier


# Parsed as any JSON value, each line checked on its own, documented as a SupplyLineIn.
_SupplyItem = Annotated[
    Any, WithJsonSchema({"$ref": "#/components/schemas/SupplyLineIn"}, mode="validation")
]


class SupplyBatchIn(Request):
    lines: Annotated[list[_SupplyItem], Field(min_length=1, max_length=1000)]


class SupplyLine(BaseModel):
    sku: str
    location: str
    supply_id: str
    type: SupplyType
    quantity: int
    eta: str
    reference: str | None
    promised: int
    incoming: int  # not promised yet


class BrokenPromise(BaseModel):
    """A hold whose promised units lost their backing, and how many."""

    hold: str
    units: int


class SupplyChange(SupplyLine):
    action: Literal["created", "updated", "cancelled", "unchanged"]
    broken_promises: list[BrokenPromise]


class SupplyList(BaseModel):
    sku: str
    lines: list[SupplyLine]


class TimelineWindow(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    available: int


class Timeline(BaseModel):
    sku: str
    channel: str | None
    location: str | None
    windows: list[TimelineWindow]


class SupplyBatchResult(BaseModel):
    index: int
    sku: str | None
    location: str | None
    supply_id: str | None
    status: Literal["created", "updated", "cancelled", "unchanged", "rejected"]
    reason: str | None = None
    broken_promises: list[BrokenPromise] = []


class SupplyBatchResults(BaseModel):
    results: list[SupplyBatchResult]
