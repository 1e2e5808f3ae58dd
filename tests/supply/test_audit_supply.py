"""`omnistock audit` covers promised units: promised <= supply, no orphan promise, every
promise belongs to an open hold that lists it."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from app import keys
from app.domain.audit import Auditor, AuditReport
from app.domain.clock import ManualClock
from app.store.scripts import Scripts
from tests.conftest import seed
from tests.supply.helpers import backorder, days, ok_supply

SKU = "pre-audit"
P = keys.partition_of(SKU)


@pytest.fixture
async def auditor(redis: Redis, clock: ManualClock) -> Auditor:
    return Auditor(redis, Scripts.register(redis), clock, parts_grace=0.2)


@pytest.fixture
async def hold_id(client: httpx.AsyncClient) -> str:
    await seed(client, {(SKU, "dc"): 1})
    await ok_supply(client, SKU, "dc", "po", 5, days(4))
    r = await backorder(client, [{"sku": SKU, "quantity": 4}])
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def kinds(report: AuditReport) -> list[str]:
    return sorted(f.kind for f in report.findings)


async def test_a_store_with_promises_written_by_the_service_is_clean(
    hold_id: str, auditor: Auditor
) -> None:
    report = await auditor.audit([P])
    assert report.clean, report.as_dict()


async def test_more_promised_than_the_line_holds_is_found(
    hold_id: str, auditor: Auditor, redis: Redis
) -> None:
    field = f"{hold_id}|dc|po"
    value = str(await redis.hget(keys.promises(P, SKU), field))
    await redis.hset(keys.promises(P, SKU), field, "9|" + value.split("|", 1)[1])
    assert kinds(await auditor.audit([P])) == ["promise_over_supply"]


async def test_a_promise_on_a_missing_line_is_an_orphan(
    hold_id: str, auditor: Auditor, redis: Redis
) -> None:
    await redis.hdel(keys.supply(P, SKU), "dc|po")
    assert kinds(await auditor.audit([P])) == ["promise_orphan"]


async def test_a_promise_of_a_released_hold_is_found(
    hold_id: str, auditor: Auditor, redis: Redis
) -> None:
    await redis.hset(keys.hold(P, hold_id), "status", "released")
    assert "promise_without_hold" in kinds(await auditor.audit([P]))
