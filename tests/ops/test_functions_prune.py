"""`omnistock functions list|prune` (app/cli/functions.py) on a real store, one server and the
suite's cluster (3 primaries with replicas): it tells this code's libraries from another
version's (stale) and from another application's (foreign), deletes only the stale ones and
only with --delete; and deleting a library that a running service calls is safe on every call
path, because the service loads it again on "Function not found"."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app.api.main import create_app
from app.cli import main
from app.cli.functions import _field, _text, current_libraries
from app.domain.clock import ManualClock
from app.store.calls import Script
from app.store.embedded import free_port
from app.store.scripts import library
from tests.cluster.conftest import local_cluster
from tests.cluster.support import LocalCluster, Node
from tests.conftest import is_cluster_url, make_settings, seed

STALE = "os_hold_reserve_0000000000000000"  # another version's hold_reserve.lua
FOREIGN = "otherapp"


def lib(name: str, function: str) -> str:
    return f"#!lua name={name}\nredis.register_function('{function}', function() return 1 end)\n"


async def on_primaries(redis: Redis, *command: Any) -> list[Any]:
    """`command` on every primary (the one server): each one's reply."""
    return [await redis.execute_command(*command, **node) for node in await _nodes(redis)]


async def names_on_primaries(redis: Redis) -> list[set[str]]:
    listed = await on_primaries(redis, "FUNCTION", "LIST")
    return [{entry["library_name"] for entry in each} for each in listed]


async def _delete_everywhere(redis: Redis, name: str) -> None:
    for names, node in zip(await names_on_primaries(redis), await _nodes(redis), strict=True):
        if name in names:
            await redis.execute_command("FUNCTION", "DELETE", name, **node)


async def _nodes(redis: Redis) -> list[dict[str, Any]]:
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        return [{"target_nodes": n} for n in sorted(redis.get_primaries(), key=lambda n: n.name)]
    return [{}]


@pytest.fixture
async def planted(redis: Redis) -> AsyncIterator[Redis]:
    """The store with a stale and a foreign library on every primary, and no other library
    but the service's (other tests' on the shared store are deleted first; the foreign one is
    removed afterwards: FLUSHALL before the next test leaves functions)."""
    current = current_libraries()
    strays = set().union(*await names_on_primaries(redis)) - current
    for name in strays:
        await _delete_everywhere(redis, name)
    await on_primaries(redis, "FUNCTION", "LOAD", "REPLACE", lib(STALE, STALE))
    await on_primaries(redis, "FUNCTION", "LOAD", "REPLACE", lib(FOREIGN, "otherapp_call"))
    yield redis
    await on_primaries(redis, "FUNCTION", "FLUSH")


async def run(argv: list[str]) -> int:
    """`omnistock ARGV` in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, argv)


def cli(store_url: str, *args: str) -> list[str]:
    argv = ["functions", *args, "--redis-url", store_url]
    return argv + (["--redis-cluster"] if is_cluster_url(store_url) else [])


async def test_list_marks_this_codes_libraries_another_versions_and_anothers(
    client: httpx.AsyncClient, planted: Redis, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(client, {("SKU-F", "dc"): 3})  # the service loaded its libraries
    primaries = len(await names_on_primaries(planted))
    assert await run(cli(store_url, "list", "--json")) == 0
    out = orjson.loads(capsys.readouterr().out)
    by_status: dict[str, set[str]] = {}
    for entry in out["libraries"]:
        by_status.setdefault(entry["status"], set()).add(entry["library"])
    assert by_status["stale"] == {STALE}
    assert by_status["foreign"] == {FOREIGN}
    assert library(Script.HOLD_RESERVE.value).name in by_status["current"]
    assert by_status["current"] <= current_libraries()
    assert out["nodes"] == primaries and out["stale"] == primaries
    assert out["stale_bytes"] == primaries * len(lib(STALE, STALE))

    assert await run(cli(store_url, "list")) == 0
    text = capsys.readouterr().out
    assert re.search(rf"^\S+ +{STALE} +hold_reserve +[\d.]+ +stale$", text, re.M), text
    assert re.search(rf"^\S+ +{FOREIGN} +- +[\d.]+ +foreign$", text, re.M), text
    assert f"{primaries} stale" in text and "prune --delete" in text


async def test_prune_is_a_dry_run_unless_told_to_delete_and_deletes_only_the_stale(
    client: httpx.AsyncClient, planted: Redis, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(client, {("SKU-F", "dc"): 3})
    before = await names_on_primaries(planted)
    assert await run(cli(store_url, "prune")) == 0
    assert "dry run" in capsys.readouterr().out
    assert await names_on_primaries(planted) == before

    assert await run(cli(store_url, "prune", "--delete", "--json")) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["deleted"] == len(before) and report["dry_run"] is False
    after = await names_on_primaries(planted)
    assert after == [names - {STALE} for names in before]
    assert all(FOREIGN in names for names in after)

    assert await run(cli(store_url, "prune", "--delete")) == 0
    assert "no stale library" in capsys.readouterr().out
    hold = await client.post("/v1/holds", json={"lines": [{"sku": "SKU-F", "quantity": 1}]})
    assert hold.status_code == 201, hold.text


# The call paths of a script call: the multiplexer (one server), redis-py's cluster client,
# and the writers that wait (group commit on one server, pooled pipelines on a cluster).
PATHS = {"plain": {}, "waiting": {"wait_aof": True}}


@pytest.mark.parametrize("path", PATHS)
async def test_a_library_deleted_under_a_running_service_is_loaded_again_on_its_next_call(
    redis: Redis, store_url: str, path: str
) -> None:
    overrides: dict[str, Any] = dict(PATHS[path])
    if overrides and is_cluster_url(store_url):
        overrides = {"wait_replicas": 1}
    app = create_app(make_settings(store_url, **overrides), ManualClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            await seed(c, {("SKU-D", "dc"): 5})
            for script in (Script.HOLD_RESERVE, Script.HOLD_COMMIT, Script.AVAILABILITY):
                name = library(script.value).name
                assert all(name in names for names in await names_on_primaries(redis))
                await on_primaries(redis, "FUNCTION", "DELETE", name)  # what prune does
            hold = await c.post("/v1/holds", json={"lines": [{"sku": "SKU-D", "quantity": 2}]})
            assert hold.status_code == 201, hold.text
            commit = await c.post(f"/v1/holds/{hold.json()['id']}/commit")
            assert commit.status_code == 200, commit.text
            read = await c.get("/v1/availability/SKU-D")
            assert read.status_code == 200 and read.json()["available"] == 3, read.text


@pytest.mark.parametrize("action", ["list", "prune"])
def test_a_store_that_does_not_answer_exits_3_naming_the_action(
    action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["functions", action, "--redis-url", url]) == 3
    assert capsys.readouterr().err.startswith(f"omnistock functions {action}: store unreachable")


# -- a cluster with a primary down ------------------------------------------------------


@pytest.fixture(scope="module")
def one_primary_down(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalCluster, list[Node], Node]]:
    """3 primaries without replicas (none takes over), the last one killed: (cluster, the
    live primaries, the dead one)."""
    with local_cluster(server_binary, tmp_path_factory.mktemp("down"), replicas=0) as cluster:
        *up, down = cluster.primary_nodes()
        for node in (*up, down):
            node.call("FUNCTION", "LOAD", "REPLACE", lib(STALE, STALE))
        cluster.kill(down)
        yield cluster, up, down


def names_on(node: Node) -> set[str]:
    listed: Any = node.call("FUNCTION", "LIST")
    return {_text(_field(entry, "library_name")) for entry in listed}


def prune_on(cluster: LocalCluster, *flags: str) -> int:
    """`omnistock functions prune --delete FLAGS` on `cluster`: the exit code."""
    argv = ["functions", "prune", "--delete", *flags]
    return main([*argv, "--redis-url", cluster.seeds, "--redis-cluster"])


@pytest.fixture
def stale_on_the_live_primaries(
    one_primary_down: tuple[LocalCluster, list[Node], Node],
) -> tuple[LocalCluster, list[Node], Node]:
    cluster, up, down = one_primary_down
    for node in up:
        node.call("FUNCTION", "LOAD", "REPLACE", lib(STALE, STALE))
    return cluster, up, down


@pytest.mark.cluster
def test_a_primary_down_fails_prune_with_exit_3_and_nothing_deleted(
    stale_on_the_live_primaries: tuple[LocalCluster, list[Node], Node],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster, up, _ = stale_on_the_live_primaries
    assert prune_on(cluster) == 3
    assert "--skip-unreachable" in capsys.readouterr().err
    assert all(STALE in names_on(node) for node in up)


@pytest.mark.cluster
def test_skip_unreachable_prunes_the_primaries_that_answer_names_the_other_and_exits_4(
    stale_on_the_live_primaries: tuple[LocalCluster, list[Node], Node],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster, up, down = stale_on_the_live_primaries
    assert prune_on(cluster, "--skip-unreachable", "--json") == 4
    out, err = capsys.readouterr()
    report = orjson.loads(out)
    where = f"127.0.0.1:{down.port}"
    assert report["unreachable"] == [where] and report["deleted"] == len(up)
    assert f"primary {where} unreachable, skipped" in err
    assert not any(STALE in names_on(node) for node in up)
