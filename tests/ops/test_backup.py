"""docs/operations.md's backup and restore, as written: `omnistock backup` of a running service's
embedded store (after a rewrite, so the AOF has a base and increments), the copy restored into
a new data directory, and a new service there finds every position and hold."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from app.cli import main
from app.store.embedded import embedded_store_url

POSITIONS = 40
HOLDS = 12


def put(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    r = client.put(path, json=body)
    assert r.status_code == 200, r.text


def write_stock(client: httpx.Client, first: int, last: int) -> None:
    for i in range(first, last):
        put(client, f"/v1/stock/SKU-{i}/dc", {"on_hand": 100 + i})


@pytest.mark.slow
def test_a_backup_of_a_running_store_restores_every_position_and_hold_in_a_new_data_dir(
    tmp_path: Path, start_service: Any
) -> None:
    data = tmp_path / "data"
    service = start_service(OMNISTOCK_DATA_DIR=str(data))
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        put(client, "/v1/locations/dc", {"priority": 1, "ship": True})
        put(client, "/v1/channels/web", {"locations": ["dc"]})
        write_stock(client, 0, POSITIONS // 2)
        # A rewrite: the AOF is now a base plus a new increment, as on a store that has run.
        url = embedded_store_url(data)
        assert url is not None
        Redis.from_url(url).bgrewriteaof()
        write_stock(client, POSITIONS // 2, POSITIONS)
        holds = {}
        for i in range(HOLDS):
            r = client.post(
                "/v1/holds",
                json={
                    "channel": "web",
                    "reference": f"cart-{i}",
                    "lines": [{"sku": f"SKU-{i}", "quantity": 1 + i % 3}],
                },
            )
            assert r.status_code == 201, r.text
            holds[r.json()["id"]] = r.json()

        backup = tmp_path / "backup"
        assert main(["backup", str(backup), "--data-dir", str(data)]) == 0
        store = Redis.from_url(url, decode_responses=True)
        rewrites = store.config_get("auto-aof-rewrite-percentage")
        assert rewrites == {"auto-aof-rewrite-percentage": "100"}  # on again
        store.close()
        client.put("/v1/stock/SKU-0/dc", json={"on_hand": 1})  # after the backup: not in it

    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copytree(backup / "appendonlydir", restored / "appendonlydir")
    copy = start_service(OMNISTOCK_DATA_DIR=str(restored))
    with httpx.Client(base_url=copy.base_url, timeout=10) as client:
        for i in range(POSITIONS):
            r = client.get(f"/v1/stock/SKU-{i}")
            assert r.status_code == 200, r.text
            (position,) = r.json()["positions"]
            assert position["on_hand"] == 100 + i
        for hold_id, created in holds.items():
            r = client.get(f"/v1/holds/{hold_id}")
            assert r.status_code == 200, r.text
            assert r.json()["lines"] == created["lines"]
            assert r.json()["status"] == "active"
        r = client.get("/v1/availability/SKU-1?channel=web")
        assert r.json()["available"] == 101 - 2  # SKU-1's hold of 2 still counts
