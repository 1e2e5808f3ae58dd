"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from redis.exceptions import RedisError

from app.api import auth
from app.api.deps import ServicesDep
from app.api.metrics import render
from app.api.problems import on_embedded_store
from app.api.responses import JSONResponse
from app.store.persistence import write_refusal

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """`ok`; `degraded` (200: the store refuses writes, reads go on); `unavailable` (503)."""

    status: Literal["ok", "degraded", "unavailable"]
    store: Literal["ok", "read-only", "unreachable"]
    scripts: Literal["loaded"] | None = None
    reads: Literal["ok"] | None = None
    writes: Literal["refused"] | None = None
    detail: str | None = None


@router.get("/healthz", response_model=Health)
async def healthz() -> Response:
    """Liveness: the process answers. Touches no store (it is the framework floor in
    benchmarks)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", response_model=Readiness)
async def readyz(request: Request, services: ServicesDep) -> Response:
    """Readiness: the store answers and every script is loaded (within one store timeout, so
    a paused store turns it red as fast as it fails requests). A store that refuses writes
    (full disk) leaves the instance ready, since reads go on and every instance shares the store:
    200 with `"status": "degraded"` and the reason, for monitoring to alert on. Open to all, so
    the store's own error text (its address) only goes to an admin caller."""
    try:
        async with asyncio.timeout(services.settings.redis_timeout_seconds):
            await services.scripts.load(services.redis)
            refusal = await write_refusal(services.redis, on_embedded_store(request))
    except (RedisError, OSError) as exc:  # OSError covers the timeout above
        admin = auth.is_admin(request)
        detail = (str(exc) or "timed out") if admin else "the store did not answer"
        return _not_ready({"store": "unreachable", "detail": detail})
    if refusal is not None:
        return JSONResponse(
            {
                "status": "degraded",
                "store": "read-only",
                "reads": "ok",
                "writes": "refused",
                "detail": refusal,
            }
        )
    return JSONResponse({"status": "ok", "store": "ok", "scripts": "loaded"})


def _not_ready(body: dict[str, str]) -> Response:
    return JSONResponse(
        {"status": "unavailable", **body}, status_code=503, headers={"Retry-After": "1"}
    )


@router.get("/metrics", include_in_schema=False, dependencies=[auth.READ])
async def metrics() -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)
