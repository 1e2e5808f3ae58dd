"""The app with API keys: one key per scope the contract names, made by the same code as
`omnistock keys new`, and clients that send them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.credentials import append
from app.settings import Settings
from tests.conftest import make_settings

# The callers of the auth matrix: a key per scope, no key, and a well-formed unknown key.
SCOPES = ("read", "reserve", "pos:store-a", "pos:store-b", "admin")
WRONG_KEY = "osk_" + "A" * 43


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The keys file and the key of each scope (the file holds only their hashes)."""
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    api_keys = {scope: append(path, f"client-{scope}", [scope]) for scope in SCOPES}
    return path, api_keys


@pytest.fixture
def api_keys(keys_file: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return keys_file[1]


@pytest.fixture
def settings(store_url: str, keys_file: tuple[Path, dict[str, str]]) -> Settings:
    return make_settings(store_url, api_keys_file=keys_file[0])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def admin(app: FastAPI, api_keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client sending the admin key (the `client` fixture sends none)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://omnistock", headers=bearer(api_keys["admin"])
    ) as c:
        yield c
