"""The service under fuzzing: one real `omnistock serve` process for the module (uvicorn's own
HTTP parsing is part of what a hostile client reaches), on the suite's store, seeded with a few
short ids that generated cases hit often ("0", "A", ...), so requests get past 404s into the
code that reserves and moves stock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from redis import Redis as SyncRedis

from app.credentials import hash_key, new_key
from app.store.embedded import EmbeddedStore, free_port
from tests.conftest import ServiceProcess, service_env

# The service runs with API keys, as deployed: the fuzzer sends this admin key, and the cases
# that drop or mangle it must get a 401 problem.
ADMIN_KEY = new_key()

SEED_LOCATIONS = {"0": 1, "A": 2, "a": 3, "dc": 4, "-": 5}
SEED_CHANNELS = {"0": ["0", "A"], "web": ["0", "A", "a", "dc"]}
SEED_SKUS = ["0", "A", "a", "sku-1"]


@pytest.fixture(scope="module")
def fuzz_service(
    store_server: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    client = SyncRedis.from_url(store_server.url)
    client.flushall()
    client.close()
    port = free_port()
    workdir = tmp_path_factory.mktemp("fuzz")
    keys_file = workdir / "keys.json"
    keys_file.write_bytes(
        orjson.dumps(
            {"keys": [{"name": "fuzz", "sha256": hash_key(ADMIN_KEY), "scopes": ["admin"]}]}
        )
    )
    env = service_env(OMNISTOCK_REDIS_URL=store_server.url, OMNISTOCK_API_KEYS_FILE=str(keys_file))
    service = ServiceProcess(env, port, workdir / "service.log")
    try:
        service.wait_ready()
        _seed(service.base_url)
        yield service
    finally:
        service.stop()


def _seed(base_url: str) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base_url, headers=auth) as c:

        def ok(r: httpx.Response) -> Any:
            assert r.status_code < 300, r.text
            return r.json()

        for loc, priority in SEED_LOCATIONS.items():
            ok(c.put(f"/v1/locations/{loc}", json={"priority": priority, "ship": True}))
        for ch, locs in SEED_CHANNELS.items():
            ok(c.put(f"/v1/channels/{ch}", json={"locations": locs, "low_stock_threshold": 2}))
        for sku in SEED_SKUS:
            for loc in SEED_LOCATIONS:
                ok(c.put(f"/v1/stock/{sku}/{loc}", json={"on_hand": 1000, "safety_stock": 1}))
        # A few holds in every state, so the hold endpoints have something to act on.
        for _ in range(3):
            ok(c.post("/v1/holds", json={"lines": [{"sku": "0", "quantity": 1}]}))
        h = ok(c.post("/v1/holds", json={"lines": [{"sku": "A", "quantity": 1}]}))
        ok(c.post(f"/v1/holds/{h['id']}/commit"))
