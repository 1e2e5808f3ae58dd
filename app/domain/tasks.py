"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None, every: float = 0.5) -> None:
    """Cancel `task` and wait until it has ended, repeating the cancel every `every` seconds.

    One cancel is not always enough: on Python 3.11 a cancel that arrives as a store call
    completes can be lost inside redis-py (measured: often, in a tight loop of calls), and a
    loop that catches the store's errors then simply runs on, so `await task` would never
    return and the service's shutdown (or a test's teardown) would hang.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if not task.cancelled():
        task.exception()  # retrieved: a failure was logged by the loop itself
