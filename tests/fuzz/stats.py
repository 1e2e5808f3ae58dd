"""What the fuzzing run saw, printed in the terminal summary (`make fuzz` reads it from there).

A plugin of the whole suite (tests/conftest.py loads it): under pytest-xdist the cases run in a
worker while the summary is written by the controller, so each worker hands its counts over
when it finishes."""

from __future__ import annotations

import collections
from typing import Any

import pytest

STATS: collections.Counter[str] = collections.Counter()


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # set in an xdist worker
    if output is not None:
        output["fuzz_stats"] = dict(STATS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: a worker finished; add its counts."""
    STATS.update(getattr(node, "workeroutput", {}).get("fuzz_stats", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not STATS["cases"]:
        return
    statuses = ", ".join(
        f"{k[len('status:') :]}x{v}" for k, v in sorted(STATS.items()) if k.startswith("status:")
    )
    phases = ", ".join(
        f"{k[len('phase:') :]}x{v}" for k, v in sorted(STATS.items()) if k.startswith("phase:")
    )
    terminalreporter.write_line(
        f"openapi fuzz: {STATS['cases']} generated cases, {STATS['5xx']} 5xx responses, "
        f"{STATS['not_problem']} 4xx without a problem body"
    )
    terminalreporter.write_line(f"openapi fuzz: by status {statuses}; by phase {phases}")
