"""`omnistock functions list|prune`: the Valkey function libraries on the store, and the
deletion of the ones no version of this code calls any more.

Every `lua/` script runs as a function library named `os_<script>_<16 hex of its text>`
(app/store/functions.py), loaded where missing. A deploy that changes a script (or an
include) loads the new library beside the old one, and nothing ever deletes the old one: each
deploy leaves a library per changed script on every primary (and its replicas), a few hundred
KB each. `list` shows every library and what it is:

- `current`: a library of this code's scripts (the `lua/` files next to this CLI);
- `stale`: an `os_` library of another version (earlier or later) of the scripts;
- `foreign`: not named `os_...`: another application's; never deleted.

`prune` lists the stale ones and, with `--delete`, deletes them (FUNCTION DELETE, on every
primary of a cluster; replicas follow). Safe while any version serves: a service that calls a
deleted library gets "Function not found", loads it again and sends the call once more
(app/store/scripts.py), so a host of the previous version still running merely re-creates its
library (prune again once the last one stopped). Run it with the version that is deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as StoreTimeoutError

from app.cli.common import (
    OK,
    PARTIAL,
    UNREACHABLE,
    CliError,
    add_action,
    command,
    command_group,
    open_store,
    print_table,
    store_settings,
)
from app.logs import redact
from app.store.scripts import library, lua_dir

_OURS = re.compile(r"^os_(\w+)_([0-9a-f]{16})$")
CURRENT, STALE, FOREIGN = "current", "stale", "foreign"
# A node that does not answer (down, or its address refuses us): --skip-unreachable skips it.
_NO_ANSWER = (StoreConnectionError, StoreTimeoutError, OSError)


def current_libraries() -> set[str]:
    """The library names of this code's scripts: one per `lua/*.lua` (includes aside)."""
    return {library(path.stem).name for path in sorted(lua_dir().glob("*.lua"))}


@dataclass(frozen=True)
class Found:
    node: str  # host:port (the server's address for one server)
    name: str
    bytes: int  # the library's code

    def status(self, current: set[str]) -> str:
        if _OURS.match(self.name) is None:
            return FOREIGN
        return CURRENT if self.name in current else STALE

    def script(self) -> str:
        match = _OURS.match(self.name)
        return match.group(1) if match else ""


def _field(entry: Any, name: str) -> Any:
    """One field of a FUNCTION LIST entry (a flat list, or a dict with RESP3)."""
    pairs = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=False))
    return pairs.get(name, pairs.get(name.encode()))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def _primaries(redis: Redis) -> list[tuple[str, dict[str, Any]]]:
    """Each server to work on, with its address and the options that route a command to it:
    every primary of a cluster, or the one server."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        return [(node.name, {"target_nodes": node}) for node in redis.get_primaries()]
    kwargs = redis.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return [(str(where), {})]


async def _found(
    redis: Any, where: list[tuple[str, dict[str, Any]]], missed: dict[str, str] | None = None
) -> list[Found]:
    """The libraries on each node of `where`. With `missed`, a node that does not answer is
    put there (node -> error) and skipped; without, its error goes up (exit 3)."""
    out: list[Found] = []
    for node, options in where:
        try:
            listed = await redis.execute_command("FUNCTION", "LIST", "WITHCODE", **options)
        except _NO_ANSWER as error:
            if missed is None:
                raise
            missed[node] = redact(str(error))
            continue
        for entry in listed or ():
            name = _text(_field(entry, "library_name"))
            code = _field(entry, "library_code") or b""
            out.append(Found(node, name, len(code.encode() if isinstance(code, str) else code)))
    return sorted(out, key=lambda f: (f.node, f.script() or "~", f.name))


def _print(found: list[Found], current: set[str], shown: set[str]) -> None:
    rows = [
        {
            "node": f.node,
            "library": f.name,
            "script": f.script() or "-",
            "kb": f"{f.bytes / 1024:.1f}",
            "status": f.status(current),
        }
        for f in found
        if f.status(current) in shown
    ]
    if rows:
        print_table(rows, ["node", "library", "script", "kb", "status"])


def _summary(found: list[Found], current: set[str]) -> dict[str, Any]:
    stale = [f for f in found if f.status(current) == STALE]
    return {
        "nodes": len({f.node for f in found}),
        "current": sum(f.status(current) == CURRENT for f in found),
        "stale": len(stale),
        "foreign": sum(f.status(current) == FOREIGN for f in found),
        "stale_bytes": sum(f.bytes for f in stale),
    }


def _as_json(found: list[Found], current: set[str], **extra: Any) -> str:
    libraries = [
        {"node": f.node, "library": f.name, "script": f.script() or None, "bytes": f.bytes}
        | {"status": f.status(current)}
        for f in found
    ]
    return orjson.dumps({"libraries": libraries, **_summary(found, current), **extra}).decode()


async def _list(args: argparse.Namespace) -> int:
    current = current_libraries()
    async with open_store(store_settings(args)) as redis:
        found = await _found(redis, await _primaries(redis))
    if args.json:
        print(_as_json(found, current))
        return OK
    _print(found, current, {CURRENT, STALE, FOREIGN})
    s = _summary(found, current)
    print(
        f"{s['current']} current, {s['stale']} stale ({s['stale_bytes'] / 1024:.1f} KB), "
        f"{s['foreign']} foreign librar{'y' if s['foreign'] == 1 else 'ies'} on "
        f"{s['nodes']} node(s)"
        + ("; `omnistock functions prune --delete` deletes the stale ones" if s["stale"] else "")
    )
    return OK


async def _delete(
    redis: Any,
    where: dict[str, dict[str, Any]],
    stale: list[Found],
    missed: dict[str, str] | None = None,
) -> int:
    """FUNCTION DELETE of each stale library on its node: how many were deleted. With
    `missed`, a node that stops answering is put there and its other libraries skipped."""
    deleted = 0
    for f in stale:
        if missed is not None and f.node in missed:
            continue
        try:
            await redis.execute_command("FUNCTION", "DELETE", f.name, **where[f.node])
            deleted += 1
        except ResponseError as error:
            if "not found" not in str(error).lower():  # deleted meanwhile
                raise
        except _NO_ANSWER as error:
            if missed is None:
                raise
            missed[f.node] = redact(str(error))
    return deleted


async def _prune(args: argparse.Namespace) -> int:
    current = current_libraries()
    missed: dict[str, str] | None = {} if args.skip_unreachable else None
    async with open_store(store_settings(args)) as redis:
        nodes = await _primaries(redis)
        try:
            found = await _found(redis, nodes, missed)
        except _NO_ANSWER as error:
            if len(nodes) == 1:
                raise
            raise CliError(
                UNREACHABLE,
                f"a primary is unreachable: {redact(str(error))}; nothing deleted "
                "(--skip-unreachable prunes the primaries that answer)",
            ) from None
        if missed is not None and len(missed) == len(nodes):
            raise CliError(UNREACHABLE, f"no primary answered: {'; '.join(missed.values())}")
        stale = [f for f in found if f.status(current) == STALE]
        deleted = await _delete(redis, dict(nodes), stale, missed) if args.delete else 0
    for node, why in (missed or {}).items():
        print(
            f"omnistock functions prune: primary {node} unreachable, skipped: {why}",
            file=sys.stderr,
        )
    code = PARTIAL if missed else OK
    size = sum(f.bytes for f in stale if f.node not in (missed or {}))
    if args.json:
        print(
            _as_json(
                stale,
                current,
                deleted=deleted,
                dry_run=not args.delete,
                unreachable=sorted(missed or {}),
            )
        )
        return code
    _print(stale, current, {STALE})
    if missed:
        print(
            f"partial: {len(missed)} of {len(nodes)} primaries unreachable (on stderr), not "
            "pruned; run again once they answer"
        )
    if not stale:
        print(f"no stale library on {len(nodes) - len(missed or {})} node(s)")
    elif args.delete:
        print(
            f"deleted {deleted} stale librar{'y' if deleted == 1 else 'ies'} ({size / 1024:.1f} KB)"
        )
    else:
        print(
            f"dry run: {len(stale)} stale librar{'y' if len(stale) == 1 else 'ies'} "
            f"({size / 1024:.1f} KB) would be deleted; run again with --delete to delete them"
        )
    return code


@command("functions list")
def list_(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args))


@command("functions prune")
def prune(args: argparse.Namespace) -> int:
    return asyncio.run(_prune(args))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = command_group(
        sub,
        "functions",
        help="the store's function libraries: list them, prune the stale ones",
        description="Every Lua script runs as a function library os_<script>_<digest>; a "
        "deploy that changes a script leaves the previous library on the store. `list` shows "
        "them (current: this code's, stale: another version's, foreign: not omnistock's); "
        "`prune --delete` deletes the stale ones (docs/operations.md).",
    )
    add_action(
        actions,
        "list",
        list_,
        help="every function library on the store (cluster: every primary) and its status",
        json="print the libraries as JSON on stdout",
        store=True,
    )
    p = add_action(
        actions,
        "prune",
        prune,
        help="the stale libraries (dry run), deleted with --delete",
        description="List the os_ libraries that this code's scripts are not (another "
        "version's) and, with --delete, delete them (FUNCTION DELETE on every primary; "
        "replicas follow). Safe while an older version still serves: a deleted library is "
        "loaded again by the service that calls it. Foreign libraries are never touched. Exit "
        "codes: 0 done, 3 the store (or, without --skip-unreachable, any primary) "
        "unreachable, 4 partial: done on the primaries that answered, the others skipped "
        "(--skip-unreachable).",
        json="print the stale libraries and the counts as JSON on stdout (`unreachable`: "
        "the primaries skipped)",
        store=True,
    )
    p.add_argument("--delete", action="store_true", help="delete them (default: dry run)")
    p.add_argument(
        "--skip-unreachable",
        action="store_true",
        help="a cluster primary that does not answer is named on stderr and skipped, the others "
        "are pruned, and the command exits 4 (partial; without this flag: exit 3, nothing "
        "deleted); run it again once that primary is back",
    )
