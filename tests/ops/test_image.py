"""What the container image runs, tested without Docker: the wheel the image installs (with
the Lua scripts and the board inside), and the image's exact ENTRYPOINT, CMD, environment
and HEALTHCHECK run as plain processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from app.credentials import hash_key
from app.store.embedded import free_port
from tests.conftest import bare_store
from tests.ops.dockerfile import Stage, parse

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps` of the project, as the image's build stage makes it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("omnistock-*.whl")
    return built


def test_wheel_contains_every_lua_script_and_include(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = [p.relative_to(ROOT / "lua") for p in (ROOT / "lua").rglob("*.lua")]
    assert len(sources) > 10
    for source in sources:
        assert f"app/lua/{source}" in names, source


def test_wheel_contains_the_board(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for page in (ROOT / "app" / "board").iterdir():
        assert f"app/board/{page.name}" in names


def test_installed_wheel_loads_its_packaged_scripts_and_board(wheel: Path, tmp_path: Path) -> None:
    """Installed (not the source tree): lua_dir() finds app/lua inside the package, includes
    expand, and the board's files are there."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import app, app.store.scripts as s, app.api.board as b;"
        "print(app.__file__); print(s.lua_dir()); print(b.BOARD_DIR);"
        "src = s.script_source('hold_reserve'); print('--!include' in src, len(src))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=tmp_path,  # not the repository: its `app/` and `lua/` must not be found
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    package, lua, board, expanded = out
    assert package == str(target / "app" / "__init__.py")
    assert lua == str(target / "app" / "lua")
    assert Path(board, "index.html").is_file() and board.startswith(str(target))
    has_include, length = expanded.split()
    assert (
        has_include == "False" and int(length) > (ROOT / "lua" / "hold_reserve.lua").stat().st_size
    )


# -- the image's command, environment and healthcheck -------------------------------------


@pytest.fixture(scope="module")
def runtime() -> Stage:
    return parse(ROOT / "Dockerfile")[-1]


def image_env(runtime: Stage, **overrides: str) -> dict[str, str]:
    """This machine's environment without OMNISTOCK_*, then the image's ENV, then overrides;
    the venv's bin first on PATH, as the image's pip install puts `omnistock` on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNISTOCK_", "PROMETHEUS_"))}
    env.update(runtime.env())
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def healthcheck(runtime: Stage, env: dict[str, str]) -> int:
    _, command = runtime.healthcheck()
    return subprocess.run(command, env=env, capture_output=True, timeout=10).returncode


@pytest.fixture
def own_store(server_binary: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A store of this test's own, so the test can stop it."""
    port = free_port()
    proc = bare_store(server_binary, port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0", proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_image_command_serves_and_turns_healthy_then_red_when_the_store_goes(
    runtime: Stage, own_store: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """ENTRYPOINT + CMD with the image's ENV (0.0.0.0, JSON logs) and what compose adds (a
    store URL, a keys file): the HEALTHCHECK command passes once ready, the API asks for a
    key, the logs are JSON, /readyz and the healthcheck go red without the store, and a
    docker-stop SIGTERM ends it cleanly."""
    store_url, store = own_store
    key = "osk_image-test-admin-key-00000000000001"
    keys = tmp_path / "api-keys.json"
    keys.write_bytes(
        orjson.dumps({"keys": [{"name": "ops", "sha256": hash_key(key), "scopes": ["admin"]}]})
    )
    port = free_port()
    env = image_env(
        runtime,
        OMNISTOCK_PORT=str(port),
        OMNISTOCK_REDIS_URL=store_url,
        OMNISTOCK_API_KEYS_FILE=str(keys),
        OMNISTOCK_DATA_DIR=str(tmp_path / "data"),
    )
    command = runtime.exec_form("ENTRYPOINT") + runtime.exec_form("CMD")
    log = tmp_path / "container.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while healthcheck(runtime, env) != 0:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.get(f"{base}/v1/locations").status_code == 401
        r = httpx.get(f"{base}/v1/locations", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        store.kill()
        store.wait()
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 503
        assert healthcheck(runtime, env) != 0
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal (docker sees exit 143)
        assert proc.wait(15) in (0, -15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines and all(line.startswith("{") for line in lines), lines[:5]
    assert "Application shutdown complete." in log.read_text()
    assert key not in log.read_text()


def test_image_command_refuses_to_serve_without_api_keys(runtime: Stage, store_url: str) -> None:
    """The image listens on 0.0.0.0, so without a keys file it must not start."""
    env = image_env(runtime, OMNISTOCK_PORT=str(free_port()), OMNISTOCK_REDIS_URL=store_url)
    command = runtime.exec_form("ENTRYPOINT") + runtime.exec_form("CMD")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in result.stderr


def test_healthcheck_fails_when_nothing_answers(runtime: Stage) -> None:
    env = image_env(runtime, OMNISTOCK_PORT=str(free_port()))
    assert healthcheck(runtime, env) != 0


def test_image_entrypoint_answers_help(runtime: Stage) -> None:
    env = image_env(runtime)
    command = [*runtime.exec_form("ENTRYPOINT"), "--help"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "serve" in result.stdout
