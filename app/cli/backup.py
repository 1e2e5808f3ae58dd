"""`omnistock backup DEST`: a copy of the store's append-only files, safe while it serves.

The store (Valkey 8 / Redis 7+) keeps a multi-part AOF in a directory: a base file, one or
more incremental files and a manifest naming them. A rewrite (BGREWRITEAOF, or an automatic
one as the AOF grows) writes a new base, starts a new incremental file, swaps the manifest and
deletes the old files: a copy taken across a rewrite could pair a manifest with files that are
gone. So, as the Redis/Valkey persistence guide prescribes, this command
1. turns automatic rewrites off (`CONFIG SET auto-aof-rewrite-percentage 0`),
2. waits until no rewrite is in progress or scheduled (INFO persistence),
3. copies the manifest, then each file it names (the base, which no longer changes, then the
   incremental files, which only grow: a command cut at the end of the copy is dropped on load,
   `aof-load-truncated yes`), fsyncing each,
4. restores the rewrite setting, also when the copy fails.
Restore: copy DEST/appendonlydir into an empty data directory and start `omnistock serve`
there (docs/operations.md). The store must be local: its files are read from its `dir`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path

from redis.asyncio import Redis

from app.cli.common import (
    OK,
    USAGE,
    CliError,
    add_action,
    command,
    open_store,
    store_settings,
)

WAIT_FOR_REWRITE_SECONDS = 120.0


def manifest_files(manifest: Path) -> list[str]:
    """The file names a multi-part AOF manifest lists, base first (its order)."""
    names = []
    for line in manifest.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "file":
            names.append(words[1])
    if not names:
        raise CliError(USAGE, f"{manifest} names no file: not a multi-part AOF manifest")
    return names


def _copy_synced(source: Path, dest: Path) -> None:
    shutil.copyfile(source, dest)
    os.chmod(dest, 0o600)
    with open(dest, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _config(redis: Redis, name: str) -> str:
    reply = await redis.config_get(name)  # the CLI's clients decode replies
    return str(reply.get(name, ""))


async def _wait_no_rewrite(redis: Redis) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_FOR_REWRITE_SECONDS
    while True:
        info = await redis.info("persistence")
        if not int(info.get("aof_rewrite_in_progress", 0)) and not int(
            info.get("aof_rewrite_scheduled", 0)
        ):
            return
        if loop.time() > deadline:
            raise CliError(USAGE, "an AOF rewrite is still running: try again later")
        await asyncio.sleep(0.2)


async def _backup(args: argparse.Namespace, dest: Path) -> list[str]:
    async with open_store(store_settings(args)) as redis:
        if await _config(redis, "appendonly") != "yes":
            raise CliError(USAGE, "the store has no append-only file (appendonly no)")
        source = Path(await _config(redis, "dir")) / await _config(redis, "appenddirname")
        manifest = source / f"{await _config(redis, 'appendfilename')}.manifest"
        if not manifest.is_file():
            raise CliError(USAGE, f"no AOF manifest at {manifest}: is the store on this host?")
        percentage = await _config(redis, "auto-aof-rewrite-percentage")
        await redis.config_set("auto-aof-rewrite-percentage", 0)
        try:
            await _wait_no_rewrite(redis)
            target = dest / source.name
            target.mkdir(mode=0o700, parents=True)
            _copy_synced(manifest, target / manifest.name)
            names = manifest_files(target / manifest.name)
            for name in names:
                _copy_synced(source / name, target / name)
            _fsync_dir(target)
        finally:
            await redis.config_set("auto-aof-rewrite-percentage", percentage)
    return [manifest.name, *names]


@command("backup")
def backup(args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    if dest.exists() and any(dest.iterdir()):
        raise CliError(USAGE, f"{dest} is not empty: back up into a new directory")
    files = asyncio.run(_backup(args, dest))
    print(
        f"omnistock: backed up {len(files)} file(s) to {dest / 'appendonlydir'}; restore: "
        "copy that directory into an empty data directory and start the service there",
        file=sys.stderr,
    )
    return OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_action(
        sub,
        "backup",
        backup,
        help="copy the store's append-only files, safe while the service runs",
        description="Copy the store's multi-part append-only file (manifest, base, increments) "
        "into DEST/appendonlydir with automatic rewrites paused. Restore: copy it into an empty "
        "data directory (docs/operations.md).",
        store=True,
    ).add_argument("dest", help="a new or empty directory")
