"""Running one coroutine per item with a bounded number in flight: the worker pool of eval and of scoring."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def for_each(items: Iterable[T], handle: Callable[[T], Awaitable[None]], concurrency: int) -> None:
    """Await ``handle(item)`` for every item, at most ``concurrency`` at once, in order of start.

    What ``handle`` raises stops the pool: the other workers are cancelled and the exception propagates, so a
    caller decides per item what is an error (record and return) and what ends the run (raise)."""
    queue: asyncio.Queue[T] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await handle(item)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, queue.qsize())))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
