"""API keys added, revoked or broken while `omnistock serve --workers 2` runs: every worker
follows the file within 2 s (or at once on SIGHUP), and a bad file keeps the old keys.
`omnistock keys list|revoke`."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.cli import main
from app.credentials import append, hash_key, load

RELOAD_WITHIN = 2.0  # seconds: the file is polled every second


def status_by_worker(base_url: str, key: str, tries: int = 30) -> dict[str, set[int]]:
    """GET /v1/locations with `key`, each on a new connection (so both workers take some):
    the statuses seen per worker (a worker is its request ids' 16-hex-digit prefix)."""
    seen: dict[str, set[int]] = {}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=5) as client:
        # At least `tries` requests, and on until both workers answered (the kernel may hand
        # a run of connections to one worker; bounded at 10x).
        for n in range(tries * 10):
            r = client.get(f"{base_url}/v1/locations", headers=headers)
            seen.setdefault(r.headers["x-request-id"][:16], set()).add(r.status_code)
            if n + 1 >= tries and len(seen) >= 2:
                break
    return seen


def eventually_everywhere(base_url: str, key: str, status: int) -> float:
    """Wait until every worker answers `key` with `status` (and only that), in a round of
    requests begun within 2 s of the call (made right after the change)."""
    start = time.monotonic()
    while True:
        began = time.monotonic() - start
        seen = status_by_worker(base_url, key, tries=20)
        if len(seen) == 2 and all(codes == {status} for codes in seen.values()):
            return began
        assert began < RELOAD_WITHIN, f"in a round begun after {began:.1f} s: {seen}"
        time.sleep(0.05)


@pytest.fixture
def two_workers(store_url: str, tmp_path: Path, start_service: Any) -> Callable[[], Any]:
    def start(keys: Path) -> Any:
        return start_service(
            OMNISTOCK_REDIS_URL=store_url,
            OMNISTOCK_WORKERS="2",
            OMNISTOCK_API_KEYS_FILE=str(keys),
        )

    return start  # type: ignore[return-value]


@pytest.mark.slow
def test_a_key_added_or_revoked_in_the_file_takes_effect_on_every_worker_within_2_s(
    tmp_path: Path, two_workers: Any
) -> None:
    keys = tmp_path / "keys.json"
    admin = append(keys, "ops", ["admin"])
    service = two_workers(keys)
    eventually_everywhere(service.base_url, admin, 200)

    added = append(keys, "web-shop", ["read"])
    eventually_everywhere(service.base_url, added, 200)

    assert main(["keys", "revoke", "web-shop", "--file", str(keys)]) == 0
    eventually_everywhere(service.base_url, added, 401)
    eventually_everywhere(service.base_url, admin, 200)


@pytest.mark.slow
def test_a_broken_keys_file_keeps_the_old_keys_on_every_worker(
    tmp_path: Path, two_workers: Any
) -> None:
    keys = tmp_path / "keys.json"
    admin = append(keys, "ops", ["admin"])
    service = two_workers(keys)
    for broken in (b'{"keys": [', b'{"keys": [{"name": "x", "sha256": "00", "scopes": ["read"]}]}'):
        keys.write_bytes(broken)
        time.sleep(RELOAD_WITHIN)  # every worker has read it, and refused it
        seen = status_by_worker(service.base_url, admin)
        # Whichever worker the kernel hands the connections to, the old key still works.
        assert seen and all(codes == {200} for codes in seen.values()), seen
    log = service.log_path.read_text()
    # Each broken file was read and refused (one line per worker that polled it in time; on a
    # loaded machine a worker may not have, so at least one per file).
    assert log.count("keys file not reloaded, the previous keys stay in use") >= 2, log
    keys.unlink()
    time.sleep(RELOAD_WITHIN)
    eventually_everywhere(service.base_url, admin, 200)


def workers_of(serve_pid: int) -> list[int]:
    """The uvicorn worker processes of an `omnistock serve` (its spawned children)."""
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
    return [
        pid
        for pid in map(int, children)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


@pytest.mark.slow
def test_a_worker_restarted_while_the_keys_file_is_broken_starts_with_the_last_good_keys(
    tmp_path: Path, two_workers: Any
) -> None:
    # The serve process keeps the last file that loaded; before the fix a worker started
    # while the file was broken could not start at all (uvicorn retried it every 0.5 s).
    keys = tmp_path / "keys.json"
    append(keys, "ops", ["admin"])
    service = two_workers(keys)
    added = append(keys, "web-shop", ["read"])  # the last good file has this key
    eventually_everywhere(service.base_url, added, 200)
    before = set(status_by_worker(service.base_url, added))
    keys.write_bytes(b'{"keys": [')
    time.sleep(RELOAD_WITHIN)
    victim, _ = workers_of(service.proc.pid)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30  # a new worker's start takes seconds on a loaded machine
    while True:
        seen = status_by_worker(service.base_url, added)
        if len(seen) == 2 and seen.keys() != before:
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    assert all(codes == {200} for codes in seen.values()), seen
    assert "this worker starts with the last keys that loaded" in service.log_path.read_text()


@pytest.mark.slow
def test_sighup_reloads_the_keys_file_on_every_worker_even_when_it_looks_unchanged(
    tmp_path: Path, two_workers: Any
) -> None:
    # The new file has the same inode, size and mtime as the old: polling cannot see it, the
    # SIGHUP to the serve process (forwarded to each worker) must.
    keys = tmp_path / "keys.json"
    admin = append(keys, "ops", ["admin"])
    other = append(keys, "web-shop", ["read"])
    service = two_workers(keys)
    eventually_everywhere(service.base_url, other, 200)

    before = keys.stat()
    doc = orjson.loads(keys.read_bytes())
    replacement = "osk_" + "x" * (len(other) - 4)
    doc["keys"][1]["sha256"] = hash_key(replacement)  # same length: same file size
    with open(keys, "r+b") as fh:
        fh.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    os.utime(keys, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = keys.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    time.sleep(RELOAD_WITHIN)
    # Polling saw no change: the old key is still valid everywhere.
    workers = status_by_worker(service.base_url, other)
    assert len(workers) == 2 and all(codes == {200} for codes in workers.values())

    os.kill(service.proc.pid, signal.SIGHUP)
    eventually_everywhere(service.base_url, replacement, 200)
    eventually_everywhere(service.base_url, other, 401)
    # The same two worker processes (request id prefixes) answer: reloaded, not restarted.
    assert status_by_worker(service.base_url, admin).keys() == workers.keys()


def test_keys_list_shows_names_and_scopes_never_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    append(keys, "web-shop", ["read", "reserve"])
    append(keys, "till-12", ["pos:store-12"])
    assert main(["keys", "list", "--file", str(keys)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines() == [
        "NAME      SCOPES",
        "web-shop  read reserve",
        "till-12   pos:store-12",
    ]
    assert main(["keys", "list", "--json", "--file", str(keys)]) == 0
    out = capsys.readouterr().out
    assert orjson.loads(out) == {
        "keys": [
            {"name": "web-shop", "scopes": ["read", "reserve"]},
            {"name": "till-12", "scopes": ["pos:store-12"]},
        ]
    }
    for key in load(keys):
        assert key.digest.hex() not in text + out


def test_keys_revoke_removes_every_key_of_the_name_and_rewrites_the_file_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    append(keys, "web-shop", ["read"])
    kept = append(keys, "ops", ["admin"])
    append(keys, "web-shop", ["read"])  # mid-rotation: two keys of one name
    inode = keys.stat().st_ino
    assert main(["keys", "revoke", "web-shop", "--file", str(keys)]) == 0
    assert "revoked 2 key(s)" in capsys.readouterr().err
    (left,) = load(keys)
    assert left.name == "ops" and left.digest.hex() == hash_key(kept)
    assert keys.stat().st_ino != inode  # a new file renamed over: never half written
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temp file left
    assert main(["keys", "revoke", "web-shop", "--file", str(keys)]) == 1
    assert "no key named 'web-shop'" in capsys.readouterr().err
