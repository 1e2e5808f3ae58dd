"""Protected mode: without API keys `omnistock serve` serves only on loopback and says so; on
any other address it refuses to start (exit 2). A keys file it cannot read stops it too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli.serve import check_protected_mode, is_loopback
from app.credentials import append
from app.settings import Settings
from tests.conftest import service_env


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`omnistock serve` expected to exit at once (before any store or socket is opened)."""
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", "--log-format", "text", *args],
        env=service_env(OMNISTOCK_DATA_DIR=str(tmp_path / "data"), **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "omnistock.example"])
def test_serve_without_keys_on_a_non_loopback_host_refuses_to_start(
    tmp_path: Path, host: str
) -> None:
    done = serve(tmp_path, "--host", host, "--port", "1")
    assert done.returncode == 2, done.stderr
    assert f"refusing to serve on {host} without API keys" in done.stderr
    assert "OMNISTOCK_API_KEYS_FILE" in done.stderr
    assert not (tmp_path / "data").exists()  # refused before the embedded store started


def test_serve_without_keys_on_loopback_starts_and_says_protected_mode(
    start_service: Any, store_url: str
) -> None:
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_LOG_FORMAT="text")
    log = service.log_path.read_text()
    assert "protected mode: no API keys" in log
    assert "loopback address 127.0.0.1 only" in log
    assert httpx.get(f"{service.base_url}/v1/locations").status_code == 200


def test_serve_with_keys_requires_them(start_service: Any, store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = append(path, "ops", ["read"])
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_API_KEYS_FILE=str(path))
    assert "protected mode" not in service.log_path.read_text()
    assert httpx.get(f"{service.base_url}/v1/locations").status_code == 401
    ok = httpx.get(f"{service.base_url}/v1/locations", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "API keys file"),
        ('{"keys": [{"name": "x", "sha256": "abc", "scopes": ["read"]}]}', "sha256 must be"),
        (
            '{"keys": [{"name": "x", "sha256": "' + "a" * 64 + '", "scopes": ["root"]}]}',
            "unknown scope",
        ),
    ],
)
def test_serve_with_an_unreadable_keys_file_refuses_to_start(
    tmp_path: Path, content: str | None, message: str
) -> None:
    """Never fall back to serving without authentication because of a typo."""
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content)
    done = serve(tmp_path, "--host", "0.0.0.0", "--port", "1", OMNISTOCK_API_KEYS_FILE=str(path))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("localhost.example", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_with_keys_any_host_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    append(path, "ops", ["admin"])
    assert check_protected_mode(Settings(host="0.0.0.0", api_keys_file=path)) is None
    assert check_protected_mode(Settings(host="0.0.0.0")) == 2
