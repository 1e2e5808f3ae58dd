"""What the tests of both importers (stock snapshots, supply snapshots) share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis import Redis as SyncRedis

from app.domain.importer import ImportRun, ImportStats


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
