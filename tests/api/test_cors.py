"""CORS: only the origins in OMNISTOCK_CORS_ORIGINS get CORS headers, on every route."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.api.main import create_app
from app.settings import Settings, SettingsError, load_settings
from app.store.embedded import EmbeddedStore
from tests.api.helpers import assert_problem
from tests.conftest import make_settings, seed

SHOP = "https://shop.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def settings(store_url: str) -> Settings:
    return make_settings(store_url, cors_origins=f"{SHOP}, http://127.0.0.1:8081")


def preflight(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return asked


async def test_cors_preflight_allows_the_api_headers_for_a_listed_origin(
    client: httpx.AsyncClient,
) -> None:
    asked = "authorization, idempotency-key, content-type, last-event-id"
    r = await client.options("/v1/holds", headers=preflight(SHOP, "POST", asked))
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-credentials" not in r.headers
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert set(asked.split(", ")) <= allowed
    methods = set(r.headers["access-control-allow-methods"].replace(" ", "").split(","))
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    assert r.headers["access-control-max-age"] == "600"


async def test_cors_preflight_from_an_unlisted_origin_is_refused(
    client: httpx.AsyncClient,
) -> None:
    r = await client.options("/v1/holds", headers=preflight(OTHER))
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


async def test_cors_headers_on_the_fast_path_and_on_problems(client: httpx.AsyncClient) -> None:
    await seed(client, stock={("SKU-1", "dc"): 5})
    # GET /v1/availability/{sku} is a fast-path route (app/api/fast_path.py).
    r = await client.get("/v1/availability/SKU-1?channel=web", headers={"Origin": SHOP})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "X-Request-ID" in r.headers["access-control-expose-headers"]
    assert "vary" in r.headers and "Origin" in r.headers["vary"]
    problem = await client.get("/v1/availability/SKU-1?channel=kiosk", headers={"Origin": SHOP})
    assert problem.status_code == 404
    assert problem.headers["access-control-allow-origin"] == SHOP
    unlisted = await client.get("/v1/availability/SKU-1", headers={"Origin": OTHER})
    assert unlisted.status_code == 200
    assert "access-control-allow-origin" not in unlisted.headers


class TestTheFramesOwnAnswers:
    """413 and 503 are answered by the request frame outside CORS (app/api/asgi.py), and get
    CORS's headers from it all the same."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> Iterator[str]:
        """A store of this test's own, which it may pause."""
        with EmbeddedStore(tmp_path / "store", fsync="everysec", supervise=False) as store:
            yield store.url

    @pytest.fixture
    def settings(self, store_url: str) -> Settings:
        return make_settings(
            store_url,
            cors_origins=SHOP,
            max_body_bytes=1024,
            request_deadline_seconds=0.3,
            redis_timeout_seconds=5,
        )

    async def test_cors_headers_on_a_413_answered_before_the_body_is_read(
        self, client: httpx.AsyncClient
    ) -> None:
        r = await client.post(
            "/v1/holds",
            content=b" " * 1025,
            headers={"Origin": SHOP, "content-type": "application/json"},
        )
        assert_problem(r, 413, "payload_too_large")
        assert r.headers["access-control-allow-origin"] == SHOP
        assert r.headers["x-request-id"]

    async def test_cors_headers_on_the_503_of_a_request_past_its_deadline(
        self, client: httpx.AsyncClient, store_url: str
    ) -> None:
        await seed(client, {("sku-1", "dc"): 5})
        admin = Redis.from_url(store_url)
        await admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # lifts by itself
        r = await client.get("/v1/availability/sku-1?channel=web", headers={"Origin": SHOP})
        await admin.aclose()
        assert_problem(r, 503, "store_unavailable")
        assert r.headers["access-control-allow-origin"] == SHOP
        assert r.headers["x-request-id"]


async def test_a_preflight_is_logged_and_counted_with_its_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omnistock.access")
    r = await client.options(
        "/v1/holds", headers={**preflight(SHOP), "X-Request-ID": "preflight-1"}
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "preflight-1"
    (line,) = [x for x in caplog.records if x.name == "omnistock.access"]
    assert line.fields["method"] == "OPTIONS"  # type: ignore[attr-defined]
    assert line.fields["status"] == 200  # type: ignore[attr-defined]
    metrics = (await client.get("/metrics")).text
    assert 'omnistock_http_requests_total{method="OPTIONS",route="unmatched",status="200"}' in (
        metrics
    )


async def test_no_cors_origins_means_no_cors_headers(store_url: str) -> None:
    app = create_app(make_settings(store_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            r = await c.options("/v1/holds", headers=preflight(SHOP))
            assert r.status_code == 405
            r = await c.get("/healthz", headers={"Origin": SHOP})
            assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    "value",
    ["https://shop.example.com/", "shop.example.com", "*, https://a.example", "https://a/b"],
)
def test_cors_origins_must_be_bare_origins(value: str) -> None:
    with pytest.raises(SettingsError, match="OMNISTOCK_CORS_ORIGINS"):
        load_settings(cors_origins=value)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("", ()),
        ("*", ("*",)),
        (
            "https://a.example, http://127.0.0.1:8081",
            ("https://a.example", "http://127.0.0.1:8081"),
        ),
    ],
)
def test_cors_origins_are_comma_separated(
    value: str, parsed: tuple[str, ...], monkeypatch: Any
) -> None:
    monkeypatch.setenv("OMNISTOCK_CORS_ORIGINS", value)
    assert Settings().cors_origins == parsed


@pytest.mark.slow
def test_cors_headers_on_the_event_stream(start_service: Any, store_url: str) -> None:
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_CORS_ORIGINS=SHOP)
    with httpx.Client(base_url=service.base_url, timeout=5) as http:
        with http.stream("GET", "/v1/events", headers={"Origin": SHOP}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["access-control-allow-origin"] == SHOP
        r = http.options(
            "/v1/events",
            headers={**preflight(SHOP, "GET", "last-event-id, authorization")},
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == SHOP
