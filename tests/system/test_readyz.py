"""/readyz is open to all: what it says about an unreachable store (its error text names the
store's address) goes to an admin caller only."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.api.main import create_app
from app.credentials import append
from app.domain.clock import ManualClock
from app.store.embedded import free_port
from tests.conftest import make_settings


async def test_readyz_shows_the_store_address_to_an_admin_key_only(
    tmp_path: Path, clock: ManualClock
) -> None:
    keys = tmp_path / "keys.json"
    admin_key = append(keys, "ops", ["admin"])
    read_key = append(keys, "reader", ["read"])
    port = free_port()  # nothing listens there
    app = create_app(make_settings(f"redis://127.0.0.1:{port}/0", api_keys_file=keys), clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            for headers in ({}, {"Authorization": f"Bearer {read_key}"}):
                r = await c.get("/readyz", headers=headers)
                assert r.status_code == 503
                assert r.json() == {
                    "status": "unavailable",
                    "store": "unreachable",
                    "detail": "the store did not answer",
                }
                assert str(port) not in r.text and "127.0.0.1" not in r.text
            r = await c.get("/readyz", headers={"Authorization": f"Bearer {admin_key}"})
            assert r.status_code == 503
            assert f"127.0.0.1:{port}" in r.json()["detail"]
