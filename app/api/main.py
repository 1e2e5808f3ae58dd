"""The ASGI application: `create_app(settings)` builds everything, so tests pass their own."""

from __future__ import annotations

import copy
import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, request_response

from app import __version__
from app.api import (
    board,
    config_routes,
    cors,
    docs,
    event_routes,
    hold_routes,
    limits,
    nearby_routes,
    openapi_doc,
    openapi_examples,
    ops_routes,
    problems,
    route_index,
    stock_routes,
    supply_routes,
    webhook_routes,
)
from app.api import fast_path as fast_paths
from app.api.asgi import Frame
from app.api.deps import Services
from app.api.idempotency import Idempotency
from app.api.keys_reload import KeysReloader
from app.api.metrics import HOLD_EXPIRIES, script_timer
from app.domain.clock import Clock, StoreClock
from app.domain.config import ConfigService
from app.domain.hold_list import HoldLister
from app.domain.holds import HoldService
from app.domain.kit_service import KitService
from app.domain.nearby import NearbyService
from app.domain.reaper import Reaper
from app.domain.stock import StockService
from app.domain.stock_events import StockEventService
from app.domain.supply import SupplyService
from app.events.hub import EventHub
from app.events.source import event_source
from app.settings import Settings
from app.store.connection import connect, multiplexer
from app.store.durable import writer_for
from app.store.scripts import Scripts
from app.webhooks.deliverer import WebhookDeliverer
from app.webhooks.registry import WebhookRegistry

log = logging.getLogger("omnistock")


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or StoreClock()  # tests alone pass a ManualClock (app/domain/clock.py)
    redis = connect(settings)
    mux = multiplexer(settings)
    # Writes go on a connection of their own, so a read never queues behind a write the
    # store holds back (CLIENT PAUSE WRITE, a failover, a full disk); waited writes already do.
    writer = writer_for(settings, redis)
    write_mux = multiplexer(settings) if mux is not None and writer is None else None
    scripts = Scripts.register(redis, script_timer, mux, writer, write_mux)
    config = ConfigService(redis, scripts, settings.config_refresh_seconds)
    stock = StockService(redis, scripts, config, settings, clock, mux)
    holds = HoldService(redis, scripts, config, stock, settings, clock)
    hold_list = HoldLister(redis, scripts, holds, clock)
    reaper = Reaper(
        redis,
        holds,
        settings.reaper_interval_seconds,
        settings.reaper_batch,
        on_expired=HOLD_EXPIRIES.inc,
        sweep=hold_list.sweep,
    )
    return Services(
        settings=settings,
        redis=redis,
        mux=mux,
        write_mux=write_mux,
        writer=writer,
        scripts=scripts,
        config=config,
        stock=stock,
        holds=holds,
        kits=KitService(config, stock),
        nearby=NearbyService(config, stock),
        hold_list=hold_list,
        stock_events=StockEventService(scripts, config, stock, settings, clock, redis),
        supply=SupplyService(scripts, config, stock, clock),
        reaper=reaper,
        idempotency=Idempotency(scripts, settings, clock),
        events=EventHub(
            event_source(settings, redis), settings.sse_queue_size, _block_ms(settings)
        ),
    )


def _block_ms(settings: Settings) -> int:
    """How long the event reader's XREAD blocks: well inside the socket timeout."""
    return max(10, min(1000, int(settings.redis_timeout_seconds * 500)))


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, fast_path: bool = True
) -> FastAPI:
    """The service. `fast_path=False` serves every request through FastAPI's own routing walk
    and dependency solving (app/api/route_index.py, fast_path.py), for the differential test
    of the two paths."""
    settings = settings or Settings()
    # A bad keys file stops the start; a good one is re-read on change and SIGHUP.
    keys = KeysReloader(settings.api_keys_file) if settings.api_keys_file else None
    services = build_services(settings, clock)
    webhooks = WebhookRegistry(services.redis, services.events.source.time_ms)
    deliverer = WebhookDeliverer(
        webhooks, services.events.source, services.config, settings, services.events
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await services.scripts.load(services.redis)
            await services.config.refresh(force=True)
            await services.holds.id_secret.get()
        except Exception as exc:  # start anyway: /readyz says red until the store answers
            log.warning("store not reachable at start: %s", exc)
        services.config.start()
        if settings.reaper_enabled:
            services.reaper.start()
        if keys is not None:
            keys.start(app.state)
        if settings.webhooks_enabled:
            deliverer.start()
        try:
            yield
        finally:
            if settings.webhooks_enabled:
                await deliverer.stop()
            if keys is not None:
                await keys.stop()
            await services.events.stop()
            await services.events.source.aclose()
            await services.reaper.stop()
            await services.config.stop()
            await services.redis.aclose()
            for connection in (services.mux, services.write_mux):
                if connection is not None:
                    await connection.aclose()
            if services.writer is not None:
                await services.writer.aclose()

    app = FastAPI(
        title="Omnistock",
        version=__version__,
        summary="Real-time inventory availability and reservations for omnichannel retail.",
        lifespan=lifespan,
        docs_url=None,  # served by app/api/docs.py with assets of our own, not a CDN's
        redoc_url=None,
        **_without_fastapi_telemetry(),
    )
    app.state.services = services
    app.state.keyring = keys.keyring if keys is not None else None
    app.state.webhooks = webhooks
    app.state.deliverer = deliverer
    problems.install(app)
    openapi_doc.install(app)
    openapi_examples.install(app)  # after openapi_doc: adds examples to its problem responses
    limits.install(app)
    # Inside the frame: the frame's own answers (413, 503) get its headers through `answer`,
    # and a preflight is logged and counted with its request id.
    answer = cors.install(app, settings.cors_origins)
    app.add_middleware(  # outermost: its request id is set for every log line
        Frame,
        deadline_seconds=settings.request_deadline_seconds,
        max_body_bytes=settings.max_body_bytes,
        answer=answer,
        dispatch=fast_paths.Shortcuts if fast_path else None,
    )
    # Matched in this order: the cheap probes, then the hot routes before the rare admin ones.
    for router in (
        ops_routes.router,
        stock_routes.router,
        hold_routes.router,
        supply_routes.router,
        nearby_routes.router,
        config_routes.router,
        event_routes.router,
        webhook_routes.router,
    ):
        _include(app, router)
    board.install(app)
    docs.install(app)
    fast_paths.install(app, enabled=fast_path)  # last: builds every route's handler
    if fast_path:
        route_index.install(app)
    return app


def _include(app: FastAPI, router: APIRouter) -> None:
    """Add `router`'s routes to the app's own list, as the app's routes: what
    `app.include_router(router)` did before FastAPI 0.16x. Now it adds the router as one entry
    that, on every request, matches each of its routes through an "effective route context",
    twice for the router it picks (to pick it, then within it): 42 µs to route POST /v1/holds,
    the third router, against 9 in one flat list (docs/benchmarks.md, "Session 5, HTTP
    tier"). The same routes in the same order: the same matches, the same OpenAPI document
    (tests/ops/test_openapi.py). Each route is a copy whose dependency overrides are the
    app's (as an included route's are), its handler built for that."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or getattr(route, "max_body_size", None) is not None:
            raise TypeError(f"{route!r}: only API routes without a body limit of their own")
        own = copy.copy(route)
        own.dependency_overrides_provider = app
        own.app = (
            own.asgi_app()
            if isinstance(own, fast_paths.FastPathRoute)
            else request_response(own.get_route_handler())
        )
        app.router.routes.append(own)


def _without_fastapi_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry instrumentation, off: the service's telemetry is its
    Prometheus metrics and request log. On, with no OpenTelemetry provider configured, it
    still asked the OpenTelemetry API for the global providers on every request (environment
    look-ups): 8-25 µs of CPU a request (docs/benchmarks.md, "Session 5, HTTP tier").
    FastAPI versions without it take nothing."""
    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from OMNISTOCK_* variables.

    Everything made by then (the modules, the app, its routes and schemas: some 90,000
    objects) lives as long as the worker, so after collecting the start's garbage it is frozen
    out of the garbage collector's reach (`gc.freeze`): otherwise each full collection walks
    all of it again, 15 µs a request on average and a pause of a tenth of a second each time
    (docs/benchmarks.md, "Session 5, HTTP tier"). Only here, in the served worker: tests build
    many apps in one process, and frozen objects are never freed.

    The youngest generation is collected after `YOUNG_GC_THRESHOLD` net new container objects
    instead of Python's 700: with 64 connections that many objects are alive in the requests
    under way at almost any moment, so every few requests a collection walked all of them
    (their coroutines, frames, dicts) to free nothing: 44k instructions a flash hold served,
    none at this threshold (docs/benchmarks.md, "Session 8, the hold's Python"). Cyclic
    garbage waits a little longer for its collection: at most that many objects more."""
    app = create_app(Settings())
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
    return app


YOUNG_GC_THRESHOLD = 10_000
