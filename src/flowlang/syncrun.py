"""run_sync(): asyncio.run() for the API's blocking calls (Flow.run, Flow.retry, replay), with the
coroutine's value kept out of the main task.

Why: when asyncio.run() ends on the main thread it puts the SIGINT handler back, and on Python 3.11
`signal.getsignal` / `signal.signal` try the old handler (a partial holding the main task) as a
`Handlers` enum value; the ValueError they catch formats the task's repr, and with it the repr of its
result. For a Result holding 100,000 outputs that was 1.1 s spent building text nobody reads (issue 15:
the gap between `result.outputs` and `on_output`). Here the main task's result is None."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro)'s value, without the main task holding it."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
