"""Background loops stop even when a cancel is lost (as redis-py on Python 3.11 can lose one)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.domain.tasks import cancel_and_wait


async def test_a_loop_that_lost_its_first_cancel_still_stops() -> None:
    lost: list[Any] = []

    async def loop() -> None:
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:  # what a lost cancel looks like to the loop
                if not lost:
                    lost.append(True)
                    me = asyncio.current_task()
                    assert me is not None
                    me.uncancel()
                    continue
                raise

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.02)
    async with asyncio.timeout(5):
        await cancel_and_wait(task, every=0.05)
    assert lost and task.cancelled()


async def test_a_task_that_is_not_there_is_already_stopped() -> None:
    await cancel_and_wait(None)
