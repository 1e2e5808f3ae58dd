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
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, cast

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
    return observer(STORE_SCRIPT_DURATION.labels(script))


# prometheus_client's `inc` and `observe` check, on every call, what a labelled child never
# is (a parent of labels), an exemplar and a negative amount, and `observe` walks the
# buckets one by one: 4.6k and 9.4k instructions, against 3.3k and 7.4k for the same updates
# of the same values here, most of it their locks (docs/benchmarks.md, "Session 8, the hold's
# Python").
# They reach into the child's values (`_value`, `_sum`, `_buckets`, `_upper_bounds`);
# tests/ops/test_metrics.py checks that /metrics reads the same as after the library's own.
# A prometheus_client without those attributes gets the library's own methods back.


def incrementer(child: Any) -> Callable[[], None]:
    """`child.inc()` of a labelled Counter child (by 1)."""
    value = getattr(child, "_value", None)
    if value is None or not callable(getattr(value, "inc", None)):
        return cast(Callable[[], None], child.inc)
    return functools.partial(value.inc, 1)


def observer(child: Any) -> Callable[[float], None]:
    """`child.observe` of a labelled Histogram child: the sum, then the first bucket whose
    bound is not below the amount (`bisect_left`); NaN, which no bucket takes and `bisect`
    would put in the first, goes to the library's own."""
    fallback: Callable[[float], None] = child.observe
    try:
        add = child._sum.inc
        bounds = list(child._upper_bounds)
        buckets = list(child._buckets)
    except (AttributeError, TypeError):
        return fallback
    if len(buckets) != len(bounds) or not all(callable(getattr(b, "inc", None)) for b in buckets):
        return fallback

    def observe(amount: float) -> None:
        if amount != amount:
            fallback(amount)
            return
        add(amount)
        buckets[bisect_left(bounds, amount)].inc(1)

    return observe


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
        incrementer(REQUESTS.labels(method, template, str(status))),
        observer(LATENCY.labels(method, template)),
    )
