"""Bulk import of stock snapshots from ERP/WMS: the run.

The file is read in batches of `batch_rows` lines by `app/domain/snapshot.py` (reading and
checking), and each batch goes to the store as a pipeline of `stock_import.lua` calls (one per
partition, split after `rows_per_call` rows) through `app/store/import_writer.py`: all batches
travel on one connection, so the store applies them in file order, and memory stays at a few
batches whatever the file's size. Progress is saved in a checkpoint (`app/domain/checkpoint.py`).

A row sets absolute values, so applying it twice is the same as once: a re-run of the same file
changes nothing (and emits no event), and a run resumed from a checkpoint may safely repeat the
rows after it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from app import keys
from app.domain.channel_rules import script_entry
from app.domain.checkpoint import Checkpoint, fingerprint
from app.domain.clock import Clock, StoreClock
from app.domain.models import Channel
from app.domain.snapshot import (
    Batch,
    Rejected,
    Row,
    SnapshotError,
    SnapshotReader,
    detect_format,
)
from app.store.import_writer import Call, ImportWriter, fcall, load_library
from app.store.scripts import library

__all__ = [
    "Checkpoint",
    "ImportRun",
    "ImportStats",
    "Importer",
    "Rejected",
    "Row",
    "SnapshotError",
    "SnapshotReader",
    "channels_arg",
    "detect_format",
    "fingerprint",
    "registered_locations",
]


@dataclass(frozen=True)
class ImportRun:
    """What a run of an importer (this one, or app/domain/supply_import.py's) is told: the
    rows to import are those after byte `offset` (line `line`: a checkpoint's place);
    `on_reject(rejected)` for each rejected row; `on_commit(line, offset, rejected)` after
    the store acknowledged every row up to `line` (`rejected`: rows of that batch rejected);
    `on_progress(offset, rows)` as rows are read."""

    on_reject: Callable[[Rejected], None]
    on_commit: Callable[[int, int, int], None]
    on_progress: Callable[[int, int], None] | None = None
    offset: int = 0
    line: int = 0


@dataclass
class ImportStats:
    rows: int = 0  # valid rows sent to the store in this run
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0  # in this run
    last_line: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def channels_arg(client: redis.Redis) -> bytes:
    """{channel: [low_stock_threshold, [locations], rule?]} for every channel, as scripts take
    it (channel_rules.script_entry)."""
    raw: dict[bytes, bytes] = client.hgetall(keys.CHANNELS)  # type: ignore[assignment]
    out = {}
    for channel_id, doc in raw.items():
        ch = Channel.model_validate({**orjson.loads(doc), "id": channel_id.decode()})
        out[ch.id] = script_entry(ch)
    return orjson.dumps(out)


def registered_locations(client: redis.Redis) -> set[str]:
    return {loc.decode() for loc in client.hkeys(keys.LOCATIONS)}  # type: ignore[union-attr]


class Importer:
    """Applies batches to the store: one pipeline of script calls per batch, up to
    `IN_FLIGHT` batches sent and not yet acknowledged while the next is read. `client` is a
    synchronous redis-py client (bytes replies), or a cluster client."""

    IN_FLIGHT = 3

    def __init__(
        self,
        client: redis.Redis,
        *,
        event_retention_seconds: int,
        batch_rows: int = 20_000,
        rows_per_call: int = 500,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._retention_ms = event_retention_seconds * 1000
        self._batch_rows = batch_rows
        self._rows_per_call = rows_per_call
        self._clock = clock or StoreClock()
        self._lib = library("stock_import")  # called as a function (FCALL)
        # Per partition: its stream and sku set, and the prefixes of a sku's two keys.
        self._keys = [
            tuple(
                k.encode()
                for k in (
                    keys.events(p),
                    keys.skus(p),
                    keys.position(p, ""),
                    keys.hold_line_index(p, ""),
                )
            )
            for p in range(keys.PARTITIONS)
        ]

    def run(self, reader: SnapshotReader, job: ImportRun) -> ImportStats:
        """Imports the rows of `reader` as `job` says (a batch's `rejected`: its rows rejected
        before reaching the store)."""
        load_library(self._client, self._lib)
        channels = channels_arg(self._client)
        stats = ImportStats()
        start = time.perf_counter()
        sent: deque[Batch] = deque()
        flight = ImportWriter(self._client, self._lib)

        def settle(block: bool) -> None:
            while sent and (block or flight.ready()):
                changed, unchanged = flight.result()
                batch = sent.popleft()
                stats.changed += changed
                stats.unchanged += unchanged
                stats.last_line = batch.line
                job.on_commit(batch.line, batch.offset, len(batch.rejected))
                block = False

        try:
            for batch in reader.batches(job.offset, job.line, self._batch_rows):
                for rejected in batch.rejected:
                    job.on_reject(rejected)
                stats.rejected += len(batch.rejected)
                stats.rows += batch.rows
                while len(sent) >= self.IN_FLIGHT:
                    settle(block=True)
                flight.send(self._calls(batch, channels))
                sent.append(batch)
                settle(block=False)
                if job.on_progress is not None:
                    job.on_progress(batch.offset, stats.rows)
                batch.skus = {}  # only its place in the file is needed from here on
            flight.finish()
            while sent:
                settle(block=True)
        except BaseException:
            flight.abort()
            raise
        flight.close()
        stats.seconds = time.perf_counter() - start
        return stats

    def _calls(self, batch: Batch, channels: bytes) -> list[Call]:
        """One call per partition, split between skus after `rows_per_call` rows. Safe to
        repeat whole: rows are absolute."""
        offset = self._clock.offset_ms()  # the script reads the store's clock
        calls: list[Call] = []
        for p, by_sku in batch.skus.items():
            stream, skus, pos, hx = self._keys[p]
            ks: list[bytes] = [stream, skus]
            args: list[Any] = [offset, self._retention_ms, channels]
            rows = 0
            for sku, flat in by_sku.items():
                ks += (pos + sku, hx + sku)
                n = len(flat) // 3
                args += (sku, n)
                args += flat
                rows += n
                if rows >= self._rows_per_call:
                    calls.append(fcall(self._lib, ks, args))
                    ks, args, rows = [stream, skus], [offset, self._retention_ms, channels], 0
            if rows:
                calls.append(fcall(self._lib, ks, args))
        return calls
