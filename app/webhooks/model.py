"""Subscriptions and which deliveries an event of the log makes for one.

`availability.out_of_stock` / `availability.back_in_stock` are derived here, by the deliverer,
from each event's per-channel `availability` before/after: a channel whose status becomes
`out_of_stock` (from anything else) makes `availability.out_of_stock`, one that leaves it makes
`availability.back_in_stock`. Deriving them while delivering costs no script change and no
extra stream entries; their ids are `<event id>/<channel>`, so a receiver can deduplicate them
like any other delivery, and they come right after the event they were derived from.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.domain.models import Identifier, Request

OUT_OF_STOCK = "availability.out_of_stock"
BACK_IN_STOCK = "availability.back_in_stock"
_TYPE = r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)$"
EventType = Annotated[str, StringConstraints(pattern=_TYPE, max_length=64)]


def _parsable(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a usable URL: {exc}") from None
    if not parsed.host:
        raise ValueError("the URL has no host")
    return url


Url = Annotated[
    str,
    StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048),
    AfterValidator(_parsable),
]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=256)]
Filter = Annotated[list[Identifier], Field(min_length=1, max_length=1000)]


class SubscriptionPatch(Request):
    url: Url | None = None
    secret: Secret | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=100)] | None = None
    skus: Filter | None = None
    locations: Filter | None = None
    channels: Filter | None = None
    enabled: bool | None = None


class SubscriptionIn(SubscriptionPatch):
    url: Url  # required here, optional in a patch


class Subscription(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    url: str
    description: str = ""
    event_types: list[str] | None = None
    skus: list[str] | None = None
    locations: list[str] | None = None
    channels: list[str] | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    created_at: str
    cursor: str = Field(description="The last event id the receiver acknowledged")


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class Attempt(BaseModel):
    """One delivery attempt in a subscription's log."""

    event: str
    type: str
    attempt: int
    at: str
    status: int | None = None  # the receiver's HTTP status; None when it never answered
    latency_ms: float
    error: str | None = None


class AttemptPage(BaseModel):
    attempts: list[Attempt]


@dataclass(frozen=True)
class Delivery:
    id: str  # the event id, or `<event id>/<channel>` for a derived availability event
    type: str
    payload: dict[str, Any]


class Matcher:
    """A subscription's filters. `sees(channel, sku, location)`: is that change the channel's
    business now (the config cache: its locations, less the skus it excludes), so a channel
    filter follows channel edits."""

    def __init__(
        self, sub: Subscription, sees: Callable[[str, str, str], bool] | None = None
    ) -> None:
        self.sub = sub
        self._sees = sees or (lambda channel, sku, location: False)

    def type_wanted(self, event_type: str) -> bool:
        types = self.sub.event_types
        if types is None or event_type == "reset":  # a reset is always worth knowing
            return True
        return any(
            t == "*" or t == event_type or (t.endswith(".*") and event_type.startswith(t[:-1]))
            for t in types
        )

    def deliveries(self, doc: dict[str, Any]) -> list[Delivery]:
        """What the event `doc` (as on /v1/events/log) makes for this subscription."""
        sub = self.sub
        if doc.get("type") == "reset":
            return [Delivery(doc["id"], "reset", doc)]
        sku, location = doc.get("sku", ""), doc.get("location", "")
        if sub.skus is not None and sku not in sub.skus:
            return []
        if sub.locations is not None and location not in sub.locations:
            return []
        out: list[Delivery] = []
        if self.type_wanted(doc["type"]) and (
            sub.channels is None or any(self._sees(c, sku, location) for c in sub.channels)
        ):
            out.append(Delivery(doc["id"], doc["type"], doc))
        for change in doc.get("availability", []):
            channel = change["channel"]
            if sub.channels is not None and channel not in sub.channels:
                continue
            kind = _transition(change["before"]["status"], change["after"]["status"])
            if kind is not None and self.type_wanted(kind):
                derived = {
                    "id": f"{doc['id']}/{channel}",
                    "type": kind,
                    "sku": sku,
                    "channel": channel,
                    "at": doc.get("at"),
                    "available": change["after"]["available"],
                    "source_event": doc["id"],
                }
                out.append(Delivery(derived["id"], kind, derived))
        return out


def _transition(before: str | None, after: str | None) -> str | None:
    if after == "out_of_stock" and before != "out_of_stock":
        return OUT_OF_STOCK
    if before == "out_of_stock" and after not in (None, "out_of_stock"):
        return BACK_IN_STOCK
    return None
