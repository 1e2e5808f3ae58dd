"""What the tests of both importers (stock snapshots, supply snapshots) share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from redis import Redis as SyncRedis

from app import keys
from app.domain.importer import ImportRun, ImportStats


@contextlib.contextmanager
def store_with_dc(store_url: str) -> Iterator[SyncRedis]:
    """A synchronous client of the suite's store, location `dc` registered; closed after."""
    sync = SyncRedis.from_url(store_url)
    sync.hset(keys.LOCATIONS, "dc", orjson.dumps({"priority": 1}))
    try:
        yield sync
    finally:
        sync.close()


def committed_lines(path: Path, run: Callable[[ImportRun], ImportStats]) -> list[int]:
    """The lines an importer's `run(job)` over the file `path` reports committed, in order,
    each with the offset it reports checked to be the end of that line."""
    seen: list[tuple[int, int]] = []
    run(
        ImportRun(
            on_reject=lambda rejected: None,
            on_commit=lambda line, offset, rejected: seen.append((line, offset)),
        )
    )
    content = path.read_bytes()
    for line, offset in seen:
        assert content[:offset].count(b"\n") == line
    return [line for line, _ in seen]


def failed_fcalls(sync: SyncRedis) -> int:
    """FCALLs the store answered with an error, "Function not found" among them (INFO
    commandstats: failed and rejected calls)."""
    stats = sync.info("commandstats").get("cmdstat_fcall", {})
    return int(stats.get("failed_calls", 0)) + int(stats.get("rejected_calls", 0))


def committed_batches(
    store_url: str,
    path: Path,
    importer: Callable[..., Any],
    reader: Callable[..., Any],
    fmt: str,
) -> list[int]:
    """`committed_lines` of an `importer` of 3-row batches over `path`, read by `reader` as
    `fmt` with `dc` the one location."""
    with store_with_dc(store_url) as sync, open(path, "rb") as fh:
        job = importer(sync, event_retention_seconds=60, batch_rows=3)
        return committed_lines(path, lambda run: job.run(reader(fh, fmt, {"dc"}), run))
