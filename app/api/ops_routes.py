"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from redis.exceptions import RedisError

from app.api import auth
from app.api.deps import ServicesDep
from app.api.metrics import render
from app.api.responses import JSONResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Response:
    """Liveness: the process answers. Touches no store (it is the framework floor in
    benchmarks)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(services: ServicesDep) -> Response:
    """Readiness: the store answers and every script is loaded (within one store timeout, so
    a paused store turns it red as fast as it fails requests)."""
    try:
        async with asyncio.timeout(services.settings.redis_timeout_seconds):
            await services.scripts.load(services.redis)
    except (RedisError, OSError) as exc:  # OSError covers the timeout above
        return JSONResponse(
            {"status": "unavailable", "store": "unreachable", "detail": str(exc) or "timed out"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"status": "ok", "store": "ok", "scripts": "loaded"})


@router.get("/metrics", include_in_schema=False, dependencies=[auth.READ])
async def metrics() -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)
