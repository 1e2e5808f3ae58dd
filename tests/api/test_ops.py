"""Liveness, readiness, metrics and generated docs."""

from __future__ import annotations

import httpx

from tests.api.helpers import hold
from tests.conftest import seed


async def test_healthz_is_200(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_readyz_is_200_when_the_store_answers(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_metrics_exposes_request_and_hold_outcome_counters(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 1})
    await hold(client, [{"sku": "sku-1", "quantity": 1}])
    await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}
    )
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "omnistock_http_requests_total{" in text
    assert 'route="/v1/holds"' in text
    assert 'omnistock_hold_outcomes_total{outcome="created"}' in text
    assert 'omnistock_hold_outcomes_total{outcome="insufficient_stock"}' in text


async def test_metrics_label_routes_by_template_not_by_id(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 3})
    h = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    await client.get(f"/v1/holds/{h['id']}")
    text = (await client.get("/metrics")).text
    assert 'route="/v1/holds/{hold_id}"' in text
    assert h["id"] not in text


async def test_openapi_json_loads_and_lists_the_endpoints(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/v1/locations/{location}",
        "/v1/locations",
        "/v1/channels/{channel}",
        "/v1/channels",
        "/v1/stock/{sku}/{location}",
        "/v1/stock/{sku}",
        "/v1/availability/{sku}",
        "/v1/availability/query",
        "/v1/holds",
        "/v1/holds/{hold_id}",
        "/v1/holds/{hold_id}/commit",
        "/v1/holds/{hold_id}/fulfil",
        "/v1/holds/{hold_id}/release",
        "/v1/holds/{hold_id}/extend",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path


async def test_docs_page_loads(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "openapi.json" in r.text
