"""A flash-sale service written the way public flash-sale demos do it: FastAPI with its
dependency injection (the store client and the request body are dependencies), and one `EVAL`
of a GET/DECRBY Lua script per purchase. No hold record, no event, no TTL, no idempotency, no
auth, no middleware: the counter is all there is. Same web stack as Omnistock (FastAPI on
uvicorn with uvloop and httptools, one worker) and the same store (the embedded valkey-server,
`appendfsync always`), so `make bench` compares what each does per request.

    OMNISTOCK_BENCH_PEER_REDIS_URL=redis://... uvicorn benchmarks.counter_peer.app:app

POST /v1/holds {"sku", "quantity"} -> 201 {"sku", "quantity", "left"} | 409 sold out
GET /healthz -> {"status": "ok"}
The stock of a sku is the string key `stock:<sku>` (benchmarks/run.py sets it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field
from redis.asyncio import Redis

# The demos' script: read the counter, take the units if there are enough. Sent as EVAL (the
# script text) on every purchase, as they do.
PURCHASE = """
local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
local qty = tonumber(ARGV[1])
if stock < qty then return -1 end
return redis.call('DECRBY', KEYS[1], qty)
"""


class Purchase(BaseModel):
    sku: Annotated[str, Field(min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=10**9)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.redis = Redis.from_url(os.environ["OMNISTOCK_BENCH_PEER_REDIS_URL"])
    yield
    await app.state.redis.aclose()


app = FastAPI(lifespan=lifespan)


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/holds", status_code=201)
async def purchase(
    body: Purchase, redis: Annotated[Redis, Depends(get_redis)]
) -> dict[str, object]:
    left = int(await redis.eval(PURCHASE, 1, f"stock:{body.sku}", body.quantity))  # type: ignore[misc]
    if left < 0:
        raise HTTPException(status_code=409, detail="sold out")
    return {"sku": body.sku, "quantity": body.quantity, "left": int(left)}
