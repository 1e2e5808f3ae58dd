"""A many-sku read (one MULTI/EXEC of plain reads) answers exactly what availability.lua answers
for each partition: the same rows, lapsed hold lines excluded, absent positions left out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app import keys
from app.domain.clock import ManualClock
from app.domain.stock import _LAPSED_PAGE
from app.store import calls
from tests.api.helpers import skus_in_distinct_partitions, skus_in_one_partition
from tests.conftest import seed


async def script_rows(
    app: FastAPI, clock: ManualClock, skus: list[str], locations: list[str]
) -> list[Any]:
    scripts = app.state.services.scripts
    rows = []
    for sku in skus:
        call = calls.availability(keys.partition_of(sku), [sku], locations, clock.offset_ms())
        (row,) = await scripts.run(call)
        rows.append(row)
    return rows


@pytest.mark.parametrize("locations", [[], ["dc", "store-a"], ["store-b", "nowhere", "dc"]])
async def test_a_batch_read_matches_the_availability_script(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, locations: list[str]
) -> None:
    skus = [*skus_in_distinct_partitions(4, "batch"), *skus_in_one_partition(2, "pair")]
    await seed(client, {(s, loc): 10 for s in skus[:5] for loc in ("dc", "store-a")})
    for i, sku in enumerate(skus[:4]):
        r = await client.post(
            "/v1/holds",
            json={"lines": [{"sku": sku, "quantity": i + 1, "location": "dc"}], "ttl_seconds": 30},
        )
        assert r.status_code == 201, r.text
    clock.advance(20)
    r = await client.post(
        "/v1/holds",
        json={"lines": [{"sku": skus[0], "quantity": 2, "location": "store-a"}], "ttl_seconds": 60},
    )
    assert r.status_code == 201, r.text
    clock.advance(15)  # the first four holds have lapsed (no reaper runs), the last has not

    rows = await app.state.services.stock.read_rows(skus, locations)

    assert rows == await script_rows(app, clock, skus, locations)
    assert rows[-1] == []  # no position at all


async def test_a_batch_read_with_more_lapsed_lines_than_its_page_matches_the_script(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    skus = skus_in_distinct_partitions(2, "lapsed-page")
    await seed(client, {(s, "dc"): 40 for s in skus})
    for _ in range(_LAPSED_PAGE + 3):  # more lapsed lines than the transaction reads per sku
        r = await client.post(
            "/v1/holds", json={"lines": [{"sku": skus[0], "quantity": 1}], "ttl_seconds": 30}
        )
        assert r.status_code == 201, r.text
    clock.advance(31)

    rows = await app.state.services.stock.read_rows(skus, [])

    assert rows == await script_rows(app, clock, skus, [])
    assert rows[0] == ["dc", 40, 0, 0, 0, 40]  # every lapsed line left out, by the store's clock
