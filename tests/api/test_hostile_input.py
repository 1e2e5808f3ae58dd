"""Input that only a fuzzer or an attacker sends, found by tests/fuzz and tests/model: each is
answered with a problem or a per-item rejection, never a 500."""

from __future__ import annotations

import io

import httpx
import pytest

from app.credentials import KeysFileError, check_name
from app.domain.importer import Rejected, SnapshotReader
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


async def test_stock_event_ids_with_a_trailing_newline_are_rejected_and_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    """Python's `$` matches before a final newline: "sku-1\\n" once created a position no
    request could ever read (the path pattern refuses it)."""
    await seed(client, {("sku-1", "dc"): 5})
    events = [
        {"id": "e1\n", "type": "receipt", "sku": "sku-1", "location": "dc", "quantity": 1},
        {"id": "e2", "type": "receipt", "sku": "sku-1\n", "location": "dc", "quantity": 1},
        {"id": "e3", "type": "receipt", "sku": "sku-1", "location": "dc\n", "quantity": 1},
    ]
    r = await client.post("/v1/stock/events", json={"events": events})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["rejected"] * 3
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 5


def test_snapshot_row_with_a_trailing_newline_in_an_identifier_is_rejected() -> None:
    """The same `$` trap in `omnistock import`: NDJSON can escape a newline into a sku."""
    rows = b'{"sku": "sku-1\\n", "location": "dc", "on_hand": 1}\n'
    rows += b'{"sku": "sku-1", "location": "dc\\n", "on_hand": 1}\n'
    reader = SnapshotReader(io.BytesIO(rows), "ndjson", {"dc", "dc\n"})
    assert [isinstance(row, Rejected) for row, _ in reader.rows()] == [True, True]


def test_api_key_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(KeysFileError):
        check_name("web-shop\n")


@pytest.mark.parametrize(
    "occurred_at",
    [20240101, "20240101", "2024-01-01", "2025-11-24T10:14:58", "2025-13-01T00:00:00Z", True],
)
async def test_stock_event_occurred_at_that_is_not_rfc_3339_is_rejected(
    client: httpx.AsyncClient, occurred_at: object
) -> None:
    """fromisoformat(str(x)) took numbers, bare dates and times without a zone."""
    await seed(client, {("sku-1", "dc"): 5})
    event = {"id": "e1", "type": "sale", "sku": "sku-1", "location": "dc", "quantity": 1}
    r = await client.post(
        "/v1/stock/events", json={"events": [{**event, "occurred_at": occurred_at}]}
    )
    (result,) = r.json()["results"]
    assert (result["status"], result["reason"]) == (
        "rejected",
        "occurred_at must be an RFC 3339 timestamp",
    )
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 5


@pytest.mark.parametrize("occurred_at", ["2025-11-24T10:14:58Z", "2025-11-24T10:14:58.5+02:00"])
async def test_stock_event_with_an_rfc_3339_occurred_at_applies(
    client: httpx.AsyncClient, occurred_at: str
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    event = {"id": "e1", "type": "sale", "sku": "sku-1", "location": "dc", "quantity": 1}
    r = await client.post(
        "/v1/stock/events", json={"events": [{**event, "occurred_at": occurred_at}]}
    )
    assert r.json()["results"][0]["status"] == "applied"
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 4
