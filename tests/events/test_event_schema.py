"""The event models of the OpenAPI document (app/events/schema.py) describe the real events."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from app.events.schema import EventPage, ResetEvent, StockChangeEvent
from tests.conftest import seed
from tests.events.helpers import read_log, unique_skus


def described(event: dict[str, Any]) -> None:
    """The event validates against its model, and has no field the model leaves out."""
    model: type[BaseModel] = ResetEvent if event["type"] == "reset" else StockChangeEvent
    model.model_validate(event)
    assert set(event) <= set(model.model_fields), (event["type"], set(event))
    for name in ("cause", "position"):
        if name in event:
            field_model = model.model_fields[name].annotation
            assert isinstance(field_model, type) and issubclass(field_model, BaseModel)
            assert set(event[name]) <= set(field_model.model_fields), event[name]


async def test_event_log_pages_match_the_documented_event_models(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    (sku,) = unique_skus(1)
    start = await client.get("/v1/events/log", params={"sku": sku})
    after = start.json()["next"]
    r = await client.put(f"/v1/stock/{sku}/dc", json={"on_hand": 5, "safety_stock": 1})
    assert r.status_code == 200, r.text
    hold = {"channel": "web", "reference": "cart-1", "lines": [{"sku": sku, "quantity": 2}]}
    r = await client.post("/v1/holds", json=hold)
    assert r.status_code == 201, r.text
    sale = {"id": "till-1:0001", "type": "sale", "sku": sku, "location": "dc", "quantity": 1}
    r = await client.post("/v1/stock/events", json={"events": [sale]})
    assert r.status_code == 200, r.text
    r = await client.put(f"/v1/stock/{sku}/dc", json={"on_hand": 0})  # below held: shortfall
    assert r.status_code == 200, r.text

    events, _ = await read_log(client, sku=sku, after=after)
    types = [e["type"] for e in events]
    assert {"stock.set", "hold.reserved", "stock.sale", "shortfall"} <= set(types), types
    reset = await client.get("/v1/events/log", params={"after": "1000-0-000", "limit": 1})
    page = reset.json()
    EventPage.model_validate(page)
    for event in [*events, *page["events"]]:
        described(event)
    assert page["events"][0]["type"] == "reset"
