"""/metrics follows the Prometheus naming conventions, checked with the official parser."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from app.api import metrics
from app.store.scripts import Scripts
from tests.api.helpers import hold
from tests.conftest import seed

# Every metric the service exports, with its type: the Grafana dashboard and alerts rely on
# these names (tests/ops/test_deploy.py checks the dashboard's queries against /metrics).
EXPECTED = {
    "omnistock_http_requests": "counter",
    "omnistock_http_request_duration_seconds": "histogram",
    "omnistock_hold_outcomes": "counter",
    "omnistock_hold_expiries": "counter",
    "omnistock_store_script_duration_seconds": "histogram",
    "omnistock_sse_clients": "gauge",
    "omnistock_sse_overflows": "counter",
    "omnistock_event_delivery_lag_seconds": "histogram",
    # Cluster only: a primary's clock found behind an instant already delivered up to (the
    # event order's assumption broken, app/events/source.py); an alert, not a panel.
    "omnistock_event_clock_behind": "counter",
    # Webhooks (app/webhooks/deliverer.py): attempts by outcome (ok, failed), and the delay
    # from an event's store time to its acknowledgement.
    "omnistock_webhook_attempts": "counter",
    "omnistock_webhook_delay_seconds": "histogram",
}
# Units that are not base units: Prometheus wants seconds and bytes, not ms or KiB.
NON_BASE_UNITS = re.compile(r"_(ms|millis|milliseconds|microseconds|us|minutes|hours|kb|mb)(_|$)")
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def parse(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def exercised_metrics(client: httpx.AsyncClient) -> dict[str, Metric]:
    """/metrics after a hold that succeeds and one that is short (so labelled series exist)."""
    await seed(client, {("sku-1", "dc"): 1})
    await hold(client, [{"sku": "sku-1", "quantity": 1}])
    await client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}
    )
    r = await client.get("/metrics")
    assert r.status_code == 200
    return parse(r.text)


def own(families: dict[str, Metric]) -> dict[str, Metric]:
    return {name: f for name, f in families.items() if name.startswith("omnistock_")}


async def test_every_expected_metric_is_exported_with_its_type(client: httpx.AsyncClient) -> None:
    families = own(await exercised_metrics(client))
    assert {name: families[name].type for name in EXPECTED if name in families} == EXPECTED


async def test_every_exported_metric_is_one_the_dashboard_knows(client: httpx.AsyncClient) -> None:
    """A new metric gets a line in EXPECTED (and a thought about the dashboard)."""
    assert set(own(await exercised_metrics(client))) <= set(EXPECTED)


async def test_counter_samples_end_in_total(client: httpx.AsyncClient) -> None:
    for family in own(await exercised_metrics(client)).values():
        if family.type == "counter":
            assert family.samples, family.name
            assert {s.name for s in family.samples} == {f"{family.name}_total"}


async def test_samples_carry_only_their_family_suffixes(client: httpx.AsyncClient) -> None:
    for family in own(await exercised_metrics(client)).values():
        allowed = {family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type]}
        assert {s.name for s in family.samples} <= allowed, family.name


async def test_durations_are_histograms_in_seconds(client: httpx.AsyncClient) -> None:
    families = own(await exercised_metrics(client))
    for family in families.values():
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        assert not NON_BASE_UNITS.search(family.name), family.name
        assert not (family.type != "counter" and family.name.endswith("_total")), family.name


async def test_metric_and_label_names_are_snake_case(client: httpx.AsyncClient) -> None:
    for family in own(await exercised_metrics(client)).values():
        assert re.fullmatch(r"omnistock_[a-z][a-z0-9_]*", family.name)
        for sample in family.samples:
            for label in sample.labels:
                assert re.fullmatch(r"[a-z][a-z0-9_]*", label), (family.name, label)


async def test_request_counter_is_labelled_by_method_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    families = await exercised_metrics(client)
    samples = [s for s in families["omnistock_http_requests"].samples if s.name.endswith("_total")]
    holds = [s.labels for s in samples if s.labels["route"] == "/v1/holds"]
    assert {"method": "POST", "route": "/v1/holds", "status": "201"} in holds
    assert {"method": "POST", "route": "/v1/holds", "status": "409"} in holds


async def test_hold_outcomes_count_the_oversell_prevented(client: httpx.AsyncClient) -> None:
    families = await exercised_metrics(client)
    totals = {
        s.labels["outcome"]: s.value
        for s in families["omnistock_hold_outcomes"].samples
        if s.name.endswith("_total")
    }
    assert totals["created"] >= 1
    assert totals["insufficient_stock"] >= 1


async def test_store_script_time_is_observed_per_script(client: httpx.AsyncClient) -> None:
    families = await exercised_metrics(client)
    counts = {
        s.labels["script"]: s.value
        for s in families["omnistock_store_script_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts["hold_reserve"] >= 2
    assert counts["stock_set"] >= 1
    assert set(counts) <= {f.name for f in fields(Scripts)}


@pytest.mark.slow
def test_two_workers_export_the_same_names_and_types(start_service: Any, store_url: str) -> None:
    """With OMNISTOCK_WORKERS > 1 the figures come through the multiprocess collector: the
    same names and types, and the conventions still hold."""
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_WORKERS="2")
    with httpx.Client(base_url=service.base_url, timeout=5) as http:
        http.put("/v1/locations/dc", json={"priority": 1})
        http.put("/v1/stock/sku-1/dc", json={"on_hand": 1})
        r = http.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 2}]})
        assert r.status_code == 409
        text = http.get("/metrics").text
    families = own(parse(text))
    for name in ("omnistock_http_requests", "omnistock_hold_outcomes"):
        assert families[name].type == "counter"
        assert {s.name for s in families[name].samples} == {f"{name}_total"}
    assert families["omnistock_store_script_duration_seconds"].type == "histogram"
    assert families["omnistock_sse_clients"].type == "gauge"
    assert set(families) <= set(EXPECTED)


async def test_a_request_does_not_consult_opentelemetry(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's telemetry is its metrics and request log: FastAPI's own OpenTelemetry
    instrumentation is off, so a request does not look up OpenTelemetry's global providers
    (environment look-ups that cost 8-25 µs a request)."""
    otel_metrics = pytest.importorskip("opentelemetry.metrics")
    otel_trace = pytest.importorskip("opentelemetry.trace")
    asked: list[str] = []
    monkeypatch.setattr(otel_trace, "get_tracer_provider", lambda: asked.append("tracer"))
    monkeypatch.setattr(otel_metrics, "get_meter_provider", lambda: asked.append("meter"))
    assert (await client.get("/healthz")).status_code == 200
    assert asked == []


def _twins(
    kind: type[Any], **options: Any
) -> tuple[Any, Any, CollectorRegistry, CollectorRegistry]:
    """The same labelled metric in two registries of their own, and one child of each."""
    mine, theirs = CollectorRegistry(), CollectorRegistry()
    a = kind("twin", "a twin", ["route"], registry=mine, **options)
    b = kind("twin", "a twin", ["route"], registry=theirs, **options)
    return a.labels("/v1/holds"), b.labels("/v1/holds"), mine, theirs


@settings(max_examples=100, deadline=None)
@given(
    amounts=st.lists(
        st.floats(allow_nan=True, allow_infinity=True)
        | st.sampled_from([0.0, 0.0005, 0.001, 0.0025, 5.0, 5.000001, -1.0]),
        max_size=30,
    )
)
def test_the_fast_observe_reads_on_metrics_as_the_library_s_own(amounts: list[float]) -> None:
    ours, library, mine, theirs = _twins(
        Histogram, buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1, 2.5, 5)
    )
    observe = metrics.observer(ours)
    assert observe != ours.observe  # ours runs, not the library's method it is compared with
    for amount in amounts:
        observe(amount)
        library.observe(amount)
    assert generate_latest(mine) == generate_latest(theirs)


def test_the_fast_increment_reads_on_metrics_as_the_library_s_own() -> None:
    ours, library, mine, theirs = _twins(Counter)
    inc = metrics.incrementer(ours)
    assert inc != ours.inc  # ours runs, not the library's method it is compared with
    for _ in range(3):
        inc()
        library.inc()
    assert generate_latest(mine) == generate_latest(theirs)
    assert b'twin_total{route="/v1/holds"} 3.0' in generate_latest(mine)


class _LibraryWithoutPrivates:
    """A labelled child as a prometheus_client without `_value`/`_sum`/`_buckets` has it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def inc(self, amount: float = 1) -> None:
        self.calls.append(("inc", amount))

    def observe(self, amount: float) -> None:
        self.calls.append(("observe", amount))


def test_the_fast_updates_fall_back_to_the_library_s_methods_without_its_privates() -> None:
    child = _LibraryWithoutPrivates()
    metrics.incrementer(child)()
    metrics.observer(child)(0.25)
    assert child.calls == [("inc", 1), ("observe", 0.25)]
