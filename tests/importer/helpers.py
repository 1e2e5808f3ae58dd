"""What the tests of both importers (stock snapshots, supply snapshots) share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
