"""`omnistock serve` on its own embedded store: persistence, supervision, isolation."""

from __future__ import annotations

import os
import re
import signal
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app import keys
from app.store.embedded import EmbeddedStore, EmbeddedStoreError

pytestmark = pytest.mark.slow


def _seed_sync(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.put("/v1/locations/dc", json={"priority": 1}).status_code == 200
        assert c.put("/v1/channels/web", json={"locations": ["dc"]}).status_code == 200
        assert c.put("/v1/stock/sku-1/dc", json={"on_hand": 10}).status_code == 200


def _store_pid(log_path: Path) -> int:
    match = re.search(r"embedded store \(pid (\d+)\)", log_path.read_text())
    assert match, log_path.read_text()
    return int(match.group(1))


def test_positions_and_holds_survive_a_service_restart(tmp_path: Path, start_service: Any) -> None:
    data = str(tmp_path / "data")
    first = start_service(OMNISTOCK_DATA_DIR=data)
    _seed_sync(first.base_url)
    with httpx.Client(base_url=first.base_url, timeout=10) as c:
        hold = c.post(
            "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 3}]}
        )
        assert hold.status_code == 201
        committed = c.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 2}]}).json()
        assert c.post(f"/v1/holds/{committed['id']}/commit").status_code == 200
    first.stop()

    second = start_service(OMNISTOCK_DATA_DIR=data)
    with httpx.Client(base_url=second.base_url, timeout=10) as c:
        position = c.get("/v1/stock/sku-1").json()["positions"][0]
        assert position == {
            "location": "dc",
            "on_hand": 10,
            "held": 3,
            "committed": 2,
            "safety_stock": 0,
            "available": 5,
        }
        assert c.get(f"/v1/holds/{hold.json()['id']}").json()["status"] == "active"
        assert c.get(f"/v1/holds/{committed['id']}").json()["status"] == "committed"
        assert c.get("/v1/channels").json()["channels"][0]["id"] == "web"


def test_a_killed_embedded_store_is_restarted_from_its_aof_and_the_service_recovers(
    tmp_path: Path, start_service: Any
) -> None:
    service = start_service(OMNISTOCK_DATA_DIR=str(tmp_path / "data"))
    _seed_sync(service.base_url)
    with httpx.Client(base_url=service.base_url, timeout=10) as c:
        hold = c.post("/v1/holds", json={"lines": [{"sku": "sku-1", "quantity": 4}]})
        assert hold.status_code == 201
        old_pid = _store_pid(service.log_path)
        os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                r = c.get(f"/v1/holds/{hold.json()['id']}")
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "active"
        assert c.get("/v1/stock/sku-1").json()["positions"][0]["held"] == 4
        assert "restarting from its AOF" in service.log_path.read_text()


def test_embedded_store_persists_every_write_with_appendfsync_always(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "data", supervise=False) as store:
        client = redis.Redis.from_url(store.url)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        client.close()


def test_embedded_store_refuses_connections_without_its_password(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "data", supervise=False) as store:
        anonymous = redis.Redis(host="127.0.0.1", port=store.port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()


def test_two_services_cannot_share_one_data_directory(tmp_path: Path) -> None:
    with (
        EmbeddedStore(tmp_path / "data", supervise=False),
        pytest.raises(EmbeddedStoreError, match="in use"),
    ):
        EmbeddedStore(tmp_path / "data", supervise=False).start()


def test_serve_with_a_store_url_uses_that_server_and_starts_none(
    store_url: str, tmp_path: Path, start_service: Any
) -> None:
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_DATA_DIR=str(tmp_path / "d"))
    _seed_sync(service.base_url)
    assert "embedded store" not in service.log_path.read_text()
    assert not (tmp_path / "d").exists()
    direct = redis.Redis.from_url(store_url, decode_responses=True)
    assert direct.hget(keys.position(keys.partition_of("sku-1"), "sku-1"), "dc") == "10:0:0:0"
    direct.close()


def _modes(data: Path) -> dict[str, str]:
    return {
        str(path.relative_to(data)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [data, *data.rglob("*")]
    }


def _data_dir_with_one_write(data: Path) -> Path:
    with EmbeddedStore(data, supervise=False) as store:
        client = redis.Redis.from_url(store.url)
        client.set("acknowledged", "1")
        client.close()
    return data


def test_the_embedded_store_keeps_its_data_files_and_log_owner_only(tmp_path: Path) -> None:
    data = _data_dir_with_one_write(tmp_path / "data")
    modes = _modes(data)
    assert {"store.log", "store.password", "omnistock.lock", "appendonlydir"} <= modes.keys()
    owner_only = {p: oct(0o700 if (data / p).is_dir() else 0o600) for p in modes}
    assert modes == owner_only

    # What an older version left readable to others is made owner-only at the next start.
    (data / "store.log").chmod(0o644)
    (data / "appendonlydir").chmod(0o755)
    for aof in (data / "appendonlydir").iterdir():
        aof.chmod(0o644)
    with EmbeddedStore(data, supervise=False):
        assert _modes(data) == owner_only


def test_an_aof_whose_last_write_was_cut_short_loads_and_takes_writes(tmp_path: Path) -> None:
    data = _data_dir_with_one_write(tmp_path / "data")
    (incr,) = (data / "appendonlydir").glob("*.incr.aof")
    with open(incr, "ab") as fh:  # what a write cut short by a full disk or a crash leaves
        fh.write(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nwr")
    with EmbeddedStore(data, supervise=False) as store:
        client = redis.Redis.from_url(store.url)
        assert client.get("acknowledged") == b"1"
        assert client.get("half") is None
        assert client.set("after", "1")
        client.close()
