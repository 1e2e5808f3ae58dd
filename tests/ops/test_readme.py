"""The README's picture, snippets and CLI table stay true."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

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


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices: dict[str, argparse.ArgumentParser] = action.choices
            return choices
    return {}


def cli_table() -> dict[str, str]:
    """command -> the rest of its row, from the README's `| `omnistock COMMAND ...` | ... |`."""
    rows = re.findall(r"^\| `omnistock ([a-z]+)(.*)$", README, re.MULTILINE)
    return {name: rest for name, rest in rows}


def test_every_command_in_the_cli_table_exists() -> None:
    commands = subcommands(build_parser())
    table = cli_table()
    assert table
    for name in table:
        assert name in commands, name


def test_every_command_and_subcommand_is_in_the_cli_table() -> None:
    table = cli_table()
    for name, parser in subcommands(build_parser()).items():
        assert name in table, f"`omnistock {name}` is missing from the README's CLI table"
        for sub in subcommands(parser):
            assert re.search(rf"`(omnistock {name} )?{sub}\b", table[name]) or table[
                name
            ].startswith(f" {sub}"), f"`omnistock {name} {sub}` is missing from the CLI table"
