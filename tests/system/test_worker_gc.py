"""The served worker freezes what it built at start out of the garbage collector's reach
(app/api/main.py, create_app_from_env): full collections no longer walk the modules, routes
and schemas on every pass. In a process of its own: frozen objects are never freed."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_served_workers_start_up_objects_are_frozen(store_url: str) -> None:
    code = (
        "import gc; from app.api.main import create_app_from_env; "
        "before = gc.get_freeze_count(); create_app_from_env(); "
        "print(before, gc.get_freeze_count())"
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
    before, after = map(int, out.stdout.split())
    assert before == 0
    assert after > 20_000  # the app and everything it imported (some 90,000 objects)
