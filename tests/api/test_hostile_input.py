"""Input that only a fuzzer or an attacker sends, found by tests/fuzz and tests/model: each is
answered with a problem or a per-item rejection, never a 500."""

from __future__ import annotations

import httpx

from tests.api.helpers import assert_problem, position
from tests.conftest import seed

JSON = {"content-type": "application/json"}


async def test_stock_event_id_with_a_lone_surrogate_is_rejected_with_the_id_escaped(
    client: httpx.AsyncClient,
) -> None:
    """JSON may escape a lone surrogate (`\\ud800`), which no UTF-8 response can carry."""
    await seed(client, {("sku-1", "dc"): 5})
    body = b'{"events": [{"id": "e\\ud800", "type": "sale", "sku": "sku-1", "location": "dc", '
    body += b'"quantity": 1}]}'
    r = await client.post("/v1/stock/events", content=body, headers=JSON)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert (result["id"], result["status"]) == ("e\\ud800", "rejected")
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 5


async def test_stock_event_with_an_unknown_field_named_by_a_lone_surrogate_is_rejected(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    body = b'{"events": [{"id": "e1", "type": "sale", "sku": "sku-1", "location": "dc", '
    body += b'"quantity": 1, "\\udfff": 1}]}'
    r = await client.post("/v1/stock/events", content=body, headers=JSON)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert result["status"] == "rejected"
    assert "\\udfff" in result["reason"]
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 5


async def test_event_cursor_with_non_ascii_digits_is_422(client: httpx.AsyncClient) -> None:
    """`\\d` also matches U+0661 (Arabic-Indic one), which int() reads as 1: a cursor is
    ASCII digits only."""
    await seed(client)
    r = await client.get("/v1/events/log", params={"after": "\u0661-0-000"})
    assert_problem(r, 422, "invalid_request")
    r = await client.get("/v1/events/log", params={"after": "1-0-000"})
    assert r.status_code == 200, r.text
