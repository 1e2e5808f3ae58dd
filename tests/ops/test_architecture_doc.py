"""docs/architecture.md stays true: every key app/keys.py can build is in the key schema
table, and the "where things are" table names every module of app/ and lua/ and every entry
at the top of benchmarks/ and tests/."""

from __future__ import annotations

import inspect
import itertools
import re
from pathlib import Path

from app import keys

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()

# How the table writes each argument of a key builder.
PLACEHOLDERS = {
    "sku": "<sku>",
    "hold_id": "<id>",
    "sub_id": "<id>",
    "digest": "<digest>",
    "location": "<location>",
    "event_id": "<event id>",
}
PARTITION = 7  # any partition: its tag is written {P}
SLOTS = (keys.tag(PARTITION), keys.CONFIG_TAG, keys.WEBHOOK_TAG)  # where a record may live


def section(title: str) -> str:
    """The text of a `## title` section, up to the next `## ` heading."""
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else None]


def key_patterns() -> set[str]:
    """Every key app/keys.py builds, written as the table writes it."""
    found = {
        value
        for name, value in vars(keys).items()
        if name.isupper() and isinstance(value, str) and value.startswith(f"{keys.PREFIX}:{{")
        if not name.endswith("_TAG")
    }
    for name, builder in vars(keys).items():
        if not inspect.isfunction(builder) or builder.__module__ != keys.__name__:
            continue
        if (
            name in ("tag", "_tag", "partition_of")
            or inspect.signature(builder).return_annotation != "str"
        ):
            continue
        params = list(inspect.signature(builder).parameters)
        choices: list[list[object]] = []
        for param in params:
            if param == "partition":
                choices.append([PARTITION, None] if name == "replication_mark" else [PARTITION])
            elif param == "slot":
                choices.append(list(SLOTS))
            else:
                choices.append([PLACEHOLDERS[param]])
        found |= {builder(*combo) for combo in itertools.product(*choices)}
    return {k.replace(keys.tag(PARTITION), f"{keys.PREFIX}:{{P}}") for k in found}


def test_every_key_the_code_builds_is_in_the_key_schema_table() -> None:
    table = section("Key schema").replace("\\|", "|")
    patterns = key_patterns()
    assert len(patterns) >= 20
    missing = sorted(p for p in patterns if f"`{p}`" not in table)
    assert missing == [], f"add these keys to docs/architecture.md's key schema: {missing}"


def tree_entries() -> set[str]:
    """Every module and package of app/, every script and include of lua/, and what stands
    at the top of benchmarks/ and tests/ (a test directory is one row)."""
    entries = set()
    for path in (ROOT / "app").rglob("*"):
        if "__pycache__" in path.parts or path.name == "__init__.py":
            continue
        if path.is_dir() or path.suffix == ".py":
            entries.add(_row(path))
    entries |= {_row(p) for p in (ROOT / "lua").rglob("*") if p.is_dir() or p.suffix == ".lua"}
    for top in ("benchmarks", "tests"):
        for path in (ROOT / top).iterdir():
            if path.name.startswith((".", "__")):
                continue
            if path.is_dir() or path.suffix == ".py":
                entries.add(_row(path))
    return {e for e in entries if not e.startswith("app/board/") or e == "app/board/"}


def _row(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() + ("/" if path.is_dir() else "")


def test_where_things_are_names_every_module_and_directory() -> None:
    table = section("Where things are")
    listed = set(re.findall(r"^\| `([^`]+)`", table, re.MULTILINE))
    missing = sorted(e for e in tree_entries() if e not in listed)
    assert missing == [], f"add these to docs/architecture.md, 'Where things are': {missing}"
    gone = sorted(e for e in listed if not (ROOT / e).exists())
    assert gone == [], f"these no longer exist: {gone}"
