"""Bulk import of a supply snapshot from the ERP (`omnistock import --supply FILE`): the
supply lines of `PUT /v1/supply/{sku}/{location}/{supply_id}`, one per file line, streamed in
batches with the same progress, checkpoint (resume) and line-numbered rejects as a stock
snapshot (app/cli/import_.py drives both).

NDJSON: one object per line with `sku`, `location`, `supply_id`, `type`, `quantity`, `eta`
(RFC 3339; not needed for quantity 0, which cancels the line) and optionally `reference`.
CSV: a header naming those columns (any order); a field may be quoted as RFC 4180 says (a
reference with a comma or a double quote: `"PO 7, dock 2"`, `"the ""blue"" one"`), one row per
line. `omnistock export --supply --for-import` writes both forms.

Each row is one `supply_put.lua` call (its events, broken promises and checks, as through the
API), pipelined per batch. A row sets a line absolutely, so a re-run of the same file changes
nothing (`unchanged`), and a resumed run may safely repeat the rows after its checkpoint: a
row that cancels a line which is not there (cancelled by the run that was interrupted, or
never created) is `unchanged` too, as the line is already as the row says.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

import orjson
import redis
from pydantic import ValidationError
from redis.exceptions import ResponseError

from app.domain.clock import parse_ms
from app.domain.importer import ImportRun, ImportStats
from app.domain.models import SupplyLineIn
from app.domain.snapshot import Rejected, SnapshotError
from app.domain.supply import DAY_MS, HORIZON_DAYS
from app.store import calls
from app.store.import_writer import LibraryLost, fcall, load_library, not_run
from app.store.scripts import library

COLUMNS = ("sku", "location", "supply_id", "type", "quantity", "eta", "reference")
REQUIRED = ("sku", "location", "supply_id", "type", "quantity")
_STORE_REJECTS = {
    "eta_past": "eta: must be after now",
    "eta_beyond": f"eta: must be within {HORIZON_DAYS} days",
}


@dataclass
class SupplyBatch:
    rows_in: list[tuple[int, SupplyLineIn, int]] = field(default_factory=list)  # line, row, eta
    rejected: list[Rejected] = field(default_factory=list)
    line: int = 0  # the last line of the batch
    offset: int = 0  # the byte offset just after it

    @property
    def rows(self) -> int:
        return len(self.rows_in)


class SupplyReader:
    def __init__(self, fh: IO[bytes], fmt: str, locations: set[str]) -> None:
        self._fh = fh
        self.format = fmt
        self._locations = locations
        self._columns: list[str] = []
        self.header_end = 0
        if fmt == "csv":
            raw = fh.readline()
            self.header_end = len(raw)
            names = [f.lower() for f in _csv_fields(raw.decode("utf-8-sig").strip())]
            if any(c not in names for c in REQUIRED) or any(c not in COLUMNS for c in names):
                raise SnapshotError(
                    f"the CSV header must name {', '.join(REQUIRED)} and optionally eta and "
                    f"reference (got {raw.decode('utf-8', 'replace').strip()!r})"
                )
            self._columns = names

    def batches(self, offset: int = 0, line: int = 0, size: int = 20_000) -> Iterator[SupplyBatch]:
        offset = max(offset, self.header_end)
        line = max(line, 1 if self.format == "csv" else 0)
        self._fh.seek(offset)
        while lines := list(islice(self._fh, size)):
            batch = SupplyBatch(line=line + len(lines), offset=offset + sum(map(len, lines)))
            for i, raw in enumerate(lines):
                if raw.isspace():
                    continue
                item = self._parse(line + 1 + i, raw)
                if isinstance(item, Rejected):
                    batch.rejected.append(item)
                else:
                    batch.rows_in.append(item)
            yield batch
            line, offset = batch.line, batch.offset

    def _parse(self, line: int, raw: bytes) -> tuple[int, SupplyLineIn, int] | Rejected:
        if self.format == "csv":
            try:
                fields = _csv_fields(raw.decode().rstrip("\r\n"))
            except UnicodeDecodeError:
                return Rejected(line, "not UTF-8")
            if len(fields) != len(self._columns):
                return Rejected(line, f"expected {len(self._columns)} fields, got {len(fields)}")
            doc: Any = {k: v for k, v in zip(self._columns, fields, strict=True) if v != ""}
            if isinstance(doc.get("quantity"), str) and doc["quantity"].lstrip("-").isdigit():
                doc["quantity"] = int(doc["quantity"])
        else:
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return Rejected(line, "not a JSON object")
        try:
            row = SupplyLineIn.model_validate(doc)
        except ValidationError as exc:
            err = exc.errors()[0]
            return Rejected(line, f"{'.'.join(map(str, err['loc'])) or 'line'}: {err['msg']}")
        if row.location not in self._locations:
            return Rejected(line, f"location {row.location!r} is not registered")
        eta = 0
        if row.quantity > 0:
            ms = parse_ms(row.eta) if row.eta is not None else None
            if ms is None:
                return Rejected(line, "eta: an RFC 3339 timestamp with an offset is needed")
            eta = ms
        return line, row, eta


class SupplyImporter:
    """Applies batches of supply rows: one pipeline of `supply_put.lua` calls per batch (one
    call at a time on a cluster). `client`: a synchronous redis-py client (bytes replies)."""

    def __init__(
        self, client: redis.Redis, *, event_retention_seconds: int, batch_rows: int = 20_000
    ) -> None:
        self._client = client
        self._retention_ms = event_retention_seconds * 1000
        self._batch_rows = batch_rows
        self._lib = library("supply_put")  # called as a function (FCALL)

    def run(self, reader: SupplyReader, job: ImportRun) -> ImportStats:
        """Imports the rows of `reader` as `job` says (a batch's `rejected`: its rows rejected
        by the reader or by the store)."""
        load_library(self._client, self._lib)
        stats = ImportStats()
        start = time.perf_counter()
        for batch in reader.batches(job.offset, job.line, self._batch_rows):
            rejected = list(batch.rejected)
            for (row_line, _, _), reply in zip(batch.rows_in, self._send(batch), strict=True):
                kind = _text(reply[0])
                if kind == "not_found":  # a cancel of a line that is not there: as the row says
                    stats.unchanged += 1
                elif kind != "ok":
                    rejected.append(Rejected(row_line, _STORE_REJECTS.get(kind, kind)))
                elif _text(reply[1]) == "unchanged":
                    stats.unchanged += 1
                else:
                    stats.changed += 1
            for item in sorted(rejected, key=lambda r: r.line):
                job.on_reject(item)
            stats.rejected += len(rejected)
            stats.rows += batch.rows
            stats.last_line = batch.line
            job.on_commit(batch.line, batch.offset, len(rejected))
            if job.on_progress is not None:
                job.on_progress(batch.offset, stats.rows)
        stats.seconds = time.perf_counter() - start
        return stats

    ROUNDS = 3  # resends before giving up on a store that keeps losing the library

    def _send(self, batch: SupplyBatch) -> list[Any]:
        """The replies of the batch's rows, in order. A store that lacks the library (a new or
        flushed server, FUNCTION FLUSH or DELETE) answers "Function not found" without running
        the call; a call after it may have run or not (the library can be loaded again in
        between), so the library is loaded and every call from the first one not run on is
        sent again, in order (as app/store/import_writer.py does): rows are absolute, and a
        reply counts from the first time its row ran."""
        sends = [
            calls.supply_put(
                sku=row.sku,
                location=row.location,
                supply_id=row.supply_id,
                type=row.type,
                quantity=row.quantity,
                eta_ms=eta,
                reference=row.reference or "",
                retention_ms=self._retention_ms,
                horizon_ms=HORIZON_DAYS * DAY_MS,
            )
            for _, row, eta in batch.rows_in
        ]
        replies: list[Any] = [None] * len(sends)  # None: not run yet
        start = 0
        for _ in range(self.ROUNDS):
            for i, reply in enumerate(self._run(sends[start:]), start):
                if replies[i] is None and not not_run(reply):
                    replies[i] = reply
            if None not in replies:
                return replies
            load_library(self._client, self._lib)
            start = replies.index(None)
        raise LibraryLost("the store keeps losing the supply import's function library")

    def _run(self, sends: list[calls.Call]) -> list[Any]:
        """One pipeline (one call at a time on a cluster): each call's reply, or the
        "Function not found" error of a call that did not run; any other error is raised."""
        replies: list[Any] = []
        commands = [fcall(self._lib, c.keys, c.args) for c in sends]
        if isinstance(self._client, redis.Redis):
            pipe = self._client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            replies = list(pipe.execute(raise_on_error=False))
        else:
            for command in commands:
                try:
                    replies.append(self._client.execute_command(*command))
                except ResponseError as exc:
                    replies.append(exc)
        for reply in replies:
            if isinstance(reply, Exception) and not not_run(reply):
                raise reply
        return replies


def _csv_fields(text: str) -> list[str]:
    """The fields of one CSV line, RFC 4180 quoting undone."""
    return next(csv.reader([text]), [])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
