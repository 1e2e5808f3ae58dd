"""The served worker freezes what it built at start out of the garbage collector's reach
(app/api/main.py, create_app_from_env): full collections no longer walk the modules, routes
and schemas on every pass; and it collects its youngest objects less often. In a process of
its own: frozen objects are never freed."""

from __future__ import annotations

import os
import subprocess
import sys


def _around_the_worker_s_start(store_url: str, what: str) -> list[int]:
    """`what` (an expression of gc's figures) before and after `create_app_from_env()`."""
    code = (
        "import gc; from app.api.main import create_app_from_env; "
        f"before = {what}; create_app_from_env(); print(*before, *{what})"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTOCK_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "OMNISTOCK_REDIS_URL": store_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(map(int, out.stdout.split()))


def test_the_served_workers_start_up_objects_are_frozen(store_url: str) -> None:
    before, after = _around_the_worker_s_start(store_url, "(gc.get_freeze_count(),)")
    assert before == 0
    assert after > 20_000  # the app and everything it imported (some 90,000 objects)


def test_the_served_worker_collects_its_youngest_objects_less_often(store_url: str) -> None:
    young, older, oldest, *after = _around_the_worker_s_start(store_url, "gc.get_threshold()")
    assert young == 700  # Python's own
    assert after == [10_000, older, oldest]
