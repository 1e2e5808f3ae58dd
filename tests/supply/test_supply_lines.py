"""Supply lines: PUT/DELETE/GET /v1/supply (../shared/api-contract.md, "Future supply")."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_problem
from tests.conftest import seed
from tests.supply.helpers import days, ok_supply, put_supply, supply_lines


@pytest.fixture(autouse=True)
async def _seeded(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 0})


async def test_put_creates_a_supply_line_listed_with_nothing_promised(
    client: httpx.AsyncClient,
) -> None:
    eta = days(10)
    body = await ok_supply(client, "sku-1", "dc", "po-1", 40, eta)
    assert body["action"] == "created"
    assert body["broken_promises"] == []
    lines = await supply_lines(client, "sku-1")
    assert len(lines) == 1
    line = lines[0]
    assert (line["location"], line["supply_id"], line["type"]) == ("dc", "po-1", "purchase_order")
    assert (line["quantity"], line["promised"], line["incoming"]) == (40, 0, 40)
    assert line["eta"][:16] == eta[:16]


async def test_put_again_updates_quantity_and_eta(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po-1", 40, days(10))
    body = await ok_supply(client, "sku-1", "dc", "po-1", 25, days(12))
    assert body["action"] == "updated"
    (line,) = await supply_lines(client, "sku-1")
    assert line["quantity"] == 25


async def test_the_same_put_again_is_unchanged(client: httpx.AsyncClient) -> None:
    eta = days(10)
    await ok_supply(client, "sku-1", "dc", "po-1", 40, eta)
    assert (await ok_supply(client, "sku-1", "dc", "po-1", 40, eta))["action"] == "unchanged"


async def test_quantity_zero_cancels_the_line(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po-1", 40, days(10))
    r = await put_supply(client, "sku-1", "dc", "po-1", 0)
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "cancelled"
    assert await supply_lines(client, "sku-1") == []


async def test_delete_cancels_the_line(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po-1", 40, days(10))
    r = await client.delete("/v1/supply/sku-1/dc/po-1")
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "cancelled"
    assert await supply_lines(client, "sku-1") == []


async def test_cancelling_an_unknown_line_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/v1/supply/sku-1/dc/po-9"), 404, "supply_not_found")


async def test_lines_are_listed_earliest_eta_first(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "late", 5, days(20))
    await ok_supply(client, "sku-1", "store-a", "early", 5, days(3))
    assert [x["supply_id"] for x in await supply_lines(client, "sku-1")] == ["early", "late"]


@pytest.mark.parametrize(
    ("quantity", "eta", "extra"),
    [
        (-1, days(5), {}),
        (10**9 + 1, days(5), {}),
        (5, days(-1), {}),
        (5, days(400), {}),
        (5, "next tuesday", {}),
        (5, "2030-01-01T00:00:00", {}),  # no offset: not an instant
        (5, None, {}),
        (5, days(5), {"type": "rumour"}),
        (5, days(5), {"colour": "red"}),
    ],
    ids=[
        "negative",
        "absurd",
        "eta-past",
        "eta-beyond-horizon",
        "eta-text",
        "eta-naive",
        "eta-missing",
        "unknown-type",
        "unknown-field",
    ],
)
async def test_bad_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient, quantity: int, eta: str | None, extra: dict[str, str]
) -> None:
    body = {"type": "purchase_order", "quantity": quantity, **extra}
    if eta is not None:
        body["eta"] = eta
    r = await client.put("/v1/supply/sku-1/dc/po-1", json=body)
    assert_problem(r, 422, "invalid_request")
    assert await supply_lines(client, "sku-1") == []


async def test_an_unknown_location_is_404_and_changes_nothing(client: httpx.AsyncClient) -> None:
    r = await put_supply(client, "sku-1", "nowhere", "po-1", 5, days(5))
    assert_problem(r, 404, "location_not_found")
    assert await supply_lines(client, "sku-1") == []


async def test_a_supply_id_that_is_not_an_identifier_is_422(client: httpx.AsyncClient) -> None:
    r = await put_supply(client, "sku-1", "dc", "po 1!", 5, days(5))
    assert_problem(r, 422, "invalid_request")


async def test_a_keyed_put_replays_without_a_second_change(client: httpx.AsyncClient) -> None:
    body = {"type": "in_transit", "quantity": 7, "eta": days(4)}
    headers = {"Idempotency-Key": "sup-1"}
    first = await client.put("/v1/supply/sku-1/dc/asn-1", json=body, headers=headers)
    again = await client.put("/v1/supply/sku-1/dc/asn-1", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["action"] == "created"
    other = await client.put(
        "/v1/supply/sku-1/dc/asn-1", json={**body, "quantity": 8}, headers=headers
    )
    assert_problem(other, 422, "idempotency_key_reused")


async def test_supply_changes_are_events_in_the_log(client: httpx.AsyncClient) -> None:
    await ok_supply(client, "sku-1", "dc", "po-1", 40, days(10))
    await ok_supply(client, "sku-1", "dc", "po-1", 30, days(10))
    await client.delete("/v1/supply/sku-1/dc/po-1")
    r = await client.get("/v1/events/log", params={"sku": "sku-1"})
    events = [e for e in r.json()["events"] if e["type"].startswith("supply.")]
    assert [e["type"] for e in events] == ["supply.created", "supply.updated", "supply.cancelled"]
    assert events[0]["supply"]["supply_id"] == "po-1"
    assert events[1]["supply"]["quantity"] == 30


async def test_a_batch_applies_each_line_on_its_own(client: httpx.AsyncClient) -> None:
    lines = [
        {
            "sku": "sku-1",
            "location": "dc",
            "supply_id": "po-1",
            "type": "purchase_order",
            "quantity": 5,
            "eta": days(5),
        },
        {
            "sku": "sku-1",
            "location": "nowhere",
            "supply_id": "po-2",
            "type": "purchase_order",
            "quantity": 5,
            "eta": days(5),
        },
        {
            "sku": "sku-1",
            "location": "dc",
            "supply_id": "po-3",
            "type": "purchase_order",
            "quantity": -5,
            "eta": days(5),
        },
        {
            "sku": "sku-2",
            "location": "dc",
            "supply_id": "asn-1",
            "type": "in_transit",
            "quantity": 3,
            "eta": days(2),
        },
        "not an object",
    ]
    r = await client.post("/v1/supply/batch", json={"lines": lines})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [
        "created",
        "rejected",
        "rejected",
        "created",
        "rejected",
    ]
    assert "nowhere" in results[1]["reason"]
    assert [x["supply_id"] for x in await supply_lines(client, "sku-1")] == ["po-1"]
    assert [x["supply_id"] for x in await supply_lines(client, "sku-2")] == ["asn-1"]
