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

from flowlang.errors import UsageError

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T], async_form: str = "await flow.run_async(...)") -> T:
    """asyncio.run(coro)'s value, without the main task holding it. Inside a running event loop (a
    Jupyter notebook, async code) a blocking call cannot run: that is a UsageError naming the
    coroutine to await instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise UsageError(f"this call waits for the run to end, so it cannot be made inside a running event loop "
                         f"(a Jupyter notebook, async code): write `{async_form}` there")
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
