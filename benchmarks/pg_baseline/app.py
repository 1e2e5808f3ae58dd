"""A reservation service written the way open-source shops do it: the stock row is locked
with `SELECT ... FOR UPDATE`, the reservation inserted and the stock's reserved count raised,
in one transaction. Same web stack as Omnistock (FastAPI on uvicorn with uvloop and
httptools, orjson responses, one worker), so the bench compares the reservation path, not the
framework.

    OMNISTOCK_BENCH_PG_DSN=postgresql://... uvicorn benchmarks.pg_baseline.app:app

POST /v1/holds {"sku", "quantity"} -> 201 {"id", "sku", "quantity"} | 409 insufficient_stock
GET /healthz -> {"status": "ok"}
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_stock (
    sku text PRIMARY KEY,
    on_hand integer NOT NULL,
    reserved integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bench_reservation (
    id bigserial PRIMARY KEY,
    sku text NOT NULL REFERENCES bench_stock (sku),
    quantity integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

POOL_SIZE = int(os.environ.get("OMNISTOCK_BENCH_PG_POOL", "32"))


class HoldIn(BaseModel):
    sku: Annotated[str, Field(min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=10**9)]


def json(body: object, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        os.environ["OMNISTOCK_BENCH_PG_DSN"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> Response:
    return json({"status": "ok"}, 200)


@app.post("/v1/holds", status_code=201)
async def create_hold(body: HoldIn) -> Response:
    pool: asyncpg.Pool = app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT on_hand, reserved FROM bench_stock WHERE sku = $1 FOR UPDATE", body.sku
        )
        if row is None or row["on_hand"] - row["reserved"] < body.quantity:
            available = 0 if row is None else row["on_hand"] - row["reserved"]
            return json({"code": "insufficient_stock", "available": available}, 409)
        hold_id = await conn.fetchval(
            "INSERT INTO bench_reservation (sku, quantity) VALUES ($1, $2) RETURNING id",
            body.sku,
            body.quantity,
        )
        await conn.execute(
            "UPDATE bench_stock SET reserved = reserved + $2 WHERE sku = $1",
            body.sku,
            body.quantity,
        )
    return json({"id": hold_id, "sku": body.sku, "quantity": body.quantity}, 201)
