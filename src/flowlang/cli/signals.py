"""Running a command's coroutine on its own event loop, where SIGTERM and Ctrl-C ask the run to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from flowlang.cli.console import Terminal
from flowlang.runtime.limits import StopFlag

T = TypeVar("T")


def run_async_command(coro: Coroutine[Any, Any, T], stop: StopFlag | None = None,
                      terminal: Terminal | None = None) -> T:
    """Run a command's coroutine. SIGTERM or Ctrl-C asks the run to stop gracefully (in-flight records
    finish, none is started); a second one cancels it at once."""
    loop = asyncio.new_event_loop()
    try:
        main_task = loop.create_task(coro)

        def on_signal(name: str) -> None:
            if stop is not None and not stop.requested:
                stop.request(name)
                if terminal is not None:
                    terminal.message(f"{name}: finishing the records in flight, then stopping "
                                     "(again to stop at once)", "yellow")
            else:
                main_task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, on_signal, sig.name)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
                pass
        return loop.run_until_complete(main_task)
    finally:
        finish_tasks(loop)
        loop.close()


def finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still pending and let it end, then close async generators: no "Task was
    destroyed but it is pending" at exit (OPERATIONS.md 10)."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
