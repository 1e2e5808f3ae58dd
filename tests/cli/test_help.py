"""Every command and subcommand answers --help; bad usage exits 2."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from app.cli import build_parser


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths += command_paths(sub, (*prefix, name))
    return paths


PATHS = command_paths(build_parser())


def test_the_cli_has_the_operations_commands() -> None:
    for path in [
        ("export",),
        ("locations", "list"),
        ("locations", "put"),
        ("channels", "list"),
        ("channels", "put"),
        ("events", "tail"),
        ("serve",),
    ]:
        assert path in PATHS


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_every_command_answers_help(cli: Any, path: tuple[str, ...]) -> None:
    result = cli(*path, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: omnistock {' '.join(path)}")


def test_an_unknown_command_is_a_usage_error(cli: Any) -> None:
    result = cli("frobnicate")
    assert result.code == 2
    assert "invalid choice" in result.err


def test_a_missing_action_is_a_usage_error(cli: Any) -> None:
    assert cli("locations").code == 2


def test_service_commands_share_their_flags() -> None:
    parser = build_parser()
    for path in PATHS:
        sub = parser
        for name in path:
            sub = next(
                a for a in sub._actions if isinstance(a, argparse._SubParsersAction)
            ).choices[name]
        flags = {o for a in sub._actions for o in a.option_strings}
        if "--url" in flags:
            assert {"--api-key-file", "--timeout"} <= flags, path
        if "--redis-url" in flags:
            assert {"--data-dir", "--redis-cluster"} <= flags, path
