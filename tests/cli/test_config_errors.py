"""A bad OMNISTOCK_* setting: one line naming the setting and what is wrong, exit 2 (the
README's code for configuration errors), never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import service_env


def run_serve(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("OMNISTOCK_PORT", "abc", "valid integer"),
        ("OMNISTOCK_HEADER_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("OMNISTOCK_LOG_FORMAT", "xml", "'json' or 'text'"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_naming_it(name: str, value: str, says: str) -> None:
    done = run_serve(**{name: value})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert name in lines[0] and repr(value) in lines[0] and says in lines[0], lines[0]
    assert "Traceback" not in done.stderr
