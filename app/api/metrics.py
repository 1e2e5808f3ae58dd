"""Prometheus metrics: per-route request counts and latency, hold outcomes, expiries and
store script time (the event metrics live with the hub, app/events/hub.py). Names follow the
Prometheus conventions: `omnistock_` prefix, base units (`_seconds`), `_total` on counters
(tests/ops/test_metrics.py parses /metrics with the official parser and checks them).

With several worker processes (`OMNISTOCK_WORKERS` > 1) `omnistock serve` sets
PROMETHEUS_MULTIPROC_DIR and /metrics aggregates every worker's figures.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# No `_created` series: they double the series count for a figure Prometheus does not use, and
# the multiprocess collector (OMNISTOCK_WORKERS > 1) never has them, so both modes agree.
disable_created_metrics()  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "omnistock_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "omnistock_http_request_duration_seconds",
    "Time from request to the end of the response, by method and route template.",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HOLD_OUTCOMES = Counter(
    "omnistock_hold_outcomes_total",
    "Hold requests by outcome (created, insufficient_stock, committed, fulfilled, released, "
    "extended, released_lines, fulfilled_lines, updated, invalid_transition).",
    ["outcome"],
)
HOLD_EXPIRIES = Counter(
    "omnistock_hold_expiries_total", "Holds the reaper marked expired and returned to stock."
)
STORE_SCRIPT_DURATION = Histogram(
    "omnistock_store_script_duration_seconds",
    "Round trip of one Lua script call to the store (FCALL of its function), by script.",
    ["script"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


def script_timer(script: str) -> Callable[[float], None]:
    """The observe function of one script's duration series (resolved once, not per call)."""
    return STORE_SCRIPT_DURATION.labels(script).observe


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def observe_request(method: str, template: str, status: int, seconds: float) -> None:
    """Count and time one HTTP request by the route template it matched (the request frame,
    app/api/asgi.py, calls this), so /v1/holds/{hold_id} is one series, not one per hold."""
    count, observe = _series(method, template, status)
    count()
    observe(seconds)


@functools.lru_cache(maxsize=1024)  # few routes x methods x statuses; `labels()` locks each call
def _series(
    method: str, template: str, status: int
) -> tuple[Callable[[], None], Callable[[float], None]]:
    return (
        REQUESTS.labels(method, template, str(status)).inc,
        LATENCY.labels(method, template).observe,
    )
