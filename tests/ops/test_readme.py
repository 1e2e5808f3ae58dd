"""The README's picture, snippets and CLI table stay true."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from app.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_board_picture_is_a_png_the_readme_shows() -> None:
    assert "](docs/board.png)" in README
    assert (ROOT / "docs" / "board.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "block", re.findall(r"```python\n(.*?)```", README, re.DOTALL), ids=lambda b: b[:30]
)
def test_every_python_snippet_is_valid_python(block: str) -> None:
    ast.parse(block)


def test_every_command_in_the_cli_table_exists() -> None:
    parser = build_parser()
    commands: Any = next(a for a in parser._actions if hasattr(a, "choices") and a.choices).choices
    for name in re.findall(r"^\| `omnistock ([a-z]+)", README, re.MULTILINE):
        assert name in commands, name
