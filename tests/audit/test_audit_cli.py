"""`omnistock audit` as a user runs it: exit codes, output, consent for --fix."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.store.embedded import free_port
from tests.api.helpers import hold
from tests.conftest import seed, service_env

SKU = "cli-audit"
P = keys.partition_of(SKU)
DRIFTED = "5:9:0:0"  # the one hold holds 2


def audit_cli(*args: str, url: str, stdin: int | None = subprocess.DEVNULL, **env: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "app", "audit", *args],
        env=service_env(**({"OMNISTOCK_REDIS_URL": url} if url else {}), **env),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def drifted(client: httpx.AsyncClient, redis: Redis) -> None:
    await seed(client, {(SKU, "dc"): 5})
    await hold(client, [{"sku": SKU, "quantity": 2}])
    await redis.hset(keys.position(P, SKU), "dc", DRIFTED)


async def stored(redis: Redis) -> str | None:
    value: Any = await redis.hget(keys.position(P, SKU), "dc")
    return value


async def test_a_clean_store_exits_0_with_a_summary_and_progress_on_stderr(
    client: httpx.AsyncClient, store_url: str
) -> None:
    await seed(client, {(SKU, "dc"): 5})
    await hold(client, [{"sku": SKU, "quantity": 2}])
    r = audit_cli(url=store_url)
    assert r.returncode == 0, r.stderr
    assert "1 hold records, 1 positions" in r.stdout
    assert "clean" in r.stdout
    assert "audit: 256/256 partitions, 0 findings" in r.stderr


async def test_drift_exits_1_and_json_lists_every_finding(drifted: None, store_url: str) -> None:
    r = audit_cli("--json", "--quiet", url=store_url)
    assert r.returncode == 1, r.stderr
    report = orjson.loads(r.stdout)["audit"]
    assert report["clean"] is False
    assert [(f["kind"], f["sku"], f["stored"], f["expected"]) for f in report["findings"]] == [
        ("counter_drift", SKU, {"held": 9, "committed": 0}, {"held": 2, "committed": 0})
    ]
    assert r.stderr == ""


async def test_fix_without_consent_is_refused_with_exit_2_and_changes_nothing(
    drifted: None, store_url: str, redis: Redis
) -> None:
    r = audit_cli("--fix", url=store_url)
    assert r.returncode == 2
    assert "--yes" in r.stderr
    assert await stored(redis) == DRIFTED


async def test_fix_yes_repairs_from_the_hold_records_and_exits_0(
    drifted: None, store_url: str, redis: Redis
) -> None:
    r = audit_cli("--fix", "--yes", "--json", url=store_url)
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert out["audit"]["clean"] is False
    assert [c["kind"] for c in out["repairs"]] == ["counters"]
    assert out["after_repair"]["clean"] is True
    assert await stored(redis) == "5:2:0:0"


def run_on_a_terminal(answer: bytes, url: str) -> Any:
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer)
        return audit_cli("--fix", url=url, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)


async def test_fix_on_a_terminal_asks_and_repairs_after_yes(
    drifted: None, store_url: str, redis: Redis
) -> None:
    r = run_on_a_terminal(b"y\n", store_url)
    assert "[y/N]" in r.stderr
    assert r.returncode == 0, r.stderr
    assert await stored(redis) == "5:2:0:0"


async def test_fix_on_a_terminal_changes_nothing_unless_the_answer_is_yes(
    drifted: None, store_url: str, redis: Redis
) -> None:
    r = run_on_a_terminal(b"\n", store_url)
    assert "[y/N]" in r.stderr
    assert r.returncode == 1
    assert "not repaired" in r.stderr
    assert await stored(redis) == DRIFTED


def test_an_unreachable_store_exits_3() -> None:
    r = audit_cli(url=f"redis://127.0.0.1:{free_port()}/0")
    assert r.returncode == 3
    assert "unreachable" in r.stderr


async def test_partition_audits_only_the_partitions_named(drifted: None, store_url: str) -> None:
    elsewhere = audit_cli("--partition", str((P + 1) % keys.PARTITIONS), url=store_url)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "audit: 1 partitions" in elsewhere.stdout
    here = audit_cli("--partition", str(P), url=store_url)
    assert here.returncode == 1


@pytest.mark.slow
def test_without_a_url_it_audits_the_embedded_store_of_a_running_service(
    tmp_path: Path, start_service: Any
) -> None:
    data = tmp_path / "data"
    service = start_service(OMNISTOCK_DATA_DIR=str(data))
    with httpx.Client(base_url=service.base_url, timeout=10) as c:
        assert c.put("/v1/locations/dc", json={"priority": 1}).status_code == 200
        assert c.put(f"/v1/stock/{SKU}/dc", json={"on_hand": 5}).status_code == 200
        r = c.post("/v1/holds", json={"lines": [{"sku": SKU, "quantity": 1}]})
        assert r.status_code == 201
    result = audit_cli("--quiet", url="", OMNISTOCK_DATA_DIR=str(data))
    assert result.returncode == 0, result.stderr
    assert "1 hold records, 1 positions" in result.stdout
