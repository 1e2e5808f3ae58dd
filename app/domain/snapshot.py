"""Reading and checking a stock snapshot from ERP/WMS: `sku,location,on_hand[,safety_stock]`
rows as CSV (with a header line) or NDJSON (one JSON object per line).

The file is read in batches of lines. A batch's rows are checked (CSV: one regular expression
over the whole batch, with the per-line parser for the lines it does not take; NDJSON: orjson
per line) and grouped by partition and sku, ready for the store (`app/domain/importer.py`).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson

from app import keys
from app.domain.models import ID_PATTERN, MAX_UNITS

FORMATS = ("csv", "ndjson")
COLUMNS = ("sku", "location", "on_hand", "safety_stock")
REQUIRED = ("sku", "location", "on_hand")

_ID = re.compile(ID_PATTERN)
_INT = re.compile(r"^-?[0-9]{1,13}$")
_ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ : -"

# The CSV fast path: what it takes is valid by the per-line rules below, and its text goes to
# the store as is, so integers must be canonical (no leading zeros, no -0; |n| <= MAX_UNITS).
# Anything else (quotes, blank lines, other spellings, errors) goes through the per-line parser.
_CSV_FIELD = {
    "sku": rb"([A-Za-z0-9._:-]{1,128})",
    "location": rb"([A-Za-z0-9._:-]{1,128})",
    "on_hand": rb"(0|-?(?:[1-9][0-9]{0,11}|1000000000000))",
    "safety_stock": rb"(0|[1-9][0-9]{0,11}|1000000000000|)",
}
_COLUMN_SET = frozenset(COLUMNS)


class SnapshotError(Exception):
    """The file cannot be imported at all (unknown format, bad CSV header)."""


@dataclass(slots=True)
class Row:
    line: int
    sku: str
    location: str
    on_hand: int
    safety_stock: int | None  # None keeps the current value (0 for a new position)


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str


def detect_format(path: str, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise SnapshotError(f"unknown format {explicit!r}; one of {', '.join(FORMATS)}")
        return explicit
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".ndjson", ".jsonl", ".json"):
        return "ndjson"
    raise SnapshotError(f"cannot tell the format of {path!r} from its name: pass --format")


def _check(
    line: int, sku: Any, location: Any, on_hand: Any, safety: Any, locations: set[str]
) -> Row | Rejected:
    """`on_hand` and `safety` arrive already as int (or None for safety); anything else is an
    error message prepared by the parser."""
    if not isinstance(sku, str) or not _ID.fullmatch(sku):
        return Rejected(line, f"sku {_ID_RULE}")
    if not isinstance(location, str) or not _ID.fullmatch(location):
        return Rejected(line, f"location {_ID_RULE}")
    if isinstance(on_hand, str):
        return Rejected(line, on_hand)
    if isinstance(safety, str):
        return Rejected(line, safety)
    if location not in locations:
        return Rejected(line, f"location {location!r} is not registered")
    return Row(line, sku, location, on_hand, safety)


def _on_hand(value: Any) -> int | str:
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_UNITS:
        return f"on_hand must be an integer within ±{MAX_UNITS}"
    return value


def _safety(value: Any) -> int | str | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_UNITS:
        return f"safety_stock must be an integer from 0 to {MAX_UNITS}, or empty"
    return value


def _csv_int(text: str) -> int | None:
    return int(text) if _INT.match(text) else None


@dataclass(slots=True)
class Batch:
    """Consecutive lines of a snapshot, checked: the valid rows grouped by partition and sku
    (file order within a sku, which is all that orders rows: each sku's rows go to the store
    together, and rows of different skus touch different positions), the rejected ones, and
    where the batch ends."""

    skus: dict[int, dict[bytes, list[Any]]] = field(default_factory=dict)
    """partition -> sku -> [location, on_hand, safety_stock ("" keeps it), location, ...]"""
    rows: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    line: int = 0  # the last line of the batch
    offset: int = 0  # the byte offset just after it


class SnapshotReader:
    """Rows of a snapshot: in batches (`batches`, what the importer reads) or one by one with
    the byte offset just after each (`rows`).

    CSV: a header line naming `sku`, `location`, `on_hand` and optionally `safety_stock` (any
    order, nothing else); fields may be wrapped in plain double quotes. Identifiers cannot hold
    commas, quotes or line breaks, so one line is one row. NDJSON: one object per line with the
    same fields; `safety_stock` may be absent or null. Blank lines are skipped.
    """

    def __init__(self, fh: IO[bytes], fmt: str, locations: set[str]) -> None:
        self._fh = fh
        self.format = fmt
        self._locations = locations
        # Registered locations that are also valid identifiers: membership is both checks.
        self._known = {loc for loc in locations if _ID.fullmatch(loc)}
        self._known_bytes = {loc.encode() for loc in self._known}
        self._columns: list[str] = []
        self.header_end = 0  # byte offset of the first row
        if fmt == "csv":
            self._read_header()

    def _read_header(self) -> None:
        raw = self._fh.readline()
        self.header_end = len(raw)
        names = [_unquote(f).lower() for f in raw.decode("utf-8-sig").strip().split(",")]
        missing = [c for c in REQUIRED if c not in names]
        unknown = [c for c in names if c not in COLUMNS]
        if missing or unknown or len(set(names)) != len(names):
            raise SnapshotError(
                "the CSV header must name sku, location, on_hand and optionally safety_stock "
                f"(got {raw.decode('utf-8', 'replace').strip()!r})"
            )
        self._columns = names
        # One group per column in file order, plus an empty one for an absent safety_stock,
        # so every match is a tuple of 4 fields, reordered to COLUMNS if the header is not.
        row = b",".join(_CSV_FIELD[name] for name in names)
        order = [*names, *(["safety_stock"] if "safety_stock" not in names else [])]
        if "safety_stock" not in names:
            row += b"()"
        self._csv_rows = re.compile(rb"^" + row + rb"\r?$", re.MULTILINE)
        self._csv_row = re.compile(rb"^" + row + rb"\r?$")
        self._csv_order = (
            None if order == list(COLUMNS) else itemgetter(*(order.index(c) for c in COLUMNS))
        )

    def rows(self, offset: int = 0, line: int = 0) -> Iterator[tuple[Row | Rejected, int]]:
        """From byte `offset` (0: the first row), whose line number is `line + 1`."""
        offset = max(offset, self.header_end)
        line = max(line, 1 if self.format == "csv" else 0)
        self._fh.seek(offset)
        for raw in iter(self._fh.readline, b""):
            offset += len(raw)
            line += 1
            item = self._parse(line, raw)
            if item is not None:
                yield item, offset

    def batches(self, offset: int = 0, line: int = 0, size: int = 20_000) -> Iterator[Batch]:
        """Batches of `size` lines from byte `offset` (0: the first row), whose line number is
        `line + 1`."""
        offset = max(offset, self.header_end)
        line = max(line, 1 if self.format == "csv" else 0)
        self._fh.seek(offset)
        while lines := list(islice(self._fh, size)):
            batch = Batch(line=line + len(lines), offset=offset + sum(map(len, lines)))
            if self.format == "csv":
                self._csv_batch(batch, lines, line + 1)
            else:
                self._ndjson_batch(batch, lines, line + 1)
            yield batch
            line, offset = batch.line, batch.offset

    def _csv_batch(self, batch: Batch, lines: list[bytes], first: int) -> None:
        """One regular expression over the batch; when some line does not match it, one per
        line (a match is one whole line, so as many matches as lines means every line)."""
        matches: Iterable[tuple[bytes, ...] | None] = self._csv_rows.findall(b"".join(lines))
        if len(matches) != len(lines):  # type: ignore[arg-type]
            matches = [m.groups() if (m := self._csv_row.match(raw)) else None for raw in lines]
        if self._csv_order is not None:
            order = self._csv_order
            matches = [None if m is None else order(m) for m in matches]
        self._group(batch, matches, lines, first)

    def _ndjson_batch(self, batch: Batch, lines: list[bytes], first: int) -> None:
        """Rows that pass every check at once; the per-line parser names what is wrong with
        the others (and skips blank lines)."""
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        known, id_match = self._known, _ID.fullmatch
        rows: list[tuple[Any, ...] | None] = []
        for raw in lines:
            try:
                doc = loads(raw)
            except decode_error:
                rows.append(None)
                continue
            if type(doc) is dict and doc.keys() <= _COLUMN_SET:
                sku, loc = doc.get("sku"), doc.get("location")
                on_hand, safety = doc.get("on_hand"), doc.get("safety_stock")
                if (
                    type(loc) is str
                    and loc in known
                    and type(on_hand) is int
                    and -MAX_UNITS <= on_hand <= MAX_UNITS
                    and (safety is None or (type(safety) is int and 0 <= safety <= MAX_UNITS))
                    and type(sku) is str
                    and id_match(sku)
                ):
                    rows.append(
                        (sku.encode(), loc.encode(), on_hand, b"" if safety is None else safety)
                    )
                    continue
            rows.append(None)
        self._group(batch, rows, lines, first)

    def _group(
        self,
        batch: Batch,
        rows: Iterable[tuple[Any, ...] | None],
        lines: list[bytes],
        first: int,
    ) -> None:
        """Rows the fast path took (`None`: the per-line parser decides) into `batch.skus`."""
        groups = batch.skus
        known = self._known_bytes
        last: bytes | None = None
        flat: list[Any] = []
        count = 0
        for i, row in enumerate(rows):
            if row is None or row[1] not in known:
                item = self._parse(first + i, lines[i])
                if item is None:
                    continue
                if isinstance(item, Rejected):
                    batch.rejected.append(item)
                    continue
                safety: Any = b"" if item.safety_stock is None else item.safety_stock
                row = (item.sku.encode(), item.location.encode(), item.on_hand, safety)
            sku, location, on_hand, safety = row
            if sku != last:
                last = sku
                by_sku = groups.get(p := zlib.crc32(sku) % keys.PARTITIONS)  # partition_of()
                if by_sku is None:
                    by_sku = groups[p] = {}
                got = by_sku.get(sku)
                if got is None:
                    got = by_sku[sku] = []
                flat = got
            flat += (location, on_hand, safety)
            count += 1
        batch.rows = count

    def _parse(self, line: int, raw: bytes) -> Row | Rejected | None:
        """One line by the full rules (None: a blank line)."""
        if raw.isspace():
            return None
        return self._parse_csv(line, raw) if self.format == "csv" else self._parse_ndjson(line, raw)

    def _parse_csv(self, line: int, raw: bytes) -> Row | Rejected:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return Rejected(line, "not UTF-8")
        fields = text.rstrip("\r\n").split(",")
        if len(fields) != len(self._columns):
            return Rejected(line, f"expected {len(self._columns)} fields, got {len(fields)}")
        values = dict(zip(self._columns, map(_unquote, fields), strict=True))
        number = _csv_int(values["on_hand"])
        on_hand: int | str = _on_hand(number)
        raw_safety = values.get("safety_stock", "")
        safety: int | str | None = None
        if raw_safety != "":
            number = _csv_int(raw_safety)
            safety = _safety(number if number is not None else raw_safety)
        return _check(line, values["sku"], values["location"], on_hand, safety, self._locations)

    def _parse_ndjson(self, line: int, raw: bytes) -> Row | Rejected:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Rejected(line, "not a JSON object")
        if not isinstance(doc, dict):
            return Rejected(line, "not a JSON object")
        unknown = set(doc) - set(COLUMNS)
        if unknown:
            return Rejected(line, f"unknown fields: {', '.join(sorted(unknown))}")
        for name in REQUIRED:
            if name not in doc:
                return Rejected(line, f"missing field: {name}")
        return _check(
            line,
            doc["sku"],
            doc["location"],
            _on_hand(doc["on_hand"]),
            _safety(doc.get("safety_stock")),
            self._locations,
        )


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1]
    return field
