"""`omnistock keys new|hash` and the keys file: hashes only, validated when loaded, and a bad
or empty file never means "no authentication"."""

from __future__ import annotations

import hashlib
import io
import stat
from pathlib import Path

import httpx
import orjson
import pytest

from app.api.auth import KeyRing
from app.api.main import create_app
from app.cli import main
from app.credentials import KeysFileError, load
from tests.api.helpers import assert_problem
from tests.conftest import make_settings


def keys_new(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["keys", "new", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_keys_new_prints_the_key_once_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    code, out, err = keys_new(
        capsys, "--name", "web-shop", "--scope", "read", "--scope", "reserve", "--file", str(path)
    )
    assert code == 0, err
    key = out.strip()
    assert out == key + "\n" and key.startswith("osk_") and len(key) >= 40
    assert "only time the key is shown" in err
    text = path.read_text()
    assert key not in text
    (entry,) = orjson.loads(text)["keys"]
    assert entry == {
        "name": "web-shop",
        "sha256": hashlib.sha256(key.encode()).hexdigest(),
        "scopes": ["read", "reserve"],
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = KeyRing(load(path)).find(key)
    assert found is not None and found.scopes == {"read", "reserve"}


def test_keys_new_appends_and_uses_the_env_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.json"
    monkeypatch.setenv("OMNISTOCK_API_KEYS_FILE", str(path))
    first = keys_new(capsys, "--name", "a", "--scope", "admin")[1].strip()
    second = keys_new(capsys, "--name", "till", "--scope", "pos:store-12")[1].strip()
    ring = KeyRing(load(path))
    assert len(ring) == 2 and first != second
    a, till = ring.find(first), ring.find(second)
    assert a is not None and a.name == "a"
    assert till is not None and till.pos_location == "store-12"


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "x", "--scope", "root"],
        ["--name", "x", "--scope", "pos:a b"],
        ["--name", "x", "--scope", "pos:a", "--scope", "pos:b"],
        ["--name", "a name", "--scope", "read"],
    ],
)
def test_keys_new_with_a_bad_name_or_scope_exits_2_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    path = tmp_path / "keys.json"
    keys_new(capsys, "--name", "ok", "--scope", "read", "--file", str(path))
    before = path.read_bytes()
    code, out, err = keys_new(capsys, *args, "--file", str(path))
    assert (code, out) == (2, "")
    assert "omnistock keys new:" in err
    assert path.read_bytes() == before


def test_keys_new_without_a_file_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNISTOCK_API_KEYS_FILE", raising=False)
    code, out, err = keys_new(capsys, "--name", "x", "--scope", "read")
    assert (code, out) == (2, "")
    assert "--file" in err


def test_keys_hash_prints_the_sha256_from_an_argument_or_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = hashlib.sha256(b"osk_example").hexdigest()
    assert main(["keys", "hash", "osk_example"]) == 0
    assert capsys.readouterr().out == expected + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("osk_example\n"))
    assert main(["keys", "hash", "-"]) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_the_same_key_twice_in_the_file_is_refused(tmp_path: Path) -> None:
    entry = {"name": "a", "sha256": "b" * 64, "scopes": ["read"]}
    path = tmp_path / "keys.json"
    path.write_bytes(orjson.dumps({"keys": [entry, {**entry, "name": "b"}]}))
    with pytest.raises(KeysFileError, match="twice"):
        load(path)


def test_app_with_a_missing_keys_file_does_not_start(store_url: str, tmp_path: Path) -> None:
    with pytest.raises(KeysFileError, match="does not exist"):
        create_app(make_settings(store_url, api_keys_file=tmp_path / "nope.json"))


async def test_an_empty_keys_file_lets_nobody_in(store_url: str, tmp_path: Path) -> None:
    """Zero keys is "authentication on, nobody allowed", never "authentication off"."""
    path = tmp_path / "keys.json"
    path.write_text('{"keys": []}')
    app = create_app(make_settings(store_url, api_keys_file=path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            assert_problem(await c.get("/v1/locations"), 401, "unauthorized")
            r = await c.get("/v1/locations", headers={"Authorization": "Bearer osk_anything"})
            assert_problem(r, 401, "unauthorized")
            assert (await c.get("/healthz")).status_code == 200
