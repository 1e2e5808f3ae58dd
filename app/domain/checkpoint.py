"""Where an import run stopped: the last line of the last batch the store acknowledged and the
byte offset after it, with a fingerprint of the file so a run never resumes a different one.
Rows are absolute, so a run resumed from a checkpoint may safely repeat the rows after it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson


def fingerprint(path: Path) -> str:
    """Size-independent identity of a snapshot: its first 64 KiB (a new export differs there,
    if only in the first rows' figures)."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(65536)).hexdigest()


@dataclass
class Checkpoint:
    """The last line the store acknowledged, and the byte offset just after it."""

    path: Path
    fingerprint: str
    format: str
    line: int = 0
    offset: int = 0
    rejected: int = 0  # rejected rows before `line` (reported by the run that read them)

    @classmethod
    def load(cls, path: Path, fp: str, fmt: str) -> Checkpoint | None:
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if doc.get("fingerprint") != fp or doc.get("format") != fmt:
            return None
        return cls(path, fp, fmt, int(doc["line"]), int(doc["offset"]), int(doc["rejected"]))

    def save(self) -> None:
        doc = asdict(self)
        doc["path"] = str(self.path)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
